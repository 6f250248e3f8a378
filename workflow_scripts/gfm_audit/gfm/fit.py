"""Whether a loaded model can take what it will be given: every id of its tokenizer, and ``max_length`` tokens.

A tokenizer with more ids than the model has embedding rows is another checkpoint's (or an edited one): its ids
past the last row stop the forward pass with an IndexError, and those below it are silently the wrong tokens. A
tokenizer with fewer ids is normal (vocabularies are padded to a multiple of 8 or so). ``max_length`` beyond an
absolute position table indexes past it; rotary, ALiBi and convolutional models have no such table.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from . import registry
from .weights import PICKLES, SAFETENSORS

if TYPE_CHECKING:
    from .spec import ModelSpec

# In the order that names the file holding a tokenizer's vocabulary, for the message.
_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "tokenizer.model", "spiece.model")
# Names of absolute position tables in transformers' classes and our families (GPT-2's wpe, OPT's embed_positions).
_POSITION_TABLES = ("position_embeddings", "position_embedding", "wpe", "embed_positions")
# config.json keys of the longest input, for the message.
_LENGTH_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len")


def _first_file(folder: Path, names: tuple[str, ...], fallback: str) -> Path:
    return next((folder / n for n in names if (folder / n).is_file()), folder / fallback)


def _rows(module) -> int | None:
    weight = getattr(module, "weight", None)
    return int(weight.shape[0]) if weight is not None and weight.dim() == 2 else None


def vocabulary_rows(model) -> int | None:
    """Ids the model can take and score: the rows of its input embedding, and of its output layer where
    transformers' class names one (fewer of the two); None when it has no recognisable embedding."""
    import torch

    try:
        rows = [_rows(model.get_input_embeddings())]
        output = model.get_output_embeddings()
        rows.append(_rows(output) if output is not None else None)
    except (AttributeError, NotImplementedError):
        # Our families size the embedding and the LM head alike from config.json vocab_size (strict loading
        # checked the file against both), so the input embedding stands for the two.
        rows = [
            m.num_embeddings
            for name, m in model.named_modules()
            if isinstance(m, torch.nn.Embedding) and "word_embeddings" in name
        ][:1]
    known = [r for r in rows if r is not None]
    return min(known) if known else None


def check_tokenizer_fits(spec: ModelSpec, model, tokenizer) -> None:
    """Stop in one line naming both files when the tokenizer has an id at or past the model's embedding rows."""
    rows = vocabulary_rows(model)
    vocab = tokenizer.get_vocab()
    if rows is None or not vocab:
        return
    top = max(vocab.values())
    if top < rows:
        return
    folder = Path(spec.path)
    tokenizer_file = _first_file(folder, _TOKENIZER_FILES, "tokenizer_config.json")
    weights = _first_file(folder, (*SAFETENSORS, *PICKLES), "config.json")
    raise InputError(
        f"model '{spec.name}': the tokenizer in {tokenizer_file} has {len(vocab)} tokens with ids up to {top}, but "
        f"the model in {weights} has {rows} embedding rows (ids 0-{rows - 1}); its ids would be wrong tokens or out "
        "of range: use the tokenizer files downloaded with this checkpoint"
    )


def position_limit(model, config: Mapping[str, Any], architecture: str) -> int | None:
    """The most tokens the model's absolute positions allow, or None when nothing bounds the input.

    A native family answers for itself (``max_positions(config)``) where it has one; else the limit is read off
    the model's position table: its rows less the ids before the first position (ESM and RoBERTa start
    positions after the padding id, OPT at an offset of 2).
    """
    import torch

    family = registry.family_module(architecture) if architecture in registry.FAMILIES else None
    if family is not None and hasattr(family, "max_positions"):
        return family.max_positions(dict(config))
    limits = []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Embedding) and name.rsplit(".", 1)[-1] in _POSITION_TABLES:
            offset = getattr(module, "offset", None)
            if not isinstance(offset, int):
                offset = module.padding_idx + 1 if module.padding_idx is not None else 0
            limits.append(module.num_embeddings - offset)
    return min(limits) if limits else None


def check_max_length(spec: ModelSpec, model, *, config: Mapping[str, Any], architecture: str) -> None:
    """Stop in one line when ``models.<name>.max_length`` is more tokens than the model has positions for."""
    if not spec.max_length:
        return
    limit = position_limit(model, config, architecture)
    if limit is None or spec.max_length <= limit:
        return
    key = next((k for k in _LENGTH_KEYS if k in config), None)
    source = f" (config.json {key}: {config[key]})" if key else ""
    raise InputError(
        f"model '{spec.name}': models.{spec.name}.max_length is {spec.max_length}, but the model in {spec.path} has "
        f"positions for {limit} tokens{source}; set max_length to {limit} or less, or leave it out"
    )
