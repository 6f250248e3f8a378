"""Which tokens cover given base offsets: the tokens a score is taken at."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._encoded import Encoded, EncodedBatch


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
