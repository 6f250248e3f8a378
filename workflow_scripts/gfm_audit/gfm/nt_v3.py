"""Nucleotide Transformer v3 (InstaDeep), natively: a U-Net-like masked LM at single-base resolution.

Architecture (Boshar et al., "A foundational model for joint sequence-function multi-species modeling at scale
for long-range genomic prediction", bioRxiv 2025; the pre-trained ``InstaDeepAI/NTv3_*_pre`` checkpoints), as the
original code defines it (instadeepai/nucleotide-transformer, ``nucleotide_transformer_v3``):

- one token per base; a token embedding, then a stem convolution (kernel 15) and GeLU;
- a down-sampling tower of ``num_downsamples`` blocks, each ``h = gelu(conv_5(LN(h)))``, then
  ``h = h + gelu(conv_1(LN(h)))``, then average pooling by two; widths step from ``conv_init_embed_dim`` to
  ``embed_dim`` (``linspace`` truncated to integers); each block's input is kept for a skip connection;
- ``num_layers`` pre-layer-norm transformer blocks on the compressed sequence: rotary attention (halves rotated,
  ``theta_i = 10000^(-2i/d)``), logits scaled by ``d^-1/2`` after the rotation, SwiGLU feed-forward without
  biases; keys in blocks of ``2**num_downsamples`` padding tokens are masked out;
- an up-sampling tower mirroring the down one: ``h = gelu(up_5(LN(h)))`` (repeat each position twice then a
  convolution, or a stride-2 transposed convolution), then ``h = h + gelu(convT_1(LN(h)))``, plus the skip;
- the LM head ``logits = W gelu(h) + b``. Every GeLU is the tanh approximation; the convolution LayerNorms use
  eps 1e-5, the transformer's ``layer_norm_eps``.

The module and weight names are those of the hub's remote ``modeling_ntv3_pretrained.py`` (its model under
``core``), which ``pretrained.py`` of the original maps one to one onto the JAX parameters, so a downloaded
``model.safetensors`` loads strictly.

The input length must be a multiple of ``2**num_downsamples`` (128 for the released models): a shorter multiple is
reached by padding on the right with the pad token, as the original's users do; the logits of the padding are cut
off. The convolutions read padding like any other token (the original masks padding only out of attention, and
only whole blocks of it), so a window's logits depend on how much padding follows it: the model is told no
attention mask, and the scorer batches windows of one length only, each padded alone to its next multiple.
"""

from __future__ import annotations

import json
import math
import pathlib
from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from ..errors import InputError
from .attention import scaled_dot_product_attention
from .checkpoint_files import read_json

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

ARCHITECTURE = "nt_v3"
KINDS = ("masked",)
# Padding changes what the convolutions read, so scoring must not pad windows to a batch's longest.
ACCEPTS_ATTENTION_MASK = False
TIED_WEIGHTS: dict[str, str] = {}
# The hub's remote code saves the rotary inverse frequencies, which config.json alone fixes.
DERIVED_BUFFERS = (r"core\.transformer_blocks\.\d+\.sa_layer\.rotary_embedding\.inv_freq",)

_MODEL_TYPE = "ntv3"
_REMOTE_MODULE = "modeling_ntv3_pretrained."
_UPSAMPLINGS = ("repeat+conv", "conv_transpose")
# Keys of the post-trained (species-conditioned) checkpoints, whose adaptive layer norms this module lacks.
_CONDITIONED_KEYS = ("conditions_vocab_size", "conditions_names", "bigwigs_per_species", "species_to_token_id")
# Sizes config.json must state: the original JAX config and the hub's config class default them differently
# (num_downsamples 8 / 7, embed_dim 512 / 256, deconv_upsample_type conv_transpose / repeat+conv, ...), so a
# config.json without them is ambiguous. The hub writes them all.
_REQUIRED = (
    "alphabet_size",
    "num_downsamples",
    "attention_heads",
    "token_embed_dim",
    "conv_init_embed_dim",
    "embed_dim",
    "ffn_embed_dim",
    "num_layers",
    "deconv_upsample_type",
)
# Keys on whose defaults the two agree.
_DEFAULTS = {
    "key_size": None,
    "layer_norm_eps": 1e-5,
    "num_hidden_layers_head": 0,
    "use_skip_connection": True,
    "deconv_phase": "odd",
    "pad_token_id": 1,
}
_CONV_LN_EPS = 1e-5  # fixed in the original's convolution blocks, whatever layer_norm_eps says
# -1e30 where a key is masked, as the original writes it (not -inf: a row with every key masked stays finite).
_MASKED_LOGIT = -1e30


def claims(config: dict) -> bool:
    """True for a config.json of a pre-trained NT v3 hub checkpoint: ``model_type`` ntv3, or an ``auto_map``
    entry pointing at the hub's ``modeling_ntv3_pretrained``."""
    if config.get("model_type") == _MODEL_TYPE:
        return True
    auto_map = config.get("auto_map") or {}
    targets = [v for value in auto_map.values() for v in (value if isinstance(value, list) else [value])]
    # "owner/repo--module.Class" when a fine-tuned copy points at the code of the repository it came from
    return any(isinstance(t, str) and t.split("--")[-1].startswith(_REMOTE_MODULE) for t in targets)


def _config(config: dict) -> SimpleNamespace:
    known = (*_REQUIRED, *_DEFAULTS)
    cfg = SimpleNamespace(**{**_DEFAULTS, **{k: config[k] for k in known if k in config}})
    if cfg.key_size is None:
        cfg.key_size = int(cfg.embed_dim) // int(cfg.attention_heads)
    # The original's widths: numpy linspace, truncated to integers.
    cfg.filters = [
        int(f) for f in np.linspace(cfg.conv_init_embed_dim, cfg.embed_dim, int(cfg.num_downsamples) + 1).astype(int)
    ]
    return cfg


def check_supported(config: dict, *, name: str) -> None:
    """One-line InputError for NT v3 configs this implementation does not cover."""
    conditioned = [k for k in _CONDITIONED_KEYS if k in config]
    if conditioned or config.get("model_type", _MODEL_TYPE) != _MODEL_TYPE:
        raise InputError(
            f"model {name}: config.json is a post-trained (species-conditioned) NT v3 checkpoint "
            f"({conditioned[0] if conditioned else 'model_type ' + repr(config.get('model_type'))}), which gfm-audit "
            "does not read natively; use a pre-trained InstaDeepAI/NTv3_*_pre checkpoint"
        )
    missing = [k for k in _REQUIRED if k not in config]
    if missing:
        raise InputError(
            f"model {name}: config.json has no {missing[0]}, whose default the original code and the hub's differ "
            "on; restore config.json from the hub"
        )
    cfg = _config(config)
    if cfg.deconv_upsample_type not in _UPSAMPLINGS:
        raise InputError(
            f"model {name}: config.json deconv_upsample_type {cfg.deconv_upsample_type!r} is not one of the "
            f"original's ({', '.join(_UPSAMPLINGS)}); restore config.json from the hub"
        )
    if cfg.deconv_upsample_type == "conv_transpose" and cfg.deconv_phase != "odd":
        raise InputError(
            f"model {name}: config.json deconv_phase {cfg.deconv_phase!r}: only 'odd' is the original's transposed "
            "convolution (JAX's SAME padding); restore config.json from the hub"
        )
    if int(cfg.num_hidden_layers_head):
        raise InputError(
            f"model {name}: config.json num_hidden_layers_head is {cfg.num_hidden_layers_head}; no released NT v3 "
            "has hidden LM-head layers and the original code and the hub's disagree on their width, so gfm-audit "
            "reads only 0"
        )
    if int(cfg.key_size) * int(cfg.attention_heads) != int(cfg.embed_dim):
        raise InputError(
            f"model {name}: config.json key_size {cfg.key_size} x attention_heads {cfg.attention_heads} is not "
            f"embed_dim {cfg.embed_dim}, which the original's attention projections need"
        )
    if int(cfg.num_downsamples) < 0 or int(cfg.key_size) % 2:
        raise InputError(
            f"model {name}: config.json num_downsamples {cfg.num_downsamples} / key_size {cfg.key_size}: "
            "need num_downsamples >= 0 and an even key_size (rotary halves)"
        )


def _gelu(x: torch.Tensor) -> torch.Tensor:
    # jax.nn.gelu's default, the tanh approximation, used by every GeLU of the original.
    return F.gelu(x, approximate="tanh")


def _channels_last_conv(x: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    return conv(x.transpose(1, 2)).transpose(1, 2)


class _ConvBlock(nn.Module):
    """``gelu(conv(LN(x)))`` on (B, L, C), the convolution padded to keep the length (odd kernels)."""

    def __init__(self, dim_in: int, dim_out: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(dim_in, dim_out, kernel, padding=kernel // 2)
        self.layer_norm = nn.LayerNorm(dim_in, eps=_CONV_LN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _gelu(_channels_last_conv(self.layer_norm(x), self.conv))


class _Residual(nn.Module):
    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.conv_block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class _DownBlock(nn.Module):
    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.conv = _ConvBlock(dim_in, dim_out, 5)
        self.res_conv = _Residual(_ConvBlock(dim_out, dim_out, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.res_conv(self.conv(x))
        b, n, c = x.shape
        return x.view(b, n // 2, 2, c).mean(2)  # average pooling by two (even lengths only)


class _TransposedConv(nn.Module):
    """A transposed convolution with the original's layout and alignment: weight (C_in, C_out, K).

    Stride 2 (JAX ``conv_transpose`` with SAME padding, odd K): each input position lands on the odd output
    positions, zeros between, then a plain convolution padded by K // 2 (the kernel is not flipped). Stride 1:
    the same without the zeros.
    """

    def __init__(self, dim_in: int, dim_out: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(dim_in, dim_out, kernel))
        self.bias = nn.Parameter(torch.zeros(dim_out))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, L)
        if self.stride == 2:
            spread = x.new_zeros(x.shape[0], x.shape[1], 2 * x.shape[2])
            spread[..., 1::2] = x
            x = spread
        k = self.weight.shape[-1]
        return F.conv1d(x, self.weight.transpose(0, 1), self.bias, padding=k // 2)


class _UpConvBlock(nn.Module):
    """``gelu(up(LN(x)))``: up-sampling by two (``upsample``) or none, on (B, L, C)."""

    def __init__(self, dim_in: int, dim_out: int, kernel: int, upsample: str | None) -> None:
        super().__init__()
        self.upsample = upsample
        if upsample == "repeat+conv":
            self.conv = nn.Conv1d(dim_in, dim_out, kernel, padding=kernel // 2)
        else:
            self.conv = _TransposedConv(dim_in, dim_out, kernel, 2 if upsample == "conv_transpose" else 1)
        self.layer_norm = nn.LayerNorm(dim_in, eps=_CONV_LN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer_norm(x).transpose(1, 2)
        if self.upsample == "repeat+conv":
            x = torch.repeat_interleave(x, 2, dim=-1)
        return _gelu(self.conv(x).transpose(1, 2))


class _UpBlock(nn.Module):
    def __init__(self, dim_in: int, dim_out: int, upsample: str) -> None:
        super().__init__()
        self.conv = _UpConvBlock(dim_in, dim_out, 5, upsample)
        self.res_conv = _Residual(_UpConvBlock(dim_out, dim_out, 1, None))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_conv(self.conv(x))


class _Projection(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, dim)


class _Rotary(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        # Persistent, as in the hub's code: its weight files carry it.
        self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, H, D)
        # In float32 whatever the model's dtype: bfloat16 would round positions past 256.
        t = torch.arange(x.shape[1], device=x.device, dtype=torch.float32)
        freqs = torch.outer(t, self.inv_freq.float())[None, :, None, :]
        cos, sin = freqs.cos().to(x.dtype), freqs.sin().to(x.dtype)
        half = x.shape[-1] // 2
        x1, x2 = x[..., :half], x[..., half:]
        return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


class _Attention(nn.Module):
    def __init__(self, cfg: SimpleNamespace) -> None:
        super().__init__()
        self.heads, self.key_size = int(cfg.attention_heads), int(cfg.key_size)
        self.query_head = _Projection(cfg.embed_dim)
        self.key_head = _Projection(cfg.embed_dim)
        self.value_head = _Projection(cfg.embed_dim)
        self.mha_output = nn.Linear(cfg.embed_dim, cfg.embed_dim)
        self.rotary_embedding = _Rotary(self.key_size)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        b, n, _ = x.shape

        def heads(proj: _Projection) -> torch.Tensor:
            return proj.linear(x).view(b, n, self.heads, self.key_size)

        q = self.rotary_embedding(heads(self.query_head)).transpose(1, 2)
        k = self.rotary_embedding(heads(self.key_head)).transpose(1, 2)
        v = heads(self.value_head).transpose(1, 2)
        ctx = scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.key_size**-0.5)
        return self.mha_output(ctx.transpose(1, 2).reshape(b, n, self.heads * self.key_size))


class _TransformerBlock(nn.Module):
    def __init__(self, cfg: SimpleNamespace) -> None:
        super().__init__()
        self.self_attention_layer_norm = nn.LayerNorm(cfg.embed_dim, eps=cfg.layer_norm_eps)
        self.final_layer_norm = nn.LayerNorm(cfg.embed_dim, eps=cfg.layer_norm_eps)
        self.sa_layer = _Attention(cfg)
        self.fc1 = nn.Linear(cfg.embed_dim, 2 * cfg.ffn_embed_dim, bias=False)
        self.fc2 = nn.Linear(cfg.ffn_embed_dim, cfg.embed_dim, bias=False)

    def forward(self, h: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        h = h + self.sa_layer(self.self_attention_layer_norm(h), bias)
        x1, x2 = self.fc1(self.final_layer_norm(h)).chunk(2, dim=-1)
        return h + self.fc2(F.silu(x1) * x2)


class _Stem(nn.Module):
    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(dim_in, dim_out, 15, padding=7)


class _LMHead(nn.Module):
    def __init__(self, cfg: SimpleNamespace) -> None:
        super().__init__()
        self.head = nn.Linear(cfg.conv_init_embed_dim, cfg.alphabet_size)


class _Core(nn.Module):
    def __init__(self, cfg: SimpleNamespace) -> None:
        super().__init__()
        f = cfg.filters
        self.embed_layer = nn.Embedding(cfg.alphabet_size, cfg.token_embed_dim)
        self.stem = _Stem(cfg.token_embed_dim, cfg.conv_init_embed_dim)
        self.conv_tower_blocks = nn.ModuleList(_DownBlock(a, b) for a, b in zip(f[:-1], f[1:], strict=True))
        self.transformer_blocks = nn.ModuleList(_TransformerBlock(cfg) for _ in range(cfg.num_layers))
        r = f[::-1]
        self.deconv_tower_blocks = nn.ModuleList(
            _UpBlock(a, b, cfg.deconv_upsample_type) for a, b in zip(r[:-1], r[1:], strict=True)
        )
        self.lm_head = _LMHead(cfg)


class NTv3ForMaskedLM(nn.Module):
    """NT v3 masked LM; ``state_dict()`` keys are those of the hub's ``NTv3PreTrained``."""

    def __init__(self, cfg: SimpleNamespace) -> None:
        super().__init__()
        self.config = cfg
        self.core = _Core(cfg)
        self.block = 2 ** int(cfg.num_downsamples)
        # The shortest input with at least one real token per down-sampling block (for callers that probe).
        self.min_input_tokens = self.block

    def get_input_embeddings(self) -> nn.Embedding:
        return self.core.embed_layer

    def get_output_embeddings(self) -> nn.Linear:
        return self.core.lm_head.head

    def _check_length(self, n: int) -> None:
        if n < self.block:
            source = getattr(self, "gfm_audit_source", "this NT v3 model")
            raise InputError(
                f"{source}: an input of {n} tokens is shorter than one down-sampling block of {self.block} tokens "
                f"(2**num_downsamples, num_downsamples {self.config.num_downsamples} in config.json), so it would "
                f"be read mostly as padding; use windows (windows.length) of at least {self.block} bases"
            )

    def forward(self, input_ids: torch.Tensor, *, output_hidden_states: bool = False) -> SimpleNamespace:
        n = input_ids.shape[1]
        self._check_length(n)
        width = -(-n // self.block) * self.block
        ids = F.pad(input_ids, (0, width - n), value=self.config.pad_token_id)
        core = self.core
        h = _gelu(_channels_last_conv(core.embed_layer(ids), core.stem.conv))
        states = [h]
        skips = []
        for block in core.conv_tower_blocks:
            skips.append(h)
            h = block(h)
        # Keys of blocks that hold only padding are masked out, as the original does (ids after padding here).
        real = ids.ne(self.config.pad_token_id).view(ids.shape[0], -1, self.block).any(-1)
        bias = None
        if not bool(real.all()):
            bias = torch.zeros(real.shape, dtype=h.dtype, device=h.device).masked_fill(~real, _MASKED_LOGIT)
            bias = bias[:, None, None, :]
        for layer in core.transformer_blocks:
            h = layer(h, bias)
        for block, skip in zip(core.deconv_tower_blocks, reversed(skips), strict=True):
            h = block(h)
            if self.config.use_skip_connection:
                h = h + skip
            states.append(h)
        logits = core.lm_head.head(_gelu(h))
        return SimpleNamespace(
            logits=logits[:, :n],
            hidden_states=tuple(s[:, :n] for s in states) if output_hidden_states else None,
        )


def build_lm(config: dict, *, kind: str) -> NTv3ForMaskedLM:
    """The NT v3 masked LM from config.json alone (weights not loaded), float32, eval mode."""
    if kind not in KINDS:
        raise InputError(f"NT v3 is a masked LM; kind {kind!r} is not available (use one of {KINDS})")
    return NTv3ForMaskedLM(_config(config)).float().eval()


# ---- tokenizer --------------------------------------------------------------------------------------------------

# The hub tokenizer's vocabulary when no vocab.json is given (its class default), and the original's.
_DEFAULT_VOCAB = ("<unk>", "<pad>", "<mask>", "<cls>", "<eos>", "<bos>", "A", "T", "C", "G", "N")
_BASES = ("A", "T", "C", "G", "N")
_SPECIALS = {
    "unk_token": "<unk>",
    "pad_token": "<pad>",
    "mask_token": "<mask>",
    "cls_token": "<cls>",
    "eos_token": "<eos>",
    "bos_token": "<bos>",
}


def _content(value):
    return value.get("content") if isinstance(value, dict) else value


def _vocab(folder: pathlib.Path) -> dict[str, int]:
    path = folder / "vocab.json"
    if not path.is_file():
        return {t: i for i, t in enumerate(_DEFAULT_VOCAB)}
    try:
        loaded = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); restore the file from the hub"
        ) from None
    if isinstance(loaded, dict):
        return {str(t): int(i) for t, i in loaded.items()}
    return {str(t): i for i, t in enumerate(loaded)}


def load_tokenizer(folder: pathlib.Path) -> PreTrainedTokenizerFast:
    """The hub's ``NTv3Tokenizer`` rebuilt as a fast tokenizer with offsets, without its remote code.

    One token per character: A, T, C, G and N upper-cased (soft-masked bases read as the bases), any other
    character ``<unk>``; no special token is added. The vocabulary is ``vocab.json`` (token -> id) where the folder
    has it, else the class default ``<unk> <pad> <mask> <cls> <eos> <bos> A T C G N``.
    """
    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    folder = pathlib.Path(folder)
    vocab = _vocab(folder)
    tok_config = read_json(folder / "tokenizer_config.json")
    specials = dict(_SPECIALS)
    # from_pretrained's precedence: class defaults, then tokenizer_config.json, then special_tokens_map.json.
    for source in (tok_config, read_json(folder / "special_tokens_map.json")):
        for key in _SPECIALS:
            if key in source and _content(source[key]) is not None:
                specials[key] = _content(source[key])
    named = folder / "vocab.json" if (folder / "vocab.json").is_file() else folder / "tokenizer_config.json"
    lacking = [b for b in _BASES if b not in vocab] + [
        specials[k] for k in ("unk_token", "pad_token", "mask_token") if specials[k] not in vocab
    ]
    if lacking:
        raise InputError(
            f"{named}: the NT v3 vocabulary has no {lacking[0]!r}; use the tokenizer files downloaded with the "
            "checkpoint"
        )
    backend = Tokenizer(WordLevel(vocab, unk_token=specials["unk_token"]))
    backend.normalizer = normalizers.Sequence([normalizers.Replace(b.lower(), b) for b in _BASES])
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        model_max_length=int(tok_config.get("model_max_length", 1048576)),
        model_input_names=["input_ids"],
        **{key: value for key, value in specials.items() if value in vocab},
    )
