"""Evo 1 (Arc Institute / Together; StripedHyena 1) in plain PyTorch: reads the hub checkpoint, no remote code.

Nguyen et al. 2024, "Sequence modeling and design from molecular to genome scale with Evo" (Science 386,
eado9336). The hub's ``togethercomputer/evo-1-8k-base`` and ``evo-1-131k-base`` hold a ``config.json``
(``model_type: stripedhyena``, ``architectures: [StripedHyenaModelForCausalLM]``) and the weights (safetensors or
``pytorch_model*.bin``) of remote code whose ``StripedHyenaModelForCausalLM`` keeps StripedHyena 1
(togethercomputer/stripedhyena, ``stripedhyena/model.py``) as ``backbone``; the parameter names here are that
code's: ``backbone.embedding_layer``, ``backbone.blocks.N.*``, ``backbone.norm``, ``backbone.unembed``.

``num_layers`` blocks, each a Hyena block (``hyena_layer_idxs``) or an attention block (``attn_layer_idxs``),
pre-norm (RMSNorm) with residuals:

- Hyena: ``r = u + out_filter_dense(Hyena(projections(pre_norm(u))))``, then ``r + mlp(post_norm(r))``. The
  operator (:mod:`.striped_hyena`): a 3-tap causal FIR with bias over the 3D projected channels, split per head
  into [x2 | x1 | v] (``column_split_hyena``) or in three blocks, then ``x2 * (h * (x1 v) + D x1 v)`` with the
  modal long filter ``h[d, t] = Re sum_s R[d, s] p[d, s]**t`` of complex poles and residues (``state_size``
  modes a channel), applied by FFT over the whole sequence;
- attention: ``r = u + MHA(pre_norm(u))``, flash-attention's ``MHA``: ``Wqkv`` rows [q | k | v], each heads
  in a row, rotary positions on q and k (GPT-NeoX halves, base ``rotary_emb_base``; positions divided by
  ``rotary_emb_scaling_factor`` where ``use_interpolated_rotary_pos_emb``), causal softmax; then the MLP;

then a final RMSNorm and the LM head (the embedding matrix where ``tie_embeddings``). The MLP is gated,
``l3(act(l1 x) * l2 x)`` with ``mlp_activation`` (GELU, erf, in the released models) in every block. The
tokenizer is the evo package's ``CharLevelTokenizer(512)``: one token per UTF-8 byte, id = byte value, nothing
added; pad 1.

The model takes no attention mask: padding on the right leaves the real tokens' outputs unchanged (causality);
``forward`` refuses a mask that pads on the left.
"""

from __future__ import annotations

import pathlib
import types
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import InputError
from . import striped_hyena as sh

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

ARCHITECTURE = "evo1"
KINDS = ("causal",)
ACCEPTS_ATTENTION_MASK = False
# With tie_embeddings the head is the embedding matrix itself (no second parameter here).
TIED_WEIGHTS: dict[str, str] = {}
# The original's tied unembed IS its embedding module, so torch.save of its state dict names the matrix twice:
# that copy is checked equal and dropped (weights.merge_copies).
SHARED_COPIES = ((r"backbone\.unembed\.weight", "backbone.embedding_layer.weight"),)
# The rotary inverse frequencies are a persistent buffer of the original (so in its files), fixed by config.json.
DERIVED_BUFFERS = (r"backbone\.blocks\.\d+\.inner_mha_cls\.rotary_emb\.inv_freq",)

_MODEL_TYPE = "stripedhyena"
_CLASS = "StripedHyenaModelForCausalLM"
# The byte vocabulary of Evo 1; the StripedHyena 7B language models (32000 BPE tokens) are not read here.
_VOCAB_SIZE = 512
_LAYER_LISTS = ("hyena_layer_idxs", "attn_layer_idxs")
_SIZES = (
    "vocab_size",
    "hidden_size",
    "num_layers",
    "num_attention_heads",
    "short_filter_length",
    "state_size",
    "hyena_filter_groups",
)
# What the original does for a key config.json leaves out (it reads the config with ``dict.get``).
_DEFAULTS: dict[str, Any] = {
    "eps": 1e-5,
    "column_split_hyena": True,
    "short_filter_bias": True,
    "qkv_proj_bias": True,
    "mha_out_proj_bias": True,
    "tie_embeddings": False,
    "final_norm": True,
    "mlp_activation": "silu",
    "rotary_emb_base": 10000,
    "use_interpolated_rotary_pos_emb": False,
    "rotary_emb_scaling_factor": 1.0,
    "inner_size_multiple_of": 64,
    "model_parallel_size": 1,
    "proj_groups": 1,
    "max_seqlen": 8192,
}


def _get(config: Mapping[str, Any], key: str):
    value = config.get(key)
    return _DEFAULTS[key] if value is None and key in _DEFAULTS else value


def claims(config: dict) -> bool:
    """True for an Evo 1 config.json: StripedHyena 1 (by model_type or class) with the byte vocabulary."""
    striped_hyena = config.get("model_type") == _MODEL_TYPE or _CLASS in (config.get("architectures") or [])
    layered = all(isinstance(config.get(k), list) for k in _LAYER_LISTS)
    return striped_hyena and layered and config.get("vocab_size") == _VOCAB_SIZE


def check_supported(config: dict, *, name: str) -> None:
    """Stop with one line for a config.json that is not a complete Evo 1 one, or one the original cannot run."""
    fix = "use the checkpoint's own config.json from the hub (togethercomputer/evo-1-8k-base or evo-1-131k-base)"
    for key in (*_SIZES, *_LAYER_LISTS):
        if key not in config:
            raise InputError(f"model '{name}': config.json has no {key}; {fix}")
    for key in _SIZES:
        value = config[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError(f"model '{name}': config.json {key} is {value!r}; expected a positive integer")
    layers = config["num_layers"]
    seen: dict[int, str] = {}
    for key in _LAYER_LISTS:
        for index in config[key]:
            if not isinstance(index, int) or not 0 <= index < layers or index in seen:
                why = f"also in {seen[index]}" if index in seen else f"not a layer of num_layers {layers}"
                raise InputError(f"model '{name}': config.json {key} has {index!r}, {why}; {fix}")
            seen[index] = key
    if len(seen) != layers:
        missing = sorted(set(range(layers)) - set(seen))
        raise InputError(
            f"model '{name}': config.json gives no block kind to layers {missing[:5]} of num_layers {layers}; {fix}"
        )
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    if hidden % heads or (hidden // heads) % 2:
        raise InputError(
            f"model '{name}': config.json hidden_size {hidden} is not num_attention_heads {heads} heads of an even "
            f"size; {fix}"
        )
    unsupported = {
        # The original's forward cannot run without its final norm, nor without the short filter's bias.
        "final_norm": (not _get(config, "final_norm"), "false"),
        "short_filter_bias": (not _get(config, "short_filter_bias"), "false"),
        # Grouped filters and grouped-query attention take other paths of the original, used by no released Evo 1.
        "hyena_filter_groups": (config["hyena_filter_groups"] != 1, config["hyena_filter_groups"]),
        "proj_groups": (_get(config, "proj_groups") != 1, _get(config, "proj_groups")),
        # A truncated, direct long filter, used by no released Evo 1.
        "long_fir_threshold": (config.get("long_fir_threshold") is not None, config.get("long_fir_threshold")),
        "mlp_activation": (_get(config, "mlp_activation") not in ("gelu", "silu"), _get(config, "mlp_activation")),
    }
    for key, (bad, value) in unsupported.items():
        if bad:
            raise InputError(
                f"model '{name}': config.json {key} is {value}, which no released Evo 1 uses and gfm-audit does not "
                f"implement; {fix}"
            )


def max_positions(config: dict) -> int:
    """The longest input the checkpoint was trained on (``max_seqlen``): neither the modal filters nor rotary
    attention have a table to bound it, but past it the model is extrapolating."""
    return int(_get(config, "max_seqlen"))


class _HyenaFilter(sh.KeepFloat32):
    """``filter`` of a Hyena block: the short featurising FIR and the modal long filter (complex poles and
    residues stored as (real, imaginary) pairs, one system a channel)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        d, states = config["hidden_size"], config["state_size"]
        self.heads = config["num_attention_heads"]
        self.column_split = bool(_get(config, "column_split_hyena"))
        self.short_filter_weight = nn.Parameter(torch.randn(3 * d, 1, config["short_filter_length"]))
        self.short_filter_bias = nn.Parameter(torch.zeros(3 * d))
        self.D = nn.Parameter(torch.zeros(d))
        radius = 0.5 + 0.4 * torch.rand(d, states, 1)  # decaying modes until the checkpoint's are loaded
        self.poles = nn.Parameter(torch.stack([radius, torch.zeros_like(radius)], dim=-1))
        self.residues = nn.Parameter(torch.randn(d, states, 1, 2))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(B, L, 3D) projected features -> (B, L, D)."""
        dtype, length = z.dtype, z.shape[1]
        x = sh.direct_fir(z.transpose(1, 2), self.short_filter_weight)
        x = x + self.short_filter_bias[None, :, None].to(dtype)
        x2, x1, v = sh.split_features(x, heads=self.heads, column_split=self.column_split)
        x1v = x1 * v
        y = sh.fft_conv(x1v, sh.complex_modal_filter(self.poles, self.residues, length))
        y = y + sh.wide(x1v) * self.D[:, None].to(y.dtype)
        return (y.to(dtype) * x2).transpose(1, 2)


class _HyenaBlock(nn.Module):
    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        d, eps = config["hidden_size"], float(_get(config, "eps"))
        self.pre_norm, self.post_norm = sh.RMSNorm(d, eps), sh.RMSNorm(d, eps)
        self.filter = _HyenaFilter(config)
        self.projections = nn.Linear(d, 3 * d)
        self.out_filter_dense = nn.Linear(d, d)
        self.mlp = sh.GatedMLP(
            d,
            _inner_mlp_size(config),
            _activation(config),
        )

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        r = self.out_filter_dense(self.filter(self.projections(self.pre_norm(u)))) + u
        return self.mlp(self.post_norm(r)) + r


def _inner_mlp_size(config: Mapping[str, Any]) -> int:
    multiple_of, parallel = _get(config, "inner_size_multiple_of"), _get(config, "model_parallel_size")
    return sh.inner_mlp_size(config, multiple_of=multiple_of, parallel=parallel)


def _activation(config: Mapping[str, Any]):
    return F.silu if _get(config, "mlp_activation") == "silu" else F.gelu


class _Rotary(sh.KeepFloat32):
    def __init__(self, head_dim: int, base: float) -> None:
        super().__init__()
        exponents = torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim
        self.register_buffer("inv_freq", 1.0 / (float(base) ** exponents))


class _Attention(nn.Module):
    """``inner_mha_cls``: flash-attention's ``MHA``, rotary causal multi-head attention."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        d, heads = config["hidden_size"], config["num_attention_heads"]
        self.heads, self.head_dim = heads, d // heads
        interpolated = _get(config, "use_interpolated_rotary_pos_emb")
        self.scaling = float(_get(config, "rotary_emb_scaling_factor")) if interpolated else 1.0
        self.Wqkv = nn.Linear(d, 3 * d, bias=bool(_get(config, "qkv_proj_bias")))
        self.out_proj = nn.Linear(d, d, bias=bool(_get(config, "mha_out_proj_bias")))
        self.rotary_emb = _Rotary(self.head_dim, _get(config, "rotary_emb_base"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        # The rows of Wqkv: all heads' q, then all k, then all v ("(three h d)").
        q, k, v = self.Wqkv(x).reshape(batch, length, 3, self.heads, self.head_dim).unbind(2)
        cos, sin = sh.rotary_tables(self.rotary_emb.inv_freq, length, scaling=self.scaling, dtype=q.dtype)
        return sh.causal_attention(sh.rotary(q, cos, sin), sh.rotary(k, cos, sin), v, out_proj=self.out_proj)


class _AttentionBlock(nn.Module):
    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        d, eps = config["hidden_size"], float(_get(config, "eps"))
        self.pre_norm, self.post_norm = sh.RMSNorm(d, eps), sh.RMSNorm(d, eps)
        self.inner_mha_cls = _Attention(config)
        self.mlp = sh.GatedMLP(
            d,
            _inner_mlp_size(config),
            _activation(config),
        )

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        r = self.inner_mha_cls(self.pre_norm(u)) + u
        return self.mlp(self.post_norm(r)) + r


class _StripedHyena(nn.Module):
    """The original ``StripedHyena``: ``embedding_layer``, ``blocks``, ``norm``, ``unembed``."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        d, vocab = config["hidden_size"], config["vocab_size"]
        self.embedding_layer = nn.Embedding(vocab, d)
        attention = set(config["attn_layer_idxs"])
        self.blocks = nn.ModuleList(
            [_AttentionBlock(config) if i in attention else _HyenaBlock(config) for i in range(config["num_layers"])]
        )
        self.norm = sh.RMSNorm(d, float(_get(config, "eps")))
        self.tied = bool(_get(config, "tie_embeddings"))
        if not self.tied:
            self.unembed = nn.Embedding(vocab, d)

    def head(self) -> torch.Tensor:
        return self.embedding_layer.weight if self.tied else self.unembed.weight


class Evo1ForCausalLM(nn.Module):
    """The hub's ``StripedHyenaModelForCausalLM``: the original model as ``backbone``."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        self.config = dict(config)
        self.backbone = _StripedHyena(config)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.backbone.embedding_layer

    def get_output_embeddings(self) -> nn.Module | None:
        return None if self.backbone.tied else self.backbone.unembed

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        output_hidden_states: bool = False,
        **_ignored,
    ) -> types.SimpleNamespace:
        """``.logits`` (B, T, vocab_size), float32; ``.hidden_states``: embeddings, each block, the final norm."""
        if attention_mask is not None:
            sh.check_right_padded(attention_mask, "Evo 1")
        h = self.backbone.embedding_layer(input_ids)
        states = [h] if output_hidden_states else None
        for block in self.backbone.blocks:
            h = block(h)
            if states is not None:
                states.append(h)
        h = self.backbone.norm(h)
        if states is not None:
            states.append(h)
        logits = F.linear(h, self.backbone.head()).float()
        return types.SimpleNamespace(logits=logits, hidden_states=tuple(states) if states is not None else None)


def build_lm(config: dict, *, kind: str = "causal") -> Evo1ForCausalLM:
    """The causal LM from config.json alone, float32, eval mode; load the checkpoint's weights strictly after."""
    if kind not in KINDS:
        raise InputError(f"Evo 1 is a causal language model; kind '{kind}' is not available (use causal)")
    return Evo1ForCausalLM(config).float().eval()


def load_tokenizer(folder: pathlib.Path) -> PreTrainedTokenizerFast:
    """The evo package's byte tokenizer (``CharLevelTokenizer(512)``: one token per UTF-8 byte, id = byte value,
    nothing added; eos 0, pad 1) built in-process; the hub's ``tokenizer.py`` is remote code and is not run."""
    import json

    file = pathlib.Path(folder) / "config.json"
    config = json.loads(file.read_text()) if file.is_file() else {}
    return sh.byte_tokenizer(max_positions(config) if config else int(1e30))
