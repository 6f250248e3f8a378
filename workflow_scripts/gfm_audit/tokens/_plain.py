"""Tokenising DNA with the tokenizer's own calls and recovering the bases each token covers.

Fast tokenizers give offsets directly (character, BPE). Slow ones, such as
the Nucleotide Transformer's k-mer ``EsmTokenizer``, do not; for them the
token strings are laid end to end over the sequence, which is exact for DNA
vocabularies where every token is a run of bases. Tokens that cover bases but
stand for no DNA are flagged ``excluded`` (see :mod:`gfm_audit.tokens`).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ._encoded import Encoded, EncodedBatch

_MARKERS = ("##", "Ġ", "▁")
# IUPAC nucleotide codes: a token spelling a run of these (any case) stands for DNA.
_BASES = frozenset("ACGTUNRYSWKMBDHV")


def encode(tokenizer, seq: str, *, seq_id: str = "sequence", model: str = "model") -> Encoded:
    """Tokenise ``seq`` with the model's own special tokens and recover base offsets."""
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(seq, add_special_tokens=True, return_offsets_mapping=True, return_special_tokens_mask=True)
        ids = np.asarray(enc["input_ids"], dtype=np.int64)
        offsets = np.asarray(enc["offset_mapping"], dtype=np.int32).reshape(-1, 2)
        special = np.asarray(enc["special_tokens_mask"], dtype=bool)
        start, end = offsets[:, 0].copy(), offsets[:, 1].copy()
    else:
        pieces = tokenizer.tokenize(seq)
        inner = tokenizer.convert_tokens_to_ids(pieces)
        ids = np.asarray(tokenizer.build_inputs_with_special_tokens(inner), dtype=np.int64)
        special = np.asarray(tokenizer.get_special_tokens_mask(inner), dtype=bool)
        if len(special) != len(ids):
            special = np.isin(ids, tokenizer.all_special_ids)
        lengths = [len(_strip_marker(p)) for p in pieces]
        ends = np.cumsum(lengths, dtype=np.int64)
        start = np.zeros(len(ids), dtype=np.int32)
        end = np.zeros(len(ids), dtype=np.int32)
        start[~special] = ends - lengths
        end[~special] = ends
    excluded = _not_dna(tokenizer, ids, start, end, special)
    _check_encoded(seq, start, end, special, excluded, seq_id, model)
    return Encoded(ids, start, end, special, excluded)


def encode_all(tokenizer, seqs: list[str], *, seq_ids: list[str], model: str = "model") -> EncodedBatch:
    """``encode`` for many sequences, laid end to end; a fast tokenizer gets them in one batched call (its Rust
    side splits the batch over threads), which matters when the model itself is small."""
    if not getattr(tokenizer, "is_fast", False) or not seqs:
        return EncodedBatch.of(
            [encode(tokenizer, s, seq_id=i, model=model) for s, i in zip(seqs, seq_ids, strict=True)]
        )
    batch = tokenizer(seqs, add_special_tokens=True, return_offsets_mapping=True, return_special_tokens_mask=True)
    out = []
    for k, (seq, seq_id) in enumerate(zip(seqs, seq_ids, strict=True)):
        ids = np.asarray(batch["input_ids"][k], dtype=np.int64)
        offsets = np.asarray(batch["offset_mapping"][k], dtype=np.int32).reshape(-1, 2)
        special = np.asarray(batch["special_tokens_mask"][k], dtype=bool)
        start, end = offsets[:, 0].copy(), offsets[:, 1].copy()
        excluded = _not_dna(tokenizer, ids, start, end, special)
        _check_encoded(seq, start, end, special, excluded, seq_id, model)
        out.append(Encoded(ids, start, end, special, excluded))
    return EncodedBatch.of(out)


def _strip_marker(piece: str) -> str:
    for marker in _MARKERS:
        if piece.startswith(marker):
            return piece[len(marker) :]
    return piece


def _spells_dna(token: str | None) -> bool:
    text = _strip_marker(token or "")
    return bool(text) and set(text.upper()) <= _BASES


def _not_dna(tokenizer, ids, start, end, special) -> np.ndarray:
    """Tokens that cover bases but are the unknown token, a special token, or spell something other than bases."""
    covers = end > start
    excluded = covers & special
    unk = tokenizer.unk_token_id
    if unk is not None:
        excluded |= covers & (ids == unk)
    candidates = np.unique(ids[covers & ~excluded])
    if candidates.size:
        spelled = tokenizer.convert_ids_to_tokens([int(i) for i in candidates])
        bad = candidates[[not _spells_dna(t) for t in spelled]]
        excluded |= covers & np.isin(ids, bad)
    return excluded


def _check_encoded(seq, start, end, special, excluded, seq_id, model) -> None:
    spans = ~special | excluded
    covered = int((end[spans] - start[spans]).sum())
    if covered != len(seq) or (len(seq) and end[spans].max() != len(seq)):
        raise InputError(
            f"model '{model}': its tokens cover {covered} of the {len(seq)} bases of {seq_id}; "
            "this tokenizer does not map tokens to bases one to one and is not supported"
        )
