"""Nucleotide Transformer v2 (InstaDeep), natively: an ESM-style masked LM with rotary attention and SwiGLU.

Architecture (Dalla-Torre et al., "Nucleotide Transformer: building and evaluating robust foundation models
for human genomics", Nature Methods 2024; the v2 models of its revised version), as the hub checkpoints
``InstaDeepAI/nucleotide-transformer-v2-*`` define it in their remote ``modeling_esm.py``:

- pre-layer-norm blocks: ``h = h + W_o Attn(LN(h))``, then ``h = h + W_2 (silu(x_1) * x_2)`` with
  ``[x_1, x_2] = W_1 LN(h)`` (SwiGLU; ``add_bias_fnn`` false drops the feed-forward biases);
- attention scales the query by ``d^-1/2`` *before* the rotary embedding (RoFormer, Su et al. 2021) with
  ``theta_i = 10000^(-2i/d)`` over the head dimension ``d``, halves rotated as ``(-x_2, x_1)``;
- a final LayerNorm (``emb_layer_norm_after``), then the RoBERTa-style LM head
  ``logits = W_dec LN(gelu(W h + b)) + bias`` with the exact (erf) GeLU.

The module and parameter names are the original's, so a downloaded ``model.safetensors`` loads strictly.
NT v1 (plain ESM, no ``auto_map``) is not claimed: transformers' own ``EsmForMaskedLM`` reads it.
"""

from __future__ import annotations

import math
import pathlib
import re
from types import SimpleNamespace
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..errors import InputError
from .attention import scaled_dot_product_attention
from .checkpoint_files import read_json

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

ARCHITECTURE = "nt_v2"
KINDS = ("masked",)
ACCEPTS_ATTENTION_MASK = True
TIED_WEIGHTS = {"lm_head.decoder.weight": "esm.embeddings.word_embeddings.weight"}
# Persistent buffers fixed by config.json alone (regular expressions over weight names): the rotary
# inverse frequencies, which the original saves with the weights.
DERIVED_BUFFERS = (r"esm\.encoder\.layer\.\d+\.attention\.self\.rotary_embeddings\.inv_freq",)

_REMOTE_FILES = ("modeling_esm.", "esm_config.")


def claims(config: dict) -> bool:
    """True for a config.json of an NT v2 hub checkpoint: ``model_type`` esm with ``auto_map`` entries
    pointing at the hub's ``esm_config`` / ``modeling_esm`` files (NT v1 has no ``auto_map``)."""
    if config.get("model_type") != "esm":
        return False
    auto_map = config.get("auto_map") or {}
    targets = [v for value in auto_map.values() for v in (value if isinstance(value, list) else [value])]
    # "owner/repo--module.Class" when a fine-tuned copy points at the code of the repository it came from
    return any(isinstance(t, str) and t.split("--")[-1].startswith(_REMOTE_FILES) for t in targets)


def check_supported(config: dict, *, name: str) -> None:
    """One-line InputError for NT-style configs this implementation does not cover."""
    auto_map = config.get("auto_map") or {}
    if "AutoModelForMaskedLM" not in auto_map:
        raise InputError(
            f"model {name}: config.json auto_map has no AutoModelForMaskedLM, so this ESM-style checkpoint has no "
            "masked-LM head to score with (e.g. SegmentNT); use a Nucleotide Transformer masked-LM checkpoint"
        )
    kind = config.get("position_embedding_type", "absolute")
    if kind not in ("rotary", "absolute"):
        raise InputError(
            f"model {name}: config.json position_embedding_type {kind!r} is not supported for NT v2 "
            "(rotary or absolute); use architecture: transformers with trust_remote_code for this checkpoint"
        )
    for key in ("is_folding_model", "is_decoder", "add_cross_attention"):
        if config.get(key):
            raise InputError(
                f"model {name}: config.json {key} is true, which the NT v2 masked LM does not use; "
                "point path: at a Nucleotide Transformer masked-LM checkpoint"
            )
    hidden, heads = int(config.get("hidden_size", 768)), int(config.get("num_attention_heads", 12))
    if hidden % heads:
        raise InputError(
            f"model {name}: config.json hidden_size {hidden} is not a multiple of num_attention_heads {heads}"
        )


def _gelu(x: torch.Tensor) -> torch.Tensor:
    # The ESM head's exact GeLU, written out as the original does (F.gelu rounds differently in the last bit).
    return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class _Rotary(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        # Persistent, as in the original: the hub weight files carry it.
        self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim)))
        self._cache: tuple | None = None

    def _tables(self, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        key = (n, device, self.inv_freq.dtype, self.inv_freq.data_ptr())
        if self._cache is None or self._cache[0] != key:
            t = torch.arange(n, device=device).type_as(self.inv_freq)
            freqs = torch.outer(t, self.inv_freq)
            emb = torch.cat((freqs, freqs), dim=-1)
            self._cache = (key, emb.cos()[None, None], emb.sin()[None, None])
        return self._cache[1], self._cache[2]

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cos, sin = self._tables(k.shape[-2], k.device)
        return q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin


class _SelfAttention(nn.Module):
    def __init__(self, cfg: SimpleNamespace) -> None:
        super().__init__()
        self.heads = cfg.num_attention_heads
        self.head_dim = cfg.hidden_size // cfg.num_attention_heads
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.value = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        if cfg.position_embedding_type == "rotary":
            self.rotary_embeddings = _Rotary(self.head_dim)
        else:
            self.rotary_embeddings = None

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.heads, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, h: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        q = self._split(self.query(h)) * self.head_dim**-0.5
        k = self._split(self.key(h))
        v = self._split(self.value(h))
        if self.rotary_embeddings is not None:
            q, k = self.rotary_embeddings(q, k)
        # The query is already scaled (ESM's order, which matters with rotary), hence scale=1.
        ctx = scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=1.0)
        b, _, t, _ = ctx.shape
        return ctx.permute(0, 2, 1, 3).reshape(b, t, self.heads * self.head_dim)


class _Dense(nn.Module):
    def __init__(self, n_in: int, n_out: int, *, bias: bool = True) -> None:
        super().__init__()
        self.dense = nn.Linear(n_in, n_out, bias=bias)


class _Attention(nn.Module):
    def __init__(self, cfg: SimpleNamespace) -> None:
        super().__init__()
        self.self = _SelfAttention(cfg)
        self.output = _Dense(cfg.hidden_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, h: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return self.output.dense(self.self(self.LayerNorm(h), bias)) + h


class _Layer(nn.Module):
    def __init__(self, cfg: SimpleNamespace) -> None:
        super().__init__()
        self.attention = _Attention(cfg)
        self.intermediate = _Dense(cfg.hidden_size, 2 * cfg.intermediate_size, bias=cfg.add_bias_fnn)
        self.output = _Dense(cfg.intermediate_size, cfg.hidden_size, bias=cfg.add_bias_fnn)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, h: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        h = self.attention(h, bias)
        x1, x2 = self.intermediate.dense(self.LayerNorm(h)).chunk(2, dim=-1)
        return self.output.dense(nn.functional.silu(x1) * x2) + h


class _Embeddings(nn.Module):
    def __init__(self, cfg: SimpleNamespace) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size, padding_idx=cfg.pad_token_id)
        # Present in every original checkpoint, used only with absolute positions.
        self.position_embeddings = nn.Embedding(
            cfg.max_position_embeddings, cfg.hidden_size, padding_idx=cfg.pad_token_id
        )
        self.layer_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps) if cfg.emb_layer_norm_before else None
        self.absolute = cfg.position_embedding_type == "absolute"
        self.token_dropout = cfg.token_dropout
        self.pad_token_id = cfg.pad_token_id
        self.mask_token_id = cfg.mask_token_id

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x = self.word_embeddings(input_ids)
        if self.token_dropout:
            # ESM's mask-dropout rescaling: masked tokens are zeroed and the rest scaled by
            # (1 - 0.15 * 0.8) / (1 - observed mask share), as in training.
            is_mask = input_ids == self.mask_token_id
            x = x.masked_fill(is_mask.unsqueeze(-1), 0.0)
            observed = is_mask.sum(-1).float() / attention_mask.sum(-1)
            x = (x * (1 - 0.15 * 0.8) / (1 - observed)[:, None, None]).to(x.dtype)
        if self.absolute:
            real = input_ids.ne(self.pad_token_id).int()
            positions = (torch.cumsum(real, dim=1).type_as(real) * real).long() + self.pad_token_id
            x = x + self.position_embeddings(positions)
        if self.layer_norm is not None:
            x = self.layer_norm(x)
        return (x * attention_mask.unsqueeze(-1)).to(x.dtype)


class _Encoder(nn.Module):
    def __init__(self, cfg: SimpleNamespace) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_Layer(cfg) for _ in range(cfg.num_hidden_layers))
        self.emb_layer_norm_after = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)


class _ContactHead(nn.Module):
    # Unused for scoring; kept so that the original's weight names load strictly.
    def __init__(self, cfg: SimpleNamespace) -> None:
        super().__init__()
        self.regression = nn.Linear(cfg.num_hidden_layers * cfg.num_attention_heads, 1)


class _Esm(nn.Module):
    def __init__(self, cfg: SimpleNamespace) -> None:
        super().__init__()
        self.embeddings = _Embeddings(cfg)
        self.encoder = _Encoder(cfg)
        self.contact_head = _ContactHead(cfg)


class _LMHead(nn.Module):
    def __init__(self, cfg: SimpleNamespace) -> None:
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.layer_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.decoder = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(cfg.vocab_size))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.layer_norm(_gelu(self.dense(h)))) + self.bias


class NTv2ForMaskedLM(nn.Module):
    """NT v2 masked LM; ``state_dict()`` keys are those of the hub's ``EsmForMaskedLM``."""

    def __init__(self, cfg: SimpleNamespace) -> None:
        super().__init__()
        self.config = cfg
        self.esm = _Esm(cfg)
        self.lm_head = _LMHead(cfg)
        if cfg.tie_word_embeddings:
            self.lm_head.decoder.weight = self.esm.embeddings.word_embeddings.weight

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        output_hidden_states: bool = False,
    ) -> SimpleNamespace:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        dtype = self.lm_head.bias.dtype
        h = self.esm.embeddings(input_ids, attention_mask)
        # Additive key mask, (1 - m) * finfo.min as transformers' get_extended_attention_mask builds it.
        bias = None
        if not bool(attention_mask.all()):
            bias = (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min
        states = []
        for layer in self.esm.encoder.layer:
            states.append(h)
            h = layer(h, bias)
        h = self.esm.encoder.emb_layer_norm_after(h)
        states.append(h)
        logits = self.lm_head(h)
        return SimpleNamespace(logits=logits, hidden_states=tuple(states) if output_hidden_states else None)


_DEFAULTS = {
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "max_position_embeddings": 1026,
    "layer_norm_eps": 1e-12,
    "position_embedding_type": "absolute",
    "emb_layer_norm_before": None,
    "token_dropout": False,
    "add_bias_fnn": True,
    "pad_token_id": None,
    "mask_token_id": None,
}


def max_positions(config: dict) -> int | None:
    """The longest input in tokens with absolute positions (they start after the padding id, as in ESM); None
    with rotary ones, where the original's position table is present but unused."""
    cfg = {**_DEFAULTS, **config}
    if cfg["position_embedding_type"] != "absolute":
        return None
    pad = cfg["pad_token_id"]
    return int(cfg["max_position_embeddings"]) - (int(pad) + 1 if pad is not None else 0)


def build_lm(config: dict, *, kind: str) -> NTv2ForMaskedLM:
    """The NT v2 masked LM from config.json alone (weights not loaded), float32, eval mode."""
    if kind not in KINDS:
        raise InputError(f"NT v2 is a masked LM; kind {kind!r} is not available (use one of {KINDS})")
    cfg = SimpleNamespace(**{**_DEFAULTS, **{k: config[k] for k in _DEFAULTS if k in config}})
    cfg.vocab_size = int(config["vocab_size"])
    # transformers' default when config.json does not say; the v2 hub configs say false.
    cfg.tie_word_embeddings = bool(config.get("tie_word_embeddings", True))
    return NTv2ForMaskedLM(cfg).float().eval()


# ---- tokenizer --------------------------------------------------------------------------------------------------

_ESM_DEFAULT_SPECIALS = {
    "unk_token": "<unk>",
    "cls_token": "<cls>",
    "pad_token": "<pad>",
    "mask_token": "<mask>",
    "eos_token": "<eos>",
}


def _content(value):
    return value.get("content") if isinstance(value, dict) else value


def load_tokenizer(folder: pathlib.Path) -> PreTrainedTokenizerFast:
    """The hub's ``EsmTokenizer`` (6-mer or other k-mer vocab.txt) rebuilt as a fast tokenizer with offsets.

    EsmTokenizer splits text greedily, left to right, on the longest vocabulary entry: k-mers over A/C/G/T,
    else a single A, C, G, T or N; any other run of characters (lower case included: the vocabulary has no
    lower-case entry) between two such matches is one ``<unk>`` per whitespace-separated piece. That is the
    regex ``[ACGT]{k}|[ACGTN]`` with the gaps kept as their own pieces. ``<cls>`` is prepended, and ``<eos>``
    appended unless the tokenizer files set ``eos_token`` to null (the v2 checkpoints do).
    """
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    folder = pathlib.Path(folder)
    vocab_file = folder / "vocab.txt"
    if not vocab_file.is_file():
        raise InputError(f"{vocab_file}: missing; the Nucleotide Transformer tokenizer needs the hub's vocab.txt")
    tokens = [line.strip() for line in vocab_file.read_text().splitlines()]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    tok_config = read_json(folder / "tokenizer_config.json")
    specials_map = read_json(folder / "special_tokens_map.json")
    # from_pretrained's precedence: class defaults, then tokenizer_config.json, then special_tokens_map.json.
    specials = dict(_ESM_DEFAULT_SPECIALS)
    for source in (tok_config, specials_map):
        for key in _ESM_DEFAULT_SPECIALS:
            if key in source:
                specials[key] = _content(source[key])
    kmers = [t for t in tokens if re.fullmatch("[ACGT]+", t) and len(t) > 1]
    k = len(kmers[0]) if kmers else 0
    if not kmers or any(len(t) != k for t in kmers) or len(kmers) != 4**k or any(b not in vocab for b in "ACGTN"):
        raise InputError(
            f"{vocab_file}: not a Nucleotide Transformer k-mer vocabulary (all k-mers over ACGT plus A, C, G, T, N); "
            "use the vocab.txt downloaded with the checkpoint"
        )
    for key, value in specials.items():
        if value is not None and value not in vocab:
            raise InputError(
                f"{vocab_file}: has no {key} {value!r} that the tokenizer files name; restore the hub files"
            )
    backend = Tokenizer(models.WordLevel(vocab, unk_token=specials["unk_token"]))
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(f"[ACGT]{{{k}}}|[ACGTN]"), behavior="isolated")]
    )
    cls, eos = specials["cls_token"], specials["eos_token"]
    single = f"{cls} $A" + (f" {eos}" if eos else "")
    pair = f"{cls} $A" + (f" {eos}" if eos else "") + " $B" + (f" {eos}" if eos else "")
    backend.post_processor = processors.TemplateProcessing(
        single=single,
        pair=pair,
        special_tokens=[(t, vocab[t]) for t in (cls, eos) if t],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        model_max_length=int(tok_config.get("model_max_length", 1000000000000000019884624838656)),
        **{key: value for key, value in specials.items() if value is not None},
    )
    return fast
