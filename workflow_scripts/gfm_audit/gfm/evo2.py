"""Evo 2 (Arc Institute; StripedHyena 2) in plain PyTorch: reads the checkpoint a user downloads, no remote code.

Brixi et al. 2025, "Genome modeling and design across all domains of life with Evo 2" (bioRxiv
10.1101/2025.02.18.634036). The original runs through ``vortex`` (Zymrael/vortex, ``StripedHyena``); the
``evo2`` package gives each model a YAML config (``evo2/configs/evo2-7b-1m.yml``, ...) and downloads a ``.pt``
state dict under vortex's parameter names (``evo2_7b.pt``, shipped in parts that it concatenates). A folder for
gfm-audit holds that ``.pt`` and that YAML, nothing else; no ``config.json``.

``num_layers`` blocks, each one of four kinds by the YAML's layer lists, pre-norm (RMSNorm) with residuals:

- Hyena-SE (``hcs_layer_idxs``), Hyena-MR (``hcm_layer_idxs``), Hyena-LI (``hcl_layer_idxs``):
  ``r = u + out_filter_dense(Hyena(projections(pre_norm(u))))``, then ``r + mlp(post_norm(r))``; the Hyena
  operators are in :mod:`.striped_hyena` (SE: a 7-tap FIR, MR: a 128-tap FIR by FFT, LI: a modal long filter);
- attention (``attn_layer_idxs``): ``r = u + MHA(pre_norm(u))`` with rotary positions (divided by
  ``rotary_emb_scaling_factor`` where ``use_interpolated_rotary_pos_emb``), then ``r + mlp(post_norm(r))``;

then a final RMSNorm and the LM head (the embedding matrix, ``tie_embeddings``). The MLP is gated,
``l3(act(l1 x) * l2 x)``, with GELU (erf) in the first block and the identity after it (``evo2_style_activations``).
The checkpoint's attention ``Wqkv`` rows are per head [q | k | v] (``column_split``, which the original permutes
when it loads); here they are read in that layout. The tokenizer is the original's ``CharLevelTokenizer(512)``:
one token per UTF-8 byte, id = byte value, nothing added; pad is 1.

The model takes no attention mask: padding on the right leaves the real tokens' outputs unchanged (causality);
``forward`` refuses a mask that pads on the left.
"""

from __future__ import annotations

import io
import pathlib
import pickle
import re
import types
import zipfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import InputError, first_line, listed
from . import striped_hyena as sh
from .weights import SAFETENSORS, weight_format
from .weights import read_state_dict as read_safetensors

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

ARCHITECTURE = "evo2"
KINDS = ("causal",)
ACCEPTS_ATTENTION_MASK = False
# With tie_embeddings the LM head is the embedding module itself (no second name in the file or in the model).
TIED_WEIGHTS: dict[str, str] = {}
# The rotary inverse frequencies are a persistent buffer of the original (so in its files), fixed by the YAML.
DERIVED_BUFFERS = (r"blocks\.\d+\.inner_mha_cls\.rotary_emb\.inv_freq",)
# The key under which read_folder_config records the YAML file's name (for messages).
CONFIG_FILE_KEY = "gfm_audit_config_file"

_LAYER_LISTS = ("hcs_layer_idxs", "hcm_layer_idxs", "hcl_layer_idxs", "attn_layer_idxs")
_BLOCK_KIND = {"hcs_layer_idxs": "hcs", "hcm_layer_idxs": "hcm", "hcl_layer_idxs": "hcl", "attn_layer_idxs": "attn"}
_SIZES = (
    "vocab_size",
    "hidden_size",
    "num_layers",
    "num_attention_heads",
    "short_filter_length",
    "hcs_filter_length",
    "hcs_filter_groups",
    "hcm_filter_length",
    "hcm_filter_groups",
    "state_size",
)
# What the original does for a key the YAML leaves out (vortex reads the config with ``dict.get``): note the
# defaults that are not the released values (tie_embeddings, interleave off, column_split_hyena on).
_DEFAULTS: dict[str, Any] = {
    "eps": 1e-5,
    "column_split": True,
    "column_split_hyena": True,
    "interleave": False,
    "hyena_flip_x1x2": False,
    "short_filter_bias": False,
    "hyena_out_proj_bias": False,
    "mha_out_proj_bias": True,
    "tie_embeddings": False,
    "final_norm": True,
    "evo2_style_activations": False,
    "mlp_activation": "gelu",
    "rotary_emb_base": 1000000,
    "use_interpolated_rotary_pos_emb": False,
    "rotary_emb_scaling_factor": 1.0,
    "inner_size_multiple_of": 64,
    "model_parallel_size": 1,
    "proj_groups": 1,
    "max_seqlen": 8192,
}
# Values that could hold a downloaded checkpoint's only copy of a non-tensor: Transformer Engine's FP8 scaling
# metadata (a BytesIO, or None) under ``<linear>._extra_state``. Neither is code; neither is a weight.
_EXTRA_STATE = "._extra_state"


def _get(config: Mapping[str, Any], key: str):
    value = config.get(key)
    return _DEFAULTS[key] if value is None and key in _DEFAULTS else value


def _source(config: Mapping[str, Any]) -> str:
    return str(config.get(CONFIG_FILE_KEY) or "the Evo 2 YAML config")


def claims(config: dict) -> bool:
    """True for an Evo 2 (StripedHyena 2) config: the four layer lists of its block kinds."""
    return all(isinstance(config.get(k), list) for k in _LAYER_LISTS)


def _is_evo2_yaml(data: Any) -> bool:
    return isinstance(data, dict) and claims(data)


def read_folder_config(folder: pathlib.Path, *, name: str) -> dict | None:
    """The Evo 2 YAML config of a folder without config.json (with its file name under ``CONFIG_FILE_KEY``);
    None when the folder looks like no Evo 2 checkpoint; one line when it holds the weights but not the YAML."""
    import yaml

    folder = pathlib.Path(folder)
    found = []
    for file in sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]):
        try:
            data = yaml.safe_load(file.read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise InputError(
                f"model '{name}': {file} is not valid YAML ({first_line(exc)}); copy the model's config again from "
                "ArcInstitute/evo2 (evo2/configs)"
            ) from None
        if _is_evo2_yaml(data):
            found.append((file, data))
    if len(found) > 1:
        raise InputError(
            f"model '{name}': {folder} holds {len(found)} Evo 2 YAML configs ({', '.join(f.name for f, _ in found)}); "
            "keep only the one of this checkpoint"
        )
    if found:
        file, data = found[0]
        return {**data, CONFIG_FILE_KEY: file.name}
    weights = _checkpoint_files(folder)
    if weights:
        raise InputError(
            f"model '{name}': {folder} holds {weights[0].name} but neither config.json nor an Evo 2 YAML config "
            f"(a .yml with {', '.join(_LAYER_LISTS)}); copy the model's YAML from ArcInstitute/evo2 evo2/configs "
            "into the folder (evo2-7b-1m.yml for evo2_7b, evo2-7b-8k.yml for evo2_7b_base, evo2-1b-8k.yml for "
            "evo2_1b_base, ...)"
        )
    return None


def _checkpoint_files(folder: pathlib.Path) -> list[pathlib.Path]:
    return sorted([*folder.glob("*.pt"), *folder.glob("*.pt.part*")])


def check_supported(config: dict, *, name: str) -> None:
    """Stop with one line for a config that is not a complete Evo 2 one, or one the original cannot run."""
    source = _source(config)
    for key in (*_SIZES, *_LAYER_LISTS):
        if key not in config:
            raise InputError(f"model '{name}': {source} has no {key}; use the checkpoint's own YAML from evo2/configs")
    for key in _SIZES:
        value = config[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError(f"model '{name}': {source} {key} is {value!r}; expected a positive integer")
    layers = config["num_layers"]
    seen: dict[int, str] = {}
    for key in _LAYER_LISTS:
        for index in config[key]:
            if not isinstance(index, int) or not 0 <= index < layers or index in seen:
                why = f"also in {seen[index]}" if index in seen else f"not a layer of num_layers {layers}"
                raise InputError(f"model '{name}': {source} {key} has {index!r}, {why}; the YAML is damaged")
            seen[index] = key
    if len(seen) != layers:
        missing = sorted(set(range(layers)) - set(seen))
        raise InputError(
            f"model '{name}': {source} gives no block kind to layers {missing[:5]} of num_layers {layers}; "
            "the YAML is damaged"
        )
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    if hidden % heads or (hidden // heads) % 2:
        raise InputError(
            f"model '{name}': {source} hidden_size {hidden} is not num_attention_heads {heads} heads of an even size"
        )
    for key in ("hcs_filter_groups", "hcm_filter_groups"):
        if hidden % config[key]:
            raise InputError(f"model '{name}': {source} {key} {config[key]} does not divide hidden_size {hidden}")
    unsupported = {
        # The original's forward cannot run without its final norm.
        "final_norm": (not _get(config, "final_norm"), "false"),
        # Grouped-query attention takes another path of the original, used by no released Evo 2.
        "proj_groups": (_get(config, "proj_groups") != 1, _get(config, "proj_groups")),
        # A truncated, direct long filter, used by no released Evo 2.
        "long_fir_threshold": (config.get("long_fir_threshold") is not None, config.get("long_fir_threshold")),
        "mlp_activation": (_get(config, "mlp_activation") not in ("gelu", "silu"), _get(config, "mlp_activation")),
    }
    for key, (bad, value) in unsupported.items():
        if bad:
            raise InputError(
                f"model '{name}': {source} {key} is {value}, which no released Evo 2 uses and gfm-audit does not "
                "implement; use the checkpoint's own YAML from evo2/configs"
            )


def max_positions(config: dict) -> int:
    """The longest input the checkpoint was trained on (``max_seqlen``): rotary attention has no table to bound it,
    but past it the model is extrapolating."""
    return int(_get(config, "max_seqlen"))


def _inner_mlp_size(config: Mapping[str, Any]) -> int:
    multiple_of, parallel = _get(config, "inner_size_multiple_of"), _get(config, "model_parallel_size")
    return sh.inner_mlp_size(config, multiple_of=multiple_of, parallel=parallel)


def _activation(config: Mapping[str, Any], layer: int):
    if layer > 0 and _get(config, "evo2_style_activations"):
        return None
    return F.silu if _get(config, "mlp_activation") == "silu" else F.gelu


# Filters and rotary frequencies stay float32 under a half-precision cast, as the original keeps them.


class _HyenaFilter(sh.KeepFloat32):
    """``filter`` of a Hyena block: the short featurising FIR and the inner filter of its kind."""

    def __init__(self, config: Mapping[str, Any], kind: str) -> None:
        super().__init__()
        d = config["hidden_size"]
        self.kind, self.width, self.heads = kind, d, config["num_attention_heads"]
        self.interleave = bool(_get(config, "interleave"))
        self.column_split = bool(_get(config, "column_split_hyena"))
        self.flip = bool(_get(config, "hyena_flip_x1x2"))
        self.short_filter_weight = nn.Parameter(torch.randn(3 * d, 1, config["short_filter_length"]))
        bias = nn.Parameter(torch.zeros(3 * d)) if _get(config, "short_filter_bias") else None
        self.register_parameter("short_filter_bias", bias)
        if kind == "hcl":
            # One modal filter per channel whatever hcl_filter_groups says, as the original builds it.
            self.log_poles = nn.Parameter(-torch.rand(d, config["state_size"], 1))
            self.residues = nn.Parameter(torch.randn(d, config["state_size"]))
            self.D = nn.Parameter(torch.zeros(d))
            self.register_parameter("h", None)
        else:
            length, groups = config[f"{kind}_filter_length"], config[f"{kind}_filter_groups"]
            self.h = nn.Parameter(torch.randn(groups, 1, length))
            self.register_parameter("D", nn.Parameter(torch.zeros(d)) if length >= sh.FFT_FILTER_LENGTH else None)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(B, L, 3D) projected features -> (B, L, D)."""
        dtype, length = z.dtype, z.shape[1]
        x = sh.direct_fir(z.transpose(1, 2), self.short_filter_weight)
        if self.short_filter_bias is not None:
            x = x + self.short_filter_bias[None, :, None].to(dtype)
        if self.interleave:
            x = sh.deinterleave(x)
        x2, x1, v = sh.split_features(x, heads=self.heads, column_split=self.column_split)
        if self.flip:
            x1, x2 = x2, x1
        x1v = x1 * v
        if self.kind == "hcl":
            y = sh.fft_conv(x1v, sh.modal_filter(self.log_poles, self.residues, length))
        elif self.D is not None:
            y = sh.fft_conv(x1v, sh.grouped(self.h, self.width)[:, 0])
        else:
            y = sh.wide(sh.direct_fir(x1v, sh.grouped(self.h, self.width)))
        if self.D is not None:
            y = y + sh.wide(x1v) * self.D[:, None].to(y.dtype)
        return (y.to(dtype) * x2).transpose(1, 2)


class _ConvBlock(nn.Module):
    def __init__(self, config: Mapping[str, Any], layer: int, kind: str) -> None:
        super().__init__()
        d, eps = config["hidden_size"], float(_get(config, "eps"))
        self.pre_norm, self.post_norm = sh.RMSNorm(d, eps), sh.RMSNorm(d, eps)
        self.filter = _HyenaFilter(config, kind)
        # The original's input projection has a bias only where the YAML says qkv_proj_bias: true.
        self.projections = nn.Linear(d, 3 * d, bias=bool(config.get("qkv_proj_bias")))
        self.out_filter_dense = nn.Linear(d, d, bias=bool(_get(config, "hyena_out_proj_bias")))
        self.mlp = sh.GatedMLP(
            d,
            _inner_mlp_size(config),
            _activation(config, layer),
        )

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        r = self.out_filter_dense(self.filter(self.projections(self.pre_norm(u)))) + u
        return self.mlp(self.post_norm(r)) + r


class _Rotary(sh.KeepFloat32):
    def __init__(self, head_dim: int, base: float) -> None:
        super().__init__()
        exponents = torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim
        self.register_buffer("inv_freq", 1.0 / (float(base) ** exponents))


class _Attention(nn.Module):
    """``inner_mha_cls``: rotary multi-head causal attention."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        d, heads = config["hidden_size"], config["num_attention_heads"]
        self.heads, self.head_dim = heads, d // heads
        self.column_split = bool(_get(config, "column_split"))
        self.scaling = (
            float(_get(config, "rotary_emb_scaling_factor")) if _get(config, "use_interpolated_rotary_pos_emb") else 1.0
        )
        # The attention's bias defaults on where the YAML is silent (MHA's own default), unlike the Hyena ones.
        self.Wqkv = nn.Linear(d, 3 * d, bias=bool(config.get("qkv_proj_bias", True)))
        self.out_proj = nn.Linear(d, d, bias=bool(_get(config, "mha_out_proj_bias")))
        self.rotary_emb = _Rotary(self.head_dim, _get(config, "rotary_emb_base"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        qkv = self.Wqkv(x)
        if self.column_split:  # the file's rows: per head [q | k | v]
            q, k, v = qkv.reshape(batch, length, self.heads, 3, self.head_dim).unbind(3)
        else:
            q, k, v = qkv.reshape(batch, length, 3, self.heads, self.head_dim).unbind(2)
        cos, sin = sh.rotary_tables(self.rotary_emb.inv_freq, length, scaling=self.scaling, dtype=q.dtype)
        return sh.causal_attention(sh.rotary(q, cos, sin), sh.rotary(k, cos, sin), v, out_proj=self.out_proj)


class _AttentionBlock(nn.Module):
    def __init__(self, config: Mapping[str, Any], layer: int) -> None:
        super().__init__()
        d, eps = config["hidden_size"], float(_get(config, "eps"))
        self.pre_norm, self.post_norm = sh.RMSNorm(d, eps), sh.RMSNorm(d, eps)
        self.inner_mha_cls = _Attention(config)
        self.mlp = sh.GatedMLP(
            d,
            _inner_mlp_size(config),
            _activation(config, layer),
        )

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        r = self.inner_mha_cls(self.pre_norm(u)) + u
        return self.mlp(self.post_norm(r)) + r


def _block_kinds(config: Mapping[str, Any]) -> list[str]:
    kinds = {i: _BLOCK_KIND[key] for key in _LAYER_LISTS for i in config[key]}
    return [kinds[i] for i in range(config["num_layers"])]


class Evo2ForCausalLM(nn.Module):
    """Parameter names as vortex's ``StripedHyena``: ``embedding_layer``, ``blocks.N.*``, ``norm``, ``unembed``."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        self.config = dict(config)
        d, vocab = config["hidden_size"], config["vocab_size"]
        self.embedding_layer = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList(
            [
                _AttentionBlock(config, i) if kind == "attn" else _ConvBlock(config, i, kind)
                for i, kind in enumerate(_block_kinds(config))
            ]
        )
        self.norm = sh.RMSNorm(d, float(_get(config, "eps")))
        self.tied = bool(_get(config, "tie_embeddings"))
        if not self.tied:
            self.unembed = nn.Linear(d, vocab, bias=False)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embedding_layer

    def get_output_embeddings(self) -> nn.Module | None:
        return None if self.tied else self.unembed

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
            sh.check_right_padded(attention_mask, "Evo 2")
        h = self.embedding_layer(input_ids)
        states = [h] if output_hidden_states else None
        for block in self.blocks:
            h = block(h)
            if states is not None:
                states.append(h)
        h = self.norm(h)
        if states is not None:
            states.append(h)
        head = self.embedding_layer.weight if self.tied else self.unembed.weight
        logits = F.linear(h, head).float()
        return types.SimpleNamespace(logits=logits, hidden_states=tuple(states) if states is not None else None)


def build_lm(config: dict, *, kind: str = "causal") -> Evo2ForCausalLM:
    """The causal LM from the YAML config alone, float32, eval mode; load the checkpoint's weights strictly after."""
    if kind not in KINDS:
        raise InputError(f"Evo 2 is a causal language model; kind '{kind}' is not available (use causal)")
    return Evo2ForCausalLM(config).float().eval()


def config_file_name(config: Mapping[str, Any]) -> str:
    """The file that describes the model, for the loader's messages."""
    return _source(config)


def read_state_dict(folder: str | pathlib.Path, owner: str) -> dict[str, torch.Tensor]:
    """The weights of an Evo 2 folder: its ``.pt`` read with ``weights_only=True``, or the model.safetensors that
    gfm-audit writes for a model it trained (fine-tuning, a gfm_head classifier), which takes precedence."""
    folder = pathlib.Path(folder)
    if weight_format(folder) == "safetensors":
        return read_safetensors(folder, owner)
    files = _checkpoint_files(folder)
    whole = [f for f in files if f.suffix == ".pt"]
    if not whole and files:
        parts = " ".join(f.name for f in files)
        raise InputError(
            f"{owner}: {folder} holds the checkpoint in parts ({parts}); join them into one file as the evo2 package "
            f"does: cat {parts} > {files[0].name.split('.part')[0]}"
        )
    if not whole:
        raise InputError(f"{owner}: {folder} holds no weights (the checkpoint's .pt file, or {SAFETENSORS[0]})")
    if len(whole) > 1:
        raise InputError(f"{owner}: {folder} holds {len(whole)} .pt files ({listed(f.name for f in whole)}); keep one")
    return _load_pt(whole[0], owner)


def _load_pt(file: pathlib.Path, owner: str) -> dict[str, torch.Tensor]:
    """The tensors of a plain state dict, refusing in one line, before anything of it runs, a file that pickles
    code; Transformer Engine's FP8 metadata (``*._extra_state``, BytesIO) is read as data and dropped."""
    what_to_do = "use the checkpoint as downloaded, or re-save it as a plain state dict: torch.save(model.state_dict())"
    try:
        with torch.serialization.safe_globals([io.BytesIO]):
            state = torch.load(file, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(file))
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        reason = f"it pickles the Python object {found.group(1)}" if found else "it cannot be unpickled as tensors"
        raise InputError(
            f"{owner}: {file} is not a plain state dict ({reason}) and is not loaded; {what_to_do}"
        ) from None
    except (EOFError, RuntimeError, ValueError) as exc:
        raise InputError(f"{owner}: {file} is empty or damaged ({first_line(exc)}); {what_to_do}") from None
    if not isinstance(state, Mapping):
        raise InputError(
            f"{owner}: {file} holds a {type(state).__name__}, not a state dict (tensor name -> tensor); {what_to_do}"
        )
    tensors = {}
    for key, value in state.items():
        if isinstance(key, str) and key.endswith(_EXTRA_STATE):
            continue  # FP8 scaling metadata of the projections: the original drops it too without Transformer Engine
        if not isinstance(value, torch.Tensor):
            raise InputError(
                f"{owner}: {file} is not a plain state dict: its entry {key!r} is a {type(value).__name__}, not a "
                f"tensor; {what_to_do}"
            )
        tensors[key] = value
    return tensors


def load_tokenizer(folder: pathlib.Path) -> PreTrainedTokenizerFast:
    """The original's byte tokenizer (``CharLevelTokenizer(512)``: one token per UTF-8 byte, id = byte value,
    nothing added; eos 0, pad 1) as a fast tokenizer built in-process (:func:`.striped_hyena.byte_tokenizer`)."""
    config = read_folder_config(pathlib.Path(folder), name=pathlib.Path(folder).name) or {}
    return sh.byte_tokenizer(max_positions(config) if config else int(1e30))
