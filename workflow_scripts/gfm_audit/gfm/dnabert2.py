"""DNABERT-2 in plain PyTorch: reads the hub checkpoint ``zhihan1996/DNABERT-2-117M`` without its remote code.

DNABERT-2 (Zhou et al., "DNABERT-2: Efficient Foundation Model and Benchmark
for Multi-Species Genome", ICLR 2024, arXiv:2306.15006) is a MosaicBERT
encoder (Portes et al., NeurIPS 2023) trained with masked language modelling
on a byte-pair-encoded DNA vocabulary of 4096 tokens. Per layer, with ``x``
the (unpadded) token states and ``LN`` a layer norm (post-norm, as BERT):

    a   = LN(x + W_o · Attn(x))
    out = LN(a + W_out · (GELU(a W_g) ⊙ (a W_v)))          (GLU feed-forward)

    Attn: softmax(Q Kᵀ / √d + ALiBi + M) V,  ALiBi[h, i, j] = -m_h · |i - j|,
          M[j] = -10000 where key j is padding, 0 elsewhere

(ALiBi: Press et al., "Train Short, Test Long", ICLR 2022.) There are no
position embeddings, so the model has no hard length limit. The slopes are
``m_h = 2^(-8 h / n)`` for ``n`` heads a power of two; otherwise the slopes
of the nearest lower power of two followed by every other slope of the next
higher one, as the original computes them. The MLM head is
dense → GELU → LayerNorm(eps 1e-12) → decoder whose weight IS the input
embedding matrix (tied in the module itself, whatever ``tie_word_embeddings``
says) plus a per-token bias.

The original removes padding tokens before every layer and puts zeros back
after the last one; the padded positions therefore never influence real ones,
and their final hidden state is zero. This module does the same, with the
same operations in the same order, so its float32 logits equal the original's
PyTorch (non-triton) path to rounding.

Module and parameter names are the checkpoint's (``bert.encoder.layer.N.attention.self.Wqkv``,
``...mlp.gated_layers``, ``cls.predictions.decoder`` ...), so ``load_state_dict(strict=True)``
takes the hub weights as they are.
"""

from __future__ import annotations

import json
import math
import pathlib
import types
from typing import TYPE_CHECKING

import torch
from torch import nn

from gfm_audit.errors import InputError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

ARCHITECTURE = "dnabert2"
KINDS = ("masked",)
ACCEPTS_ATTENTION_MASK = True
# The original ties these in the module (decoder.weight = word_embeddings.weight),
# so its state_dict lists both; a converted file may hold only the embeddings.
TIED_WEIGHTS = {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight"}

_REQUIRED_KEYS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
)
# The original feeds hidden_act to transformers' ACT2FN in the MLM head only
# (the GLU always uses exact GELU); these are the ones we mirror.
_HEAD_ACTIVATIONS = {
    "gelu": lambda x: nn.functional.gelu(x),
    "gelu_new": lambda x: nn.functional.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: nn.functional.gelu(x, approximate="tanh"),
    "relu": nn.functional.relu,
    "silu": nn.functional.silu,
    "swish": nn.functional.silu,
}
_MASK_PENALTY = -10000.0  # the original's additive mask value (not -inf)


def _auto_map_targets(config: dict) -> list[str]:
    auto_map = config.get("auto_map") or {}
    if not isinstance(auto_map, dict):
        return []
    targets = []
    for value in auto_map.values():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, str):
                # "other/repo--bert_layers.BertModel" points at code in another hub repo
                targets.append(item.split("--")[-1])
    return targets


def claims(config: dict) -> bool:
    """True for a DNABERT-2 / MosaicBERT config.json as on the hub.

    The hub file (revision d064dec of ``zhihan1996/DNABERT-2-117M``) has no
    ``model_type`` and no ``architectures``; what marks it is ``auto_map``
    pointing at ``bert_layers.*`` together with the MosaicBERT key
    ``alibi_starting_size``. Plain BERT has neither; GENA-LM maps to
    ``modeling_bert.*`` and has no ALiBi key.
    """
    if config.get("model_type") not in (None, "", "bert"):
        return False
    if "alibi_starting_size" not in config:
        return False
    return any(target.startswith("bert_layers.") for target in _auto_map_targets(config))


def check_supported(config: dict, *, name: str) -> None:
    """Raise InputError (one line) for a DNABERT-2 config this module cannot build."""
    for key in _REQUIRED_KEYS:
        value = config.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise InputError(
                f"model {name}: config.json key {key!r} is {value!r}, expected a positive integer; "
                "use the config.json of a DNABERT-2 checkpoint as downloaded"
            )
    if config["hidden_size"] % config["num_attention_heads"]:
        raise InputError(
            f"model {name}: config.json hidden_size {config['hidden_size']} is not a multiple of "
            f"num_attention_heads {config['num_attention_heads']}; DNABERT-2 needs equal-sized heads"
        )
    act = config.get("hidden_act", "gelu")
    if act not in _HEAD_ACTIVATIONS:
        raise InputError(
            f"model {name}: config.json hidden_act {act!r} is not supported for DNABERT-2 "
            f"(supported: {', '.join(sorted(_HEAD_ACTIVATIONS))})"
        )


def alibi_slopes(n_heads: int) -> list[float]:
    """ALiBi head slopes as DNABERT-2's ``rebuild_alibi_tensor`` computes them (Python floats).

    For ``n`` a power of two: ``m_h = s^(h+1)`` with ``s = 2^(-2^-(log2 n - 3))`` = ``2^(-8/n)``.
    Otherwise: the slopes for ``2^floor(log2 n)`` heads, then the even-indexed slopes for
    twice that many heads, cut to ``n`` in all (Press et al. 2022, their reference code).
    """
    if math.log2(n_heads).is_integer():
        start = 2 ** (-(2 ** -(math.log2(n_heads) - 3)))
        return [start * start**i for i in range(n_heads)]
    lower = 2 ** math.floor(math.log2(n_heads))
    return alibi_slopes(lower) + alibi_slopes(2 * lower)[0::2][: n_heads - lower]


def alibi_bias(n_heads: int, size: int, *, device: torch.device | None = None) -> torch.Tensor:
    """(1, heads, size, size) float32 bias ``-m_h · |i - j|``, rounded as the original (float32 slope × integer)."""
    position = torch.arange(size, device=device)
    distance = torch.abs(position[None, :] - position[:, None]).unsqueeze(0).expand(n_heads, -1, -1)
    slopes = torch.tensor(alibi_slopes(n_heads), dtype=torch.float32, device=device)
    return (slopes[:, None, None] * -distance).unsqueeze(0)


class _Embeddings(nn.Module):
    def __init__(self, config: dict) -> None:
        super().__init__()
        hidden = config["hidden_size"]
        self.word_embeddings = nn.Embedding(config["vocab_size"], hidden, padding_idx=config.get("pad_token_id"))
        self.token_type_embeddings = nn.Embedding(config.get("type_vocab_size", 2), hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=config.get("layer_norm_eps", 1e-12))
        self.dropout = nn.Dropout(config.get("hidden_dropout_prob", 0.0))

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(x))


class _SelfAttention(nn.Module):
    def __init__(self, config: dict) -> None:
        super().__init__()
        hidden = config["hidden_size"]
        self.heads = config["num_attention_heads"]
        self.head_size = hidden // self.heads
        self.Wqkv = nn.Linear(hidden, 3 * hidden)
        self.dropout = nn.Dropout(config.get("attention_probs_dropout_prob", 0.0))

    def forward(self, x: torch.Tensor, unpad: _Unpadding, bias: torch.Tensor) -> torch.Tensor:
        qkv = unpad.pad(self.Wqkv(x))  # attention itself runs on the padded (B, T) grid
        batch, length = qkv.shape[:2]
        qkv = qkv.view(batch, length, 3, self.heads, self.head_size)
        q = qkv[:, :, 0].permute(0, 2, 1, 3)
        k = qkv[:, :, 1].permute(0, 2, 3, 1)
        v = qkv[:, :, 2].permute(0, 2, 1, 3)
        scores = torch.matmul(q, k) / math.sqrt(self.head_size) + bias
        probs = self.dropout(nn.functional.softmax(scores, dim=-1))
        out = torch.matmul(probs, v).permute(0, 2, 1, 3)  # (B, T, heads, head_size)
        return unpad.unpad(out).reshape(-1, self.heads * self.head_size)


class _SelfOutput(nn.Module):
    def __init__(self, config: dict) -> None:
        super().__init__()
        hidden = config["hidden_size"]
        self.dense = nn.Linear(hidden, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=config.get("layer_norm_eps", 1e-12))
        self.dropout = nn.Dropout(config.get("hidden_dropout_prob", 0.0))

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class _Attention(nn.Module):
    def __init__(self, config: dict) -> None:
        super().__init__()
        self.self = _SelfAttention(config)
        self.output = _SelfOutput(config)

    def forward(self, x: torch.Tensor, unpad: _Unpadding, bias: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(x, unpad, bias), x)


class _GatedMLP(nn.Module):
    def __init__(self, config: dict) -> None:
        super().__init__()
        hidden, inner = config["hidden_size"], config["intermediate_size"]
        self.inner = inner
        self.gated_layers = nn.Linear(hidden, 2 * inner, bias=False)
        self.wo = nn.Linear(inner, hidden)
        self.layernorm = nn.LayerNorm(hidden, eps=config.get("layer_norm_eps", 1e-12))
        self.dropout = nn.Dropout(config.get("hidden_dropout_prob", 0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        both = self.gated_layers(x)
        # first half through GELU gates the second half (original's order)
        h = nn.functional.gelu(both[:, : self.inner]) * both[:, self.inner :]
        return self.layernorm(self.wo(self.dropout(h)) + x)


class _Layer(nn.Module):
    def __init__(self, config: dict) -> None:
        super().__init__()
        self.attention = _Attention(config)
        self.mlp = _GatedMLP(config)

    def forward(self, x: torch.Tensor, unpad: _Unpadding, bias: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.attention(x, unpad, bias))


class _Unpadding:
    """Moves token states between the padded (B, T, ...) grid and the (tokens, ...) list of real tokens."""

    def __init__(self, mask: torch.Tensor) -> None:
        self.batch, self.length = mask.shape
        flat = mask.reshape(-1).bool()
        self.full = bool(flat.all())
        self.index = None if self.full else torch.nonzero(flat, as_tuple=False).flatten()

    def unpad(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(self.batch * self.length, *x.shape[2:])
        return x if self.full else x[self.index]

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        if not self.full:
            out = x.new_zeros(self.batch * self.length, *x.shape[1:])
            out[self.index] = x
            x = out
        return x.reshape(self.batch, self.length, *x.shape[1:])


class _Encoder(nn.Module):
    def __init__(self, config: dict) -> None:
        super().__init__()
        self.heads = config["num_attention_heads"]
        self.layer = nn.ModuleList(_Layer(config) for _ in range(config["num_hidden_layers"]))

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, *, keep_all: bool
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        length = x.shape[1]
        keep = (1.0 - mask[:, None, None, :].to(torch.float32)) * _MASK_PENALTY
        bias = keep + alibi_bias(self.heads, length, device=x.device)
        unpad = _Unpadding(mask)
        h = unpad.unpad(x)
        states = []
        for layer in self.layer:
            h = layer(h, unpad, bias)
            if keep_all:
                states.append(unpad.pad(h))
        return unpad.pad(h), states


class _BertModel(nn.Module):
    def __init__(self, config: dict) -> None:
        super().__init__()
        self.embeddings = _Embeddings(config)
        self.encoder = _Encoder(config)


class _PredictionTransform(nn.Module):
    def __init__(self, config: dict) -> None:
        super().__init__()
        hidden = config["hidden_size"]
        self.dense = nn.Linear(hidden, hidden)
        self.act = _HEAD_ACTIVATIONS[config.get("hidden_act", "gelu")]
        self.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)  # fixed in the original, not config's

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.act(self.dense(x)))


class _Predictions(nn.Module):
    def __init__(self, config: dict, embedding: nn.Parameter) -> None:
        super().__init__()
        self.transform = _PredictionTransform(config)
        self.decoder = nn.Linear(embedding.shape[1], embedding.shape[0])
        self.decoder.weight = embedding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.transform(x))


class _MLMHead(nn.Module):
    def __init__(self, config: dict, embedding: nn.Parameter) -> None:
        super().__init__()
        self.predictions = _Predictions(config, embedding)


class DNABERT2ForMaskedLM(nn.Module):
    """DNABERT-2 encoder + MLM head with the hub checkpoint's module names (``bert.*``, ``cls.*``)."""

    def __init__(self, config: dict) -> None:
        super().__init__()
        self.config = dict(config)
        self.bert = _BertModel(config)
        self.cls = _MLMHead(config, self.bert.embeddings.word_embeddings.weight)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        token_type_ids: torch.Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> types.SimpleNamespace:
        """Logits (B, T, vocab) for every position; attention_mask 1 = token, 0 = padding (never attended to).

        Padded positions get hidden state zero, and the head's output for zero,
        as in the original. ``hidden_states`` (with output_hidden_states) is the
        embedding output then each layer's output; ``hidden_states[-1]`` is the
        final (post-LayerNorm) state, the original's ``outputs[0]``.
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        x = self.bert.embeddings(input_ids, token_type_ids)
        last, states = self.bert.encoder(x, attention_mask, keep_all=output_hidden_states)
        logits = self.cls.predictions(last)
        hidden = (x, *states) if output_hidden_states else None
        return types.SimpleNamespace(logits=logits, hidden_states=hidden)


def build_lm(config: dict, *, kind: str) -> DNABERT2ForMaskedLM:
    """DNABERT-2 MLM from config.json alone (random weights), eval mode, float32."""
    if kind not in KINDS:
        raise InputError(f"DNABERT-2 is a masked LM; kind {kind!r} is not available (use kind: masked)")
    check_supported(config, name=str(config.get("_name_or_path", "dnabert2")))
    return DNABERT2ForMaskedLM(config).to(torch.float32).eval()


_DEFAULT_SPECIALS = {
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "mask_token": "[MASK]",
}


def load_tokenizer(folder: pathlib.Path) -> PreTrainedTokenizerFast:
    """DNABERT-2's BPE tokenizer from ``tokenizer.json`` (+ ``tokenizer_config.json``), no remote code.

    The hub tokenizer is already a plain ``PreTrainedTokenizerFast``: BPE over
    A/C/G/T merges, Whitespace pre-tokenizer, ``[CLS] … [SEP]`` template, no
    normalizer. So lower-case bases and N are not in the vocabulary and each
    becomes ``[UNK]`` (id 0), exactly as with the original; upper-case the DNA
    first to score it.
    """
    from transformers import PreTrainedTokenizerFast

    folder = pathlib.Path(folder)
    path = folder / "tokenizer.json"
    if not path.is_file():
        raise InputError(
            f"{path}: DNABERT-2 tokenizer file missing; copy tokenizer.json from the checkpoint's hub folder"
        )
    specials = dict(_DEFAULT_SPECIALS)
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        file = folder / name
        if not file.is_file():
            continue
        try:
            data = json.loads(file.read_text())
        except (OSError, ValueError) as err:
            raise InputError(f"{file}: not readable JSON ({err}); re-download it from the hub") from None
        for key in _DEFAULT_SPECIALS:
            value = data.get(key)
            if isinstance(value, dict):
                value = value.get("content")
            if isinstance(value, str):
                specials[key] = value
    try:
        return PreTrainedTokenizerFast(tokenizer_file=str(path), **specials)
    except Exception as err:  # the tokenizers library raises its own exception types
        raise InputError(f"{path}: not a readable tokenizer.json ({err}); re-download it from the hub") from None
