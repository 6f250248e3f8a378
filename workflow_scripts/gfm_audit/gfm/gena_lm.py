"""GENA-LM (AIRI), natively: a pre-layer-norm BERT masked LM over a BPE vocabulary of DNA.

Architecture (Fishman et al., "GENA-LM: a family of open-source foundational DNA language models for long
sequences", Nucleic Acids Research 2025), as the hub checkpoints ``AIRI-Institute/gena-lm-bert-*`` define it
in their remote ``modeling_bert.py`` (AIRI-Institute/GENA_LM, ``src/gena_lm/modeling_bert.py``):

- embeddings ``LN(E_tok[x] + E_type[0] + E_pos[i])`` (learned absolute positions, BERT's);
- pre-layer-norm blocks (Xiong et al. 2020): ``h = h + W_o Attn(LN_1(h))``, ``h = h + W_2 gelu(W_1 LN_2(h))``
  with softmax attention ``softmax(q k^T / sqrt(d) + mask) v``;
- a final LayerNorm ``last_layer_ln`` when ``last_layer_norm`` (default: ``pre_layer_norm``);
- BERT's LM head ``logits = W_dec LN(gelu(W h + b)) + bias``, the decoder bias being the head's ``bias`` and
  the decoder weight the word embeddings when ``tie_word_embeddings`` (BERT's default).

Weight names are the original's, so the hub weights load strictly. Checkpoints with DeepSpeed sparse attention
(``sparse_config_cls`` / ``sparse_attention`` in config.json) are refused by ``check_supported``.
"""

from __future__ import annotations

import pathlib
from types import SimpleNamespace

import torch
from torch import nn
from transformers import PreTrainedTokenizerFast

from ..errors import InputError
from .attention import scaled_dot_product_attention
from .checkpoint_files import read_json

ARCHITECTURE = "gena_lm"
KINDS = ("masked",)
ACCEPTS_ATTENTION_MASK = True
TIED_WEIGHTS = {
    "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
    # Tied unconditionally by the original module itself (decoder.bias = bias), whatever the config says.
    "cls.predictions.decoder.bias": "cls.predictions.bias",
}
# Weights that BertForPreTraining-style files may carry and the masked LM does not use (the original
# BertForMaskedLM ignores a pooler on load for the same reason).
UNUSED_WEIGHT_PREFIXES = ("bert.pooler.", "cls.seq_relationship.")
# Persistent buffers fixed by config.json alone (regular expressions over weight names): positions 0..max-1,
# which files saved by other transformers versions may lack.
DERIVED_BUFFERS = (r"bert\.embeddings\.position_ids",)


def _remote_targets(config: dict) -> list[str]:
    out = []
    for value in (config.get("auto_map") or {}).values():
        for target in value if isinstance(value, list) else [value]:
            if isinstance(target, str):
                out.append(target.split("--")[-1])  # "owner/repo--module.Class" when the code lives elsewhere
    return out


def claims(config: dict) -> bool:
    """True for a GENA-LM BERT config.json: ``model_type`` bert whose ``auto_map`` points at the hub's
    ``modeling_bert`` file, or that carries GENA's ``pre_layer_norm`` key (plain BERT has neither)."""
    if config.get("model_type") != "bert":
        return False
    return any(t.startswith("modeling_bert.") for t in _remote_targets(config)) or "pre_layer_norm" in config


def check_supported(config: dict, *, name: str) -> None:
    """One-line InputError for GENA-LM variants this implementation does not cover (sparse attention first)."""
    for key in ("sparse_config_cls", "sparse_attention"):
        if config.get(key):
            raise InputError(
                f"model {name}: config.json {key} is set: this GENA-LM checkpoint uses DeepSpeed sparse attention, "
                "which is not implemented natively; use a dense-attention GENA-LM checkpoint "
                "(e.g. gena-lm-bert-base-t2t)"
            )
    kind = config.get("position_embedding_type", "absolute")
    if kind != "absolute":
        raise InputError(
            f"model {name}: config.json position_embedding_type {kind!r} is not supported for GENA-LM (only "
            "absolute, as the dense-attention checkpoints use); use a dense-attention GENA-LM checkpoint"
        )
    if not config.get("pre_layer_norm", False):
        raise InputError(
            f"model {name}: config.json pre_layer_norm is not true, so this is a plain post-layer-norm BERT, not "
            "GENA-LM; use architecture: transformers for it"
        )
    for key in ("is_decoder", "add_cross_attention"):
        if config.get(key):
            raise InputError(f"model {name}: config.json {key} is true; GENA-LM is scored as a bidirectional masked LM")
    act = config.get("hidden_act", "gelu")
    if act != "gelu":
        raise InputError(f"model {name}: config.json hidden_act {act!r} is not supported for GENA-LM (gelu)")
    hidden, heads = int(config.get("hidden_size", 768)), int(config.get("num_attention_heads", 12))
    if hidden % heads:
        raise InputError(
            f"model {name}: config.json hidden_size {hidden} is not a multiple of num_attention_heads {heads}"
        )


class _Embeddings(nn.Module):
    def __init__(self, cfg: SimpleNamespace) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size, padding_idx=cfg.pad_token_id)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        # Persistent in the original, so part of its weight files.
        self.register_buffer("position_ids", torch.arange(cfg.max_position_embeddings).unsqueeze(0))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        t = input_ids.shape[1]
        x = self.word_embeddings(input_ids) + self.token_type_embeddings.weight[0]
        x = x + self.position_embeddings(self.position_ids[:, :t])
        return self.LayerNorm(x)


class _SelfAttention(nn.Module):
    def __init__(self, cfg: SimpleNamespace) -> None:
        super().__init__()
        self.heads = cfg.num_attention_heads
        self.head_dim = cfg.hidden_size // cfg.num_attention_heads
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.value = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def forward(self, h: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        b, t, _ = h.shape

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.view(b, t, self.heads, self.head_dim).permute(0, 2, 1, 3)

        ctx = scaled_dot_product_attention(
            split(self.query(h)), split(self.key(h)), split(self.value(h)), attn_mask=bias
        )
        return ctx.permute(0, 2, 1, 3).reshape(b, t, self.heads * self.head_dim)


class _Dense(nn.Module):
    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.dense = nn.Linear(n_in, n_out)


class _Attention(nn.Module):
    def __init__(self, cfg: SimpleNamespace) -> None:
        super().__init__()
        self.self = _SelfAttention(cfg)
        self.output = _Dense(cfg.hidden_size, cfg.hidden_size)  # pre-LN: no LayerNorm in the output


class _Layer(nn.Module):
    def __init__(self, cfg: SimpleNamespace) -> None:
        super().__init__()
        self.pre_attention_ln = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.post_attention_ln = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.attention = _Attention(cfg)
        self.intermediate = _Dense(cfg.hidden_size, cfg.intermediate_size)
        self.output = _Dense(cfg.intermediate_size, cfg.hidden_size)

    def forward(self, h: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        h = h + self.attention.output.dense(self.attention.self(self.pre_attention_ln(h), bias))
        inner = nn.functional.gelu(self.intermediate.dense(self.post_attention_ln(h)))
        return self.output.dense(inner) + h


class _Encoder(nn.Module):
    def __init__(self, cfg: SimpleNamespace) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_Layer(cfg) for _ in range(cfg.num_hidden_layers))
        if cfg.last_layer_norm:
            self.last_layer_ln = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        else:
            self.last_layer_ln = None


class _Bert(nn.Module):
    def __init__(self, cfg: SimpleNamespace) -> None:
        super().__init__()
        self.embeddings = _Embeddings(cfg)
        self.encoder = _Encoder(cfg)


class _Transform(nn.Module):
    def __init__(self, cfg: SimpleNamespace) -> None:
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)


class _Predictions(nn.Module):
    def __init__(self, cfg: SimpleNamespace) -> None:
        super().__init__()
        self.transform = _Transform(cfg)
        self.decoder = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(cfg.vocab_size))
        self.decoder.bias = self.bias

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        t = self.transform
        return self.decoder(t.LayerNorm(nn.functional.gelu(t.dense(h))))


class _Heads(nn.Module):
    def __init__(self, cfg: SimpleNamespace) -> None:
        super().__init__()
        self.predictions = _Predictions(cfg)


class GenaLMForMaskedLM(nn.Module):
    """GENA-LM masked LM; ``state_dict()`` keys are those of the original ``BertForMaskedLM``."""

    def __init__(self, cfg: SimpleNamespace) -> None:
        super().__init__()
        self.config = cfg
        self.bert = _Bert(cfg)
        self.cls = _Heads(cfg)
        if cfg.tie_word_embeddings:
            self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        output_hidden_states: bool = False,
    ) -> SimpleNamespace:
        dtype = self.cls.predictions.bias.dtype
        bias = None
        if attention_mask is not None and not bool(attention_mask.all()):
            # (1 - m) * finfo.min on the keys, as transformers' get_extended_attention_mask builds it.
            bias = (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min
        h = self.bert.embeddings(input_ids)
        states = []
        for layer in self.bert.encoder.layer:
            states.append(h)
            h = layer(h, bias)
        if self.bert.encoder.last_layer_ln is not None:
            h = self.bert.encoder.last_layer_ln(h)
        states.append(h)
        logits = self.cls.predictions(h)
        return SimpleNamespace(logits=logits, hidden_states=tuple(states) if output_hidden_states else None)


def build_lm(config: dict, *, kind: str) -> GenaLMForMaskedLM:
    """The GENA-LM masked LM from config.json alone (weights not loaded), float32, eval mode."""
    if kind not in KINDS:
        raise InputError(f"GENA-LM is a masked LM; kind {kind!r} is not available (use one of {KINDS})")
    pre_ln = bool(config.get("pre_layer_norm", False))
    cfg = SimpleNamespace(
        vocab_size=int(config["vocab_size"]),
        hidden_size=int(config.get("hidden_size", 768)),
        num_hidden_layers=int(config.get("num_hidden_layers", 12)),
        num_attention_heads=int(config.get("num_attention_heads", 12)),
        intermediate_size=int(config.get("intermediate_size", 3072)),
        max_position_embeddings=int(config.get("max_position_embeddings", 512)),
        type_vocab_size=int(config.get("type_vocab_size", 2)),
        layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)),
        pad_token_id=config.get("pad_token_id", 0),
        last_layer_norm=pre_ln and bool(config.get("last_layer_norm", pre_ln)),
        tie_word_embeddings=bool(config.get("tie_word_embeddings", True)),
    )
    return GenaLMForMaskedLM(cfg).float().eval()


class GenaTokenizer(PreTrainedTokenizerFast):
    """The hub's fast BPE tokenizer, with offsets that tile the sequence.

    The normaliser's ``N{10,} -> "-"`` makes the Rust alignment give the ``-`` token only the run's last base;
    the run's other bases belong to no token. Each token is given back the gap before it, so that ``-`` covers
    its whole run of N (ids and everything else are unchanged).
    """

    def _convert_encoding(self, encoding, **kwargs):
        encoding_dict, encodings = super()._convert_encoding(encoding, **kwargs)
        if "offset_mapping" in encoding_dict:
            encoding_dict["offset_mapping"] = [
                _close_gaps(offsets, e.special_tokens_mask)
                for offsets, e in zip(encoding_dict["offset_mapping"], encodings, strict=True)
            ]
        return encoding_dict, encodings


def _close_gaps(offsets: list[tuple[int, int]], special: list[int]) -> list[tuple[int, int]]:
    out, end = [], 0
    for (lo, hi), is_special in zip(offsets, special, strict=True):
        if is_special:
            out.append((lo, hi))
            continue
        out.append((min(lo, end), hi))
        end = hi
    return out


def load_tokenizer(folder: pathlib.Path) -> GenaTokenizer:
    """The checkpoint's BPE tokenizer from its ``tokenizer.json`` (a plain fast tokenizer: no remote code).

    Its normaliser strips the ends and turns every run of 10 or more N into the ``-`` token (id 5, which stands
    for no particular bases); a single N is the base token ``N``; lower-case bases are not in the vocabulary and
    become ``[UNK]``, as in the original. ``[CLS] ... [SEP]`` surround each sequence.
    """
    folder = pathlib.Path(folder)
    tokenizer_file = folder / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise InputError(f"{tokenizer_file}: missing; the GENA-LM tokenizer needs the hub's tokenizer.json")
    specials = {}
    for source in (read_json(folder / "tokenizer_config.json"), read_json(folder / "special_tokens_map.json")):
        for key in ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token", "bos_token", "eos_token"):
            if key in source and source[key] is not None:
                value = source[key]
                specials[key] = value.get("content") if isinstance(value, dict) else value
    limit = read_json(folder / "tokenizer_config.json").get("model_max_length")
    kwargs = {"model_max_length": int(limit)} if limit else {}
    try:
        return GenaTokenizer(tokenizer_file=str(tokenizer_file), **specials, **kwargs)
    except Exception as exc:  # the Rust parser's messages are long; one line naming the file is enough
        raise InputError(f"{tokenizer_file}: cannot be read as a tokenizers file ({type(exc).__name__})") from None
