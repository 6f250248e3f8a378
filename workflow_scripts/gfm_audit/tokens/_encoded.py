"""The encodings of DNA: token ids with the base span each token covers, one sequence or many laid end to end."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..ragged import Segmented, offsets_of, segment_sums


@dataclass(frozen=True)
class Encoded:
    """Token ids with the base span ``[start, end)`` of each token.

    ``special``: the tokenizer's special tokens (BOS, CLS, ...), which cover no
    base; ``excluded``: tokens that cover bases but stand for no DNA (see
    :mod:`gfm_audit.tokens`). Neither is ever scored.
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
