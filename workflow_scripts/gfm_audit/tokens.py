"""Tokenising DNA and mapping every token back to the bases it covers.

Fast tokenizers give offsets directly (character, BPE). Slow ones, such as
the Nucleotide Transformer's k-mer ``EsmTokenizer``, do not; for them the
token strings are laid end to end over the sequence, which is exact for DNA
vocabularies where every token is a run of bases.

Some tokens cover bases but stand for no DNA: the unknown token, a k-mer
tokenizer's ``<oov>`` for a tail shorter than k or a k-mer with N (GENERator),
a special token inside the sequence. They are kept in the model's input, which
is what the model was trained to see, but flagged ``excluded``: no score is
ever taken at them, and scoring counts them per sequence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import InputError
from .ragged import Segmented, offsets_of, segment_sums

_MARKERS = ("##", "Ġ", "▁")
# IUPAC nucleotide codes: a token spelling a run of these (any case) stands for DNA.
_BASES = frozenset("ACGTUNRYSWKMBDHV")


@dataclass(frozen=True)
class Encoded:
    """Token ids with the base span ``[start, end)`` of each token.

    ``special``: the tokenizer's special tokens (BOS, CLS, ...), which cover no
    base; ``excluded``: tokens that cover bases but stand for no DNA (see the
    module docstring). Neither is ever scored.
    """

    ids: np.ndarray  # (T,) int64
    start: np.ndarray  # (T,) int32
    end: np.ndarray  # (T,) int32
    special: np.ndarray  # (T,) bool
    excluded: np.ndarray = field(default=None)  # (T,) bool

    def __post_init__(self) -> None:
        if self.excluded is None:
            object.__setattr__(self, "excluded", np.zeros(len(self.ids), dtype=bool))

    @property
    def scorable(self) -> np.ndarray:
        """Tokens that stand for bases of DNA."""
        return ~self.special & ~self.excluded

    def excluded_bases(self) -> int:
        return int((self.end[self.excluded] - self.start[self.excluded]).sum())


@dataclass(frozen=True, eq=False)
class EncodedBatch(Segmented):
    """The encodings of many sequences laid end to end: sequence ``i``'s tokens are ``offsets[i]:offsets[i+1]``
    of each flat field (the fields of :class:`Encoded`). Indexing gives an :class:`Encoded` of views."""

    ids: np.ndarray  # (T,) int64
    start: np.ndarray  # (T,) int32
    end: np.ndarray  # (T,) int32
    special: np.ndarray  # (T,) bool
    excluded: np.ndarray  # (T,) bool
    offsets: np.ndarray  # (n + 1,) int64

    @classmethod
    def of(cls, encodings: Sequence[Encoded]) -> EncodedBatch:
        """``encodings`` laid end to end (itself if it is an EncodedBatch)."""
        if isinstance(encodings, EncodedBatch):
            return encodings
        counts = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))

        def cat(name, dtype):
            arrays = [getattr(e, name) for e in encodings]
            return np.concatenate(arrays).astype(dtype, copy=False) if arrays else np.zeros(0, dtype=dtype)

        return cls(
            cat("ids", np.int64),
            cat("start", np.int32),
            cat("end", np.int32),
            cat("special", bool),
            cat("excluded", bool),
            offsets_of(counts),
        )

    @property
    def lengths(self) -> np.ndarray:
        """Tokens per sequence."""
        return np.diff(self.offsets)

    @property
    def scorable(self) -> np.ndarray:
        """Flat: tokens that stand for bases of DNA."""
        return ~self.special & ~self.excluded

    def excluded_bases(self) -> np.ndarray:
        """Per sequence, the bases under excluded tokens (``Encoded.excluded_bases`` of each)."""
        if not self.excluded.any():
            return np.zeros(len(self), dtype=np.int64)
        covered = np.where(self.excluded, self.end.astype(np.int64) - self.start, 0)
        return segment_sums(covered, self.offsets)

    def _segment(self, a: int, b: int) -> Encoded:
        return Encoded(self.ids[a:b], self.start[a:b], self.end[a:b], self.special[a:b], self.excluded[a:b])


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


def encode_many(tokenizer, seqs: list[str], *, seq_ids: list[str], model: str = "model") -> EncodedBatch:
    """``encode`` for many sequences, laid end to end; a fast tokenizer gets them in one batched call (its Rust
    side splits the batch over threads), which matters when the model itself is small. Character and fixed k-mer
    tokenizers skip both: :mod:`gfm_audit.fast_tokens` computes the same from a lookup table."""
    from .fast_tokens import encode_batch  # imported here: fast_tokens builds on this module

    fast = encode_batch(tokenizer, seqs, seq_ids=seq_ids, model=model)
    if fast is not None:
        return fast
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


def tokens_covering(enc: Encoded, offsets: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-special tokens that cover any of the base ``offsets``."""
    if len(offsets) == 0:
        return np.zeros(len(enc.ids), dtype=bool)
    offsets = np.sort(np.asarray(offsets))
    # A token covers an offset when start <= offset < end; count offsets below each bound.
    hits = np.searchsorted(offsets, enc.end, side="left") - np.searchsorted(offsets, enc.start, side="left")
    return (hits > 0) & enc.scorable


def covering_many(batch: EncodedBatch, offsets: Sequence[np.ndarray]) -> np.ndarray:
    """Flat over ``batch``: :func:`tokens_covering` of each sequence with its own base ``offsets``.

    Every sequence's offsets are keyed by (sequence index, offset) in one sorted array, so that one
    ``searchsorted`` counts, per token, the offsets below its end minus those below its start."""
    counts = np.fromiter((len(o) for o in offsets), dtype=np.int64, count=len(offsets))
    if not counts.any():
        return np.zeros(len(batch.ids), dtype=bool)
    shift = np.int64(1) << np.int64(32)  # base offsets within a sequence are far below 2**32
    keys = np.concatenate([np.asarray(o, dtype=np.int64) for o in offsets])
    keys = np.sort(keys + np.repeat(np.arange(len(offsets), dtype=np.int64) * shift, counts))
    base = np.repeat(np.arange(len(batch), dtype=np.int64) * shift, batch.lengths)
    hits = np.searchsorted(keys, base + batch.end, side="left") - np.searchsorted(keys, base + batch.start, side="left")
    return (hits > 0) & batch.scorable
