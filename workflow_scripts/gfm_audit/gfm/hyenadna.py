"""HyenaDNA (Nguyen et al. 2023) in plain PyTorch: loads the hub's ``LongSafari/hyenadna-*-hf`` folders untouched.

Source paper: E. Nguyen et al., "HyenaDNA: Long-Range Genomic Sequence Modeling at Single Nucleotide Resolution",
NeurIPS 2023 (arXiv:2306.15794); the operator is M. Poli et al., "Hyena Hierarchy", ICML 2023 (arXiv:2302.10866).

A block is pre-norm: ``r = x + Hyena(LN1(x))``, ``out = r + MLP(LN2(r))`` with ``MLP = fc2(gelu_tanh(fc1(.)))``;
after the last block a final LayerNorm, then an LM head over the vocabulary padded to a multiple of
``pad_vocab_size_multiple``. The Hyena operator of order 2 on ``u`` (B, L, D):

    x0, x1, v = split(causal_conv3(in_proj(u)))          depthwise short filter, kernel 3, causal
    h[t]      = FFN_sin(z[t]) * (exp(-t_norm * |delta|) + 0.05)   implicit long filter, t < L
    y         = out_proj(x0 * (h * (v * x1) + bias * (v * x1)))    ``*`` over time: causal convolution

``FFN_sin`` is Linear -> sin(freq * .) -> (Linear -> sin(freq * .)) x num_inner_mlps -> Linear (no bias), one
``freq`` vector shared by every sine of a filter; ``z`` is the positional embedding ``[t, cos(-f w), sin(-f w)]``
(a checkpoint stores its own, trained, ``z``). The long convolution is done by FFT of size ``2L``, so it is exact
linear (not circular) convolution. Every step is causal: logits at position ``i`` depend only on tokens ``<= i``.

The model takes no attention mask: padding on the left (the tokenizer's side, as in the original) changes the
outputs of the real tokens; padding on the right does not (causality). ``forward`` refuses a mask that pads left.
"""

from __future__ import annotations

import json
import math
import pathlib
import types
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import InputError
from .checkpoint_files import read_json

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

ARCHITECTURE = "hyenadna"
KINDS = ("causal",)
ACCEPTS_ATTENTION_MASK = False
# The hub's config.json says tie_word_embeddings: false and ships lm_head.weight; a config without the key means
# true (transformers' PretrainedConfig default), and then the head is the input embedding matrix.
TIED_WEIGHTS = {"lm_head.weight": "hyena.backbone.embeddings.word_embeddings.weight"}
# config.json key holding the longest input (tokens, [SEP] included) the checkpoint accepts.
MAX_LENGTH_KEY = "max_seq_len"
# The original shares one Sin module (its ``freq``) between the sines of a filter, so torch.save(state_dict())
# names it at every place it is used (the hub's pytorch_model.bin files do); the loader keeps the first name
# and refuses the file if the copies differ. (copy's name, the name kept.)
SHARED_COPIES = ((r"(.+\.implicit_filter)\.\d+\.freq", r"\1.1.freq"),)

# HyenaConfig's defaults, for keys a config.json leaves out.
_DEFAULTS = {
    "vocab_size": 12,
    "d_model": 256,
    "d_inner": None,
    "train_freq": True,
    "max_seq_len": 1024,
    "emb_dim": 3,
    "n_layer": 12,
    "num_inner_mlps": 2,
    "hyena_order": 2,
    "short_filter_order": 3,
    "filter_order": 64,
    "activation_freq": 1,
    "layer_norm_epsilon": 1e-5,
    "pad_vocab_size_multiple": 8,
    "tie_word_embeddings": True,
}

# The original character tokenizer's fixed vocabulary (no vocab file on the hub): specials, then one id a character.
_SPECIAL_IDS = {"[CLS]": 0, "[SEP]": 1, "[BOS]": 2, "[MASK]": 3, "[PAD]": 4, "[RESERVED]": 5, "[UNK]": 6}
_CHARACTERS = ("A", "C", "G", "T", "N")
_SPECIAL_ROLES = {
    "bos_token": "[BOS]",
    "eos_token": "[SEP]",
    "sep_token": "[SEP]",
    "cls_token": "[CLS]",
    "pad_token": "[PAD]",
    "mask_token": "[MASK]",
    "unk_token": "[UNK]",
}


def _get(config: dict, key: str):
    value = config.get(key, _DEFAULTS[key])
    return _DEFAULTS[key] if value is None and key != "d_inner" else value


def claims(config: dict) -> bool:
    """True for a HyenaDNA config.json (model_type ``hyenadna``, a ``HyenaDNA*`` architecture or auto_map entry).

    StripedHyena / Evo also ship a ``modeling_hyena.py``; only class names with ``HyenaDNA`` count.
    """
    if str(config.get("model_type", "")).lower() == "hyenadna":
        return True
    names = list(config.get("architectures") or [])
    auto_map = config.get("auto_map") or {}
    for value in auto_map.values():
        names.extend(value if isinstance(value, list | tuple) else [value])
    return any(isinstance(n, str) and n.rsplit(".", 1)[-1].startswith("HyenaDNA") for n in names)


def check_supported(config: dict, *, name: str) -> None:
    """Stop with one line for configs the original code cannot run, or runs non-causally."""
    order = _get(config, "hyena_order")
    if order != 2:
        raise InputError(
            f"model '{name}': config.json hyena_order is {order}; the HyenaDNA checkpoints (and the original "
            "code's filter) have order 2 only; use a hub LongSafari/hyenadna-*-hf checkpoint"
        )
    short = _get(config, "short_filter_order")
    if short != 3:
        # The original pads the short convolution by 2 on each side and keeps the first L outputs: causal only
        # for kernel size 3; a wider kernel would let a token see the bases after it.
        raise InputError(
            f"model '{name}': config.json short_filter_order is {short}; only 3 (causal, as in every hub "
            "HyenaDNA checkpoint) is supported"
        )
    emb_dim = _get(config, "emb_dim")
    if emb_dim < 3 or emb_dim % 2 == 0:
        raise InputError(
            f"model '{name}': config.json emb_dim is {emb_dim}; HyenaDNA's filter embedding needs an odd "
            "emb_dim >= 3 (time, cosine and sine bands)"
        )
    for key in ("d_model", "n_layer", "max_seq_len", "filter_order", "vocab_size"):
        value = _get(config, key)
        if not isinstance(value, int) or value < 1:
            raise InputError(f"model '{name}': config.json {key} is {value!r}; expected a positive integer")


def max_positions(config: dict) -> int:
    """The longest input in tokens: the filter's positional embedding has ``max_seq_len`` steps."""
    return int(_get(config, MAX_LENGTH_KEY))


def _padded_vocab(config: dict) -> int:
    vocab, multiple = _get(config, "vocab_size"), _get(config, "pad_vocab_size_multiple")
    return vocab + (-vocab) % multiple


class _Sine(nn.Module):
    """``sin(freq * x)``; the first sine of a filter owns ``freq``, the others read it (one shared parameter)."""

    def __init__(self, freq: torch.Tensor | None, *, owner: _Sine | None = None, trainable: bool = True) -> None:
        super().__init__()
        # Not a submodule: the shared parameter must appear once in state_dict, under the owner's name, as in the
        # hub's files (which keep implicit_filter.1.freq only).
        self._owner = (owner,) if owner is not None else ()
        if owner is None:
            if trainable:
                self.freq = nn.Parameter(freq)
            else:
                self.register_buffer("freq", freq, persistent=False)
        else:
            # A file written without de-duplication (torch.save of the original state dict) also names the
            # aliases: the loader checks that they equal the owner's (SHARED_COPIES) and drops them; a direct
            # load_state_dict drops them here.
            self._register_load_state_dict_pre_hook(_drop_alias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        freq = self._owner[0].freq if self._owner else self.freq
        return torch.sin(freq * x)


def _drop_alias(state_dict, prefix, *_args) -> None:
    state_dict.pop(prefix + "freq", None)


class _PositionalEmbedding(nn.Module):
    def __init__(self, seq_len: int, emb_dim: int) -> None:
        super().__init__()
        bands = (emb_dim - 1) // 2
        t = torch.linspace(0, 1, seq_len)[None, :, None]
        w = 2 * math.pi * torch.linspace(0, seq_len - 1, seq_len)[None, :, None] / seq_len
        f = torch.linspace(1e-4, bands - 1, bands)[None, None]
        self.register_buffer("z", torch.cat([t, torch.cos(-f * w), torch.sin(-f * w)], dim=-1))
        self.register_buffer("t", t)


class _Modulation(nn.Module):
    def __init__(self, d_model: int, *, fast: float = 0.3, slow: float = 1.5, target: float = 1e-2) -> None:
        super().__init__()
        self.shift = 0.05
        deltas = torch.linspace(math.log(target) / slow, math.log(target) / fast, d_model)[None, None]
        self.register_buffer("deltas", deltas)


class _Filter(nn.Module):
    """Implicit long filter: an FFN of sines over the positional embedding, windowed by exponential decay."""

    def __init__(self, config: dict) -> None:
        super().__init__()
        d_model, order = _get(config, "d_model"), _get(config, "filter_order")
        emb_dim = _get(config, "emb_dim")
        self.bias = nn.Parameter(torch.zeros(d_model * (_get(config, "hyena_order") - 1)))
        self.pos_emb = _PositionalEmbedding(_get(config, "max_seq_len"), emb_dim)
        freq = float(_get(config, "activation_freq")) * torch.ones(1, order)
        first = _Sine(freq, trainable=bool(_get(config, "train_freq")))
        layers: list[nn.Module] = [nn.Linear(emb_dim, order), first]
        for _ in range(_get(config, "num_inner_mlps")):
            layers += [nn.Linear(order, order), _Sine(None, owner=first)]
        layers.append(nn.Linear(order, d_model, bias=False))
        self.implicit_filter = nn.Sequential(*layers)
        self.modulation = _Modulation(d_model)

    def _apply(self, fn, recurse: bool = True):
        # The filter stays float32 when the model is cast to bfloat16/float16: its input, the position t in [0, 1]
        # over up to 1M steps, and sin(freq * .) of its pre-activations lose all precision in 8 mantissa bits
        # (the kernel came out wrong by its own size in a test). It is small (L x filter_order); moves to another
        # device still apply.
        def keep_dtype(t: torch.Tensor) -> torch.Tensor:
            out = fn(t)
            if t.is_floating_point() and out.dtype != t.dtype:
                return t.to(device=out.device)
            return out

        return super()._apply(keep_dtype, recurse)

    def kernel(self, length: int) -> torch.Tensor:
        """(D, L) filter taps for the first ``length`` positions."""
        z, t = self.pos_emb.z[:, :length], self.pos_emb.t[:, :length]
        h = self.implicit_filter(z.to(self.implicit_filter[0].weight.dtype))
        h = h * (torch.exp(-t * self.modulation.deltas.abs()) + self.modulation.shift)
        return h[0].transpose(0, 1)


def _fft_causal_conv(u: torch.Tensor, k: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """``y[t] = sum_{s<=t} k[s] u[t-s] + skip * u[t]`` per channel; FFT size 2L makes it linear, not circular.

    Scaled as the original (1/n on the filter's forward transform, none on the inverse), in float32.
    """
    length = u.shape[-1]
    n = 2 * length
    k_f = torch.fft.rfft(k.float(), n=n) / n
    u_f = torch.fft.rfft(u.float(), n=n)
    y = torch.fft.irfft(u_f * k_f, n=n, norm="forward")[..., :length]
    return (y + u * skip.unsqueeze(-1)).to(u.dtype)


class _HyenaOperator(nn.Module):
    def __init__(self, config: dict) -> None:
        super().__init__()
        d = _get(config, "d_model")
        self.d_model = d
        self.l_max = _get(config, "max_seq_len")
        width = d * (_get(config, "hyena_order") + 1)
        self.in_proj = nn.Linear(d, width)
        self.out_proj = nn.Linear(d, d)
        # Padding 2 both sides, then the first L outputs: output t sees inputs t-2..t (causal for kernel 3).
        self.short_filter = nn.Conv1d(width, width, _get(config, "short_filter_order"), padding=2, groups=width)
        self.filter_fn = _Filter(config)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        length = u.shape[-2]
        uc = self.short_filter(self.in_proj(u).transpose(1, 2))[..., :length]
        x0, x1, v = uc.split(self.d_model, dim=1)
        v = _fft_causal_conv(v * x1, self.filter_fn.kernel(length), self.filter_fn.bias)
        return self.out_proj((v * x0).transpose(1, 2))


class _Mlp(nn.Module):
    def __init__(self, config: dict) -> None:
        super().__init__()
        d = _get(config, "d_model")
        inner = config.get("d_inner") or 4 * d
        self.fc1 = nn.Linear(d, inner)
        self.fc2 = nn.Linear(inner, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class _Block(nn.Module):
    def __init__(self, config: dict) -> None:
        super().__init__()
        d = _get(config, "d_model")
        self.mixer = _HyenaOperator(config)
        self.norm1 = nn.LayerNorm(d)  # eps 1e-5 in the original whatever layer_norm_epsilon says (ln_f uses it)
        self.mlp = _Mlp(config)
        self.norm2 = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.mixer(self.norm1(x)) + x
        return self.mlp(self.norm2(residual)) + residual


class _Embeddings(nn.Module):
    def __init__(self, config: dict) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(_padded_vocab(config), _get(config, "d_model"))


class _Backbone(nn.Module):
    def __init__(self, config: dict) -> None:
        super().__init__()
        self.embeddings = _Embeddings(config)
        self.layers = nn.ModuleList([_Block(config) for _ in range(_get(config, "n_layer"))])
        self.ln_f = nn.LayerNorm(_get(config, "d_model"), eps=_get(config, "layer_norm_epsilon"))


class _HyenaModel(nn.Module):
    def __init__(self, config: dict) -> None:
        super().__init__()
        self.backbone = _Backbone(config)


class HyenaDNAForCausalLM(nn.Module):
    """Weight names as the hub's ``HyenaDNAForCausalLM``: ``hyena.backbone.*`` and ``lm_head.weight``."""

    def __init__(self, config: dict) -> None:
        super().__init__()
        self.config = dict(config)
        self.max_length = _get(config, "max_seq_len")
        self.hyena = _HyenaModel(config)
        self.lm_head = nn.Linear(_get(config, "d_model"), _padded_vocab(config), bias=False)
        if _get(config, "tie_word_embeddings"):
            self.lm_head.weight = self.hyena.backbone.embeddings.word_embeddings.weight

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        output_hidden_states: bool = False,
        **_ignored,
    ) -> types.SimpleNamespace:
        """``.logits`` (B, T, padded vocab), float32; ``.hidden_states``: embeddings, each block, final norm."""
        if attention_mask is not None:
            _check_right_padded(attention_mask)
        if input_ids.shape[-1] > self.max_length:
            raise ValueError(
                f"HyenaDNA input of {input_ids.shape[-1]} tokens is longer than the checkpoint's max_seq_len "
                f"{self.max_length}; use shorter windows"
            )
        backbone = self.hyena.backbone
        h = backbone.embeddings.word_embeddings(input_ids)
        states = [h] if output_hidden_states else None
        for layer in backbone.layers:
            h = layer(h)
            if states is not None:
                states.append(h)
        h = backbone.ln_f(h)
        if states is not None:
            states.append(h)
        logits = self.lm_head(h).float()
        return types.SimpleNamespace(logits=logits, hidden_states=tuple(states) if states is not None else None)


def _check_right_padded(mask: torch.Tensor) -> None:
    # A 0 followed by a 1 means a pad token before real ones: with no mask inside the model it would change them.
    m = mask.to(torch.int64)
    if bool((m[..., 1:] > m[..., :-1]).any()):
        raise ValueError("HyenaDNA takes no attention mask: pad batches on the right (a causal model), not the left")


def build_lm(config: dict, *, kind: str = "causal") -> HyenaDNAForCausalLM:
    """The causal LM from config.json alone, float32, eval mode; load the checkpoint's weights strictly after."""
    if kind not in KINDS:
        raise InputError(f"HyenaDNA is a causal language model; kind '{kind}' is not available (use causal)")
    return HyenaDNAForCausalLM(config).float().eval()


def load_tokenizer(folder: pathlib.Path) -> PreTrainedTokenizerFast:
    """The character tokenizer of a hub HyenaDNA folder, as a fast tokenizer built in-process (no remote code).

    Ids as the original (``tokenization_hyena.HyenaDNATokenizer`` / hyena-dna's ``CharacterTokenizer``): the
    specials 0-6, then A C G T N = 7..11; any other character, lower case included, is ``[UNK]`` (6); one
    ``[SEP]`` is appended to every sequence; padding on the left.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    folder = pathlib.Path(folder)
    path = folder / "tokenizer_config.json"
    if not path.is_file():
        raise InputError(
            f"HyenaDNA checkpoint {folder} has no tokenizer_config.json; download it with the model's other files"
        )
    try:
        tok_config = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} is not valid JSON ({exc}); download it again") from None
    roles = dict(_SPECIAL_ROLES)
    special_map = folder / "special_tokens_map.json"
    for source in (tok_config, read_json(special_map)):
        for role in roles:
            value = source.get(role)
            if isinstance(value, dict):
                value = value.get("content")
            if isinstance(value, str) and value in _SPECIAL_IDS:
                roles[role] = value
    characters = _characters(tok_config)
    vocab = dict(_SPECIAL_IDS)
    for i, ch in enumerate(characters):
        vocab.setdefault(ch, i + len(_SPECIAL_IDS))
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    # Every character is its own token, newlines and spaces included, as the original's list(text).
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    sep = roles["sep_token"]
    backend.post_processor = processors.TemplateProcessing(
        single=f"$A {sep}", pair=f"$A {sep} $B:1 {sep}:1", special_tokens=[(sep, vocab[sep])]
    )
    backend.decoder = decoders.Fuse()
    max_len = tok_config.get("model_max_length")
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        model_max_length=int(max_len) if isinstance(max_len, int | float) and max_len < 1e12 else int(1e30),
        padding_side=tok_config.get("padding_side", "left"),
        # The original lists input_ids only; the mask is still offered so that a caller can see the padding.
        model_input_names=["input_ids", "attention_mask"],
        **roles,
    )


def _characters(tok_config: dict) -> tuple[str, ...]:
    # The hub's HyenaDNATokenizer fixes A C G T N; the older CharacterTokenizer saved them as "char_ords".
    if isinstance(tok_config.get("characters"), list):
        return tuple(str(c) for c in tok_config["characters"])
    if isinstance(tok_config.get("char_ords"), list):
        return tuple(chr(int(c)) for c in tok_config["char_ords"])
    return _CHARACTERS
