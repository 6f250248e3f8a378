"""Operators of the StripedHyena architectures (Evo 1, Evo 2) in plain PyTorch, one definition for both.

StripedHyena stripes Hyena convolution blocks with rotary attention blocks (Poli et al. 2023, "StripedHyena";
Brixi et al. 2025, "Genome modeling and design across all domains of life with Evo 2", whose StripedHyena 2 has
three Hyena kinds). A Hyena operator on ``u`` (B, L, D):

    x2, x1, v = split(short_fir(in_proj(u)))            depthwise causal FIR over the 3D projected channels
    y         = x2 * (h * (x1 * v) + D * (x1 * v))       ``*`` over time: a causal convolution per channel

with the inner filter ``h`` one of

- an explicit FIR of a few taps (Hyena-SE, 7 in Evo 2): a direct convolution, no ``D`` term;
- an explicit FIR of 128 taps or more (Hyena-MR): FFT convolution, plus the ``D`` term;
- an implicit long filter in modal form over the whole sequence, FFT convolution plus ``D``: Evo 2's Hyena-LI
  with real log-poles, ``h[d, t] = sum_s R[d, s] * exp(log_pole[d, s] * t)`` (:func:`modal_filter`), and every
  Hyena block of Evo 1 with complex poles and residues, ``h[d, t] = Re sum_s R[d, s] * p[d, s]**t``
  (:func:`complex_modal_filter`).

Explicit filters follow the originals' orientation: a direct FIR is ``torch.nn.functional.conv1d`` over a
left-padded input (cross-correlation: the LAST tap multiplies the current step), an FFT one is a convolution (the
FIRST tap multiplies the current step). Grouped filters (G of them for D channels) serve D / G consecutive
channels each. Long convolutions are done by FFT of size 2L, so they are linear, not circular, and run on any
device torch.fft runs on; in float32 whatever the model's dtype, as the originals do. Every step is causal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn import functional as F

from .attention import scaled_dot_product_attention

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast


def wide(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32 at least: half-precision inputs are widened, float32 and float64 kept."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


# An explicit inner filter at least this long is applied by FFT with a skip term D; a shorter one directly, without
# D (the originals' rule, by filter length; Evo 2's Hyena-MR has 128 taps, its Hyena-SE 7).
FFT_FILTER_LENGTH = 128


class RMSNorm(nn.Module):
    """``scale * x / (||x||_2 / sqrt(D) + eps)``: epsilon added to the root mean square, not under the root."""

    def __init__(self, width: int, eps: float) -> None:
        super().__init__()
        self.eps = float(eps)
        self.scale = nn.Parameter(torch.ones(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rms = x.norm(2, dim=-1, keepdim=True) * x.shape[-1] ** -0.5
        return self.scale * (x / (rms + self.eps))


class GatedMLP(nn.Module):
    """``l3(act(l1(x)) * l2(x))``, no biases; ``act`` None is the identity (Evo 2 past its first block)."""

    def __init__(self, width: int, inner: int, activation) -> None:
        super().__init__()
        self.l1 = nn.Linear(width, inner, bias=False)
        self.l2 = nn.Linear(width, inner, bias=False)
        self.l3 = nn.Linear(inner, width, bias=False)
        self.act = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.l1(x)
        if self.act is not None:
            a = self.act(a)
        return self.l3(a * self.l2(x))


def grouped(h: torch.Tensor, channels: int) -> torch.Tensor:
    """(G, 1, K) or (G, K) filters of G groups -> one per channel, each group serving channels / G in a row."""
    return h if h.shape[0] == channels else h.repeat_interleave(channels // h.shape[0], dim=0)


def direct_fir(u: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Causal depthwise FIR of ``u`` (B, C, L) with ``weight`` (C, 1, K): ``y[t] = sum_k w[k] u[t - (K-1) + k]``.

    ``conv1d`` over the input padded by K - 1 zeros on the left: output ``t`` sees inputs ``t-K+1 .. t``.
    """
    taps = weight.shape[-1]
    x = F.pad(wide(u), (taps - 1, 0))
    return F.conv1d(x, weight.to(x.dtype), groups=u.shape[1]).to(u.dtype)


def fft_conv(u: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Causal convolution per channel, ``y[t] = sum_{s<=t} k[:, s] u[:, t-s]``, of ``u`` (B, C, L) and ``k`` (C, K).

    FFT of size 2L (taps past L cannot reach any output and are dropped): exact linear convolution, in float32
    at least.
    """
    length = u.shape[-1]
    n = 2 * length
    u = wide(u)
    k_f = torch.fft.rfft(k[..., :length].to(u.dtype), n=n)
    u_f = torch.fft.rfft(u, n=n)
    return torch.fft.irfft(u_f * k_f, n=n)[..., :length]


def modal_filter(log_poles: torch.Tensor, residues: torch.Tensor, length: int) -> torch.Tensor:
    """(D, L) taps of the modal long filter ``h[d, t] = sum_s R[d, s] exp(log_pole[d, s] t)``, in float32 at least.

    ``log_poles`` (D, S, 1) and ``residues`` (D, S) as the checkpoints store them. Summed one state at a time, so
    the working memory is D x L, not D x S x L (16 times less for Evo 2, whose S is 16).
    """
    poles = wide(log_poles)[..., 0]
    res = residues.to(poles.dtype)
    t = torch.arange(length, device=poles.device, dtype=poles.dtype)
    h = torch.zeros(poles.shape[0], length, device=poles.device, dtype=poles.dtype)
    for s in range(poles.shape[1]):
        h = h + res[:, s, None] * torch.exp(poles[:, s, None] * t)
    return h


def complex_modal_filter(poles: torch.Tensor, residues: torch.Tensor, length: int) -> torch.Tensor:
    """(D, L) taps of Evo 1's modal filter ``h[d, t] = Re sum_s R[d, s] p[d, s]**t``, in float32 at least.

    ``poles`` and ``residues`` (D, S, 1, 2) as StripedHyena 1 stores them: complex numbers as (real, imaginary)
    pairs. ``p**t`` is ``exp(t log p)`` with the principal complex logarithm, as the original computes it; summed
    one state at a time (working memory D x L).
    """
    real = wide(poles).dtype
    p = torch.view_as_complex(wide(poles)[..., 0, :].contiguous())
    r = torch.view_as_complex(residues[..., 0, :].to(real).contiguous())
    log_p = p.log()
    t = torch.arange(length, device=p.device, dtype=real)
    h = torch.zeros(p.shape[0], length, device=p.device, dtype=real)
    for s in range(p.shape[1]):
        h = h + (r[:, s, None] * torch.exp(log_p[:, s, None] * t)).real
    return h


def split_features(z: torch.Tensor, *, heads: int, column_split: bool) -> tuple[torch.Tensor, ...]:
    """(B, 3D, L) featurised channels -> x2, x1, v (each B, D, L).

    ``column_split``: the 3D channels are H heads of [x2 | x1 | v] (the training code's layout), else three
    consecutive blocks of D.
    """
    batch, width, length = z.shape
    d = width // 3
    if column_split:
        parts = z.reshape(batch, heads, 3, d // heads, length)
        return tuple(parts[:, :, i].reshape(batch, d, length) for i in range(3))
    return tuple(z.split(d, dim=1))


def deinterleave(z: torch.Tensor) -> torch.Tensor:
    """(B, 3D, L) channels stored as D triples -> channels 0, 3, 6, ..., then 1, 4, ..., then 2, 5, ..."""
    return torch.cat([z[:, 0::3], z[:, 1::3], z[:, 2::3]], dim=1)


def rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the halves of ``x`` (B, L, H, hd) by position (GPT-NeoX layout); ``cos`` / ``sin`` (L, hd / 2)."""
    x1, x2 = x.chunk(2, dim=-1)
    c, s = cos[:, None], sin[:, None]
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1)


def rotary_tables(
    inv_freq: torch.Tensor, length: int, *, scaling: float, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of ``(t / scaling) * inv_freq`` for positions t < ``length``, computed in float32 at least."""
    inv_freq = wide(inv_freq)
    t = torch.arange(length, device=inv_freq.device, dtype=inv_freq.dtype) / scaling
    freqs = torch.outer(t, inv_freq)
    return torch.cos(freqs).to(dtype), torch.sin(freqs).to(dtype)


def causal_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, out_proj: nn.Module
) -> torch.Tensor:  # (B, L, H, hd) each
    """Softmax attention, causal, scaled by 1 / sqrt(hd); torch's fused kernels where the device has them."""
    context = scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
    batch, _, length, _ = context.shape
    return out_proj(context.transpose(1, 2).reshape(batch, length, -1))


def inner_mlp_size(config: Mapping[str, Any], *, multiple_of: int, parallel: int) -> int:
    """The gated MLP's width: ``inner_mlp_size`` where given, else 8/3 of the hidden size rounded up to a
    multiple of ``multiple_of x parallel`` (the originals' rule, so that files without the key still load)."""
    if config.get("inner_mlp_size"):
        return int(config["inner_mlp_size"])
    multiple = multiple_of * parallel
    inner = int(2 * config["hidden_size"] * 4 / 3)
    return multiple * ((inner + multiple - 1) // multiple)


def check_right_padded(mask: torch.Tensor, family: str) -> None:
    """Refuse a mask that pads on the left: these models take no mask, and padding is harmless only on the right."""
    # A 0 followed by a 1 means a pad token before real ones: with no mask inside the model it would change them.
    m = mask.to(torch.int64)
    if bool((m[..., 1:] > m[..., :-1]).any()):
        raise ValueError(f"{family} takes no attention mask: pad batches on the right (a causal model), not the left")


class KeepFloat32(nn.Module):
    """A module whose tensors stay float32 when the model is cast to half precision: the long filters and rotary
    frequencies, which the originals also keep in float32 (poles, residues, explicit long filters; positions). A
    cast to float64 applies."""

    def _apply(self, fn, recurse: bool = True):
        def keep_dtype(t: torch.Tensor) -> torch.Tensor:
            out = fn(t)
            if t.is_floating_point() and out.dtype in (torch.float16, torch.bfloat16) and out.dtype != t.dtype:
                return t.to(device=out.device)
            return out

        return super()._apply(keep_dtype, recurse)


def byte_tokenizer(max_length: int) -> PreTrainedTokenizerFast:
    """The originals' byte tokenizer (``CharLevelTokenizer(512)`` of Evo 1 and Evo 2) as a fast tokenizer.

    Every UTF-8 byte of the text is one token whose id is the byte's value (A=65, C=67, G=71, T=84, N=78, lower
    case its own ids); no token is added around a sequence; eos 0, pad 1 (the original's eod and pad ids),
    padding on the right. The byte-level pre-tokenizer maps bytes to printable stand-ins; the vocabulary maps them
    back to the byte values.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    stand_in = _byte_stand_ins()
    vocab = {stand_in[b]: b for b in range(256)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=None))
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated"),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        model_max_length=max_length,
        padding_side="right",
        model_input_names=["input_ids", "attention_mask"],
        eos_token=stand_in[0],
        pad_token=stand_in[1],
    )


def _byte_stand_ins() -> dict[int, str]:
    """The byte -> character map of byte-level BPE (GPT-2's): printable Latin-1 bytes are themselves, the other
    bytes the characters from U+0100 up, in byte order; it is what ``pre_tokenizers.ByteLevel`` emits."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = {b: chr(b) for b in printable}
    others = [b for b in range(256) if b not in chars]
    chars.update({b: chr(256 + i) for i, b in enumerate(others)})
    return chars
