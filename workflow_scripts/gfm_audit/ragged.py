"""Per-sequence arrays laid end to end: one flat array and the offsets where each sequence starts.

Scoring handles thousands of sequences of a few hundred tokens each. A NumPy call per sequence costs
microseconds, as much as the arithmetic of a small model per token, so the host side keeps each per-sequence
quantity as one flat array (sequence ``i`` is ``flat[..., offsets[i]:offsets[i + 1]]``) and works on all
sequences in a few whole-array passes: segment sums and means with ``np.add.reduceat``, the elements of chosen
sequences with :func:`ranges`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np


def offsets_of(counts: np.ndarray) -> np.ndarray:
    """(n + 1,) int64 offsets of segments of ``counts`` elements, starting at 0."""
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets


def segment_ids(offsets: np.ndarray) -> np.ndarray:
    """The segment of each element: (offsets[-1],) int64."""
    return np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), np.diff(offsets))


def ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``np.concatenate([np.arange(s, s + n) for s, n in zip(starts, lengths)])`` without the loop."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    first = np.cumsum(lengths) - lengths  # where each range begins in the output
    return np.arange(total, dtype=np.int64) + np.repeat(np.asarray(starts, dtype=np.int64) - first, lengths)


def segment_sums(x: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Sum of each segment ``x[offsets[i]:offsets[i+1]]`` (0 for an empty one), in ``x``'s dtype: for integer
    counts. (``np.add.reduceat`` adds in another order than ``x[a:b].sum()``: floats go to :func:`segment_means`.)"""
    counts = np.diff(offsets)
    out = np.zeros(len(counts), dtype=x.dtype)
    full = counts > 0
    if full.any():
        out[full] = np.add.reduceat(x, offsets[:-1][full])
    return out


def length_groups(counts: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(length, segments of that length) for each non-zero length: sequences of a shard come in a few lengths,
    and segments of one length stack into a 2-D array that NumPy reduces row by row."""
    order = np.argsort(counts, kind="stable")
    sorted_counts = counts[order]
    bounds = np.flatnonzero(np.diff(sorted_counts)) + 1
    for rows in np.split(order, bounds):
        if len(rows) and counts[rows[0]] > 0:
            yield int(counts[rows[0]]), rows


def segment_rows(x: np.ndarray, offsets: np.ndarray, rows: np.ndarray, *, length: int) -> np.ndarray:
    """The segments ``rows`` (each ``length`` long) of ``x`` as a C-contiguous (len(rows), length) array (a copy
    when they are not one after the other in ``x``)."""
    first = offsets[rows]
    if int(first[-1] - first[0]) == (len(rows) - 1) * length and (np.diff(first) == length).all():
        # Consecutive segments of one length (sequences of one window length, in order): a reshaped view.
        return x[first[0] : first[0] + len(rows) * length].reshape(len(rows), length)
    return x[first[:, None] + np.arange(length, dtype=np.int64)]


def segment_means(x: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Mean of each float64 segment, bit for bit ``x[a:b].mean()``; 0 where a segment is empty.

    Segments of one length are stacked and summed along rows: NumPy sums each contiguous row with the same
    pairwise summation as a 1-D array (``np.add.reduceat`` does not: its sums differ in the last bits)."""
    if x.dtype != np.float64:
        raise TypeError("segment_means reproduces float64 means only")
    counts = np.diff(offsets)
    out = np.zeros(len(counts), dtype=np.float64)
    for length, rows in length_groups(counts):
        out[rows] = segment_rows(x, offsets, rows, length=length).sum(axis=1) / length
    return out


class Segmented(Sequence):
    """A sequence of segments of flat arrays cut at ``offsets``; ``_segment(a, b)`` gives one segment."""

    offsets: np.ndarray

    def _segment(self, a: int, b: int):
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(len(self))[i]]
        i = range(len(self))[i]  # negative indices; IndexError past the end ends iteration
        return self._segment(self.offsets[i], self.offsets[i + 1])


class Ragged(Segmented):
    """Arrays of different lengths along their last axis, stored as one ``flat`` array and ``offsets``.

    Indexing gives sequence ``i``'s array, a view of ``flat``; code that knows the layout uses ``flat`` and
    ``offsets`` directly.
    """

    __slots__ = ("flat", "offsets")

    def __init__(self, flat: np.ndarray, offsets: np.ndarray) -> None:
        self.flat, self.offsets = flat, offsets

    @classmethod
    def of(cls, arrays: Sequence[np.ndarray], *, empty: np.ndarray) -> Ragged:
        """``arrays`` as a Ragged (itself if it is one); ``empty``: a zero-length array of the right shape."""
        if isinstance(arrays, Ragged):
            return arrays
        counts = np.fromiter((np.shape(a)[-1] for a in arrays), dtype=np.int64, count=len(arrays))
        flat = np.concatenate([np.asarray(a, dtype=empty.dtype) for a in arrays], axis=-1) if len(arrays) else empty
        return cls(flat.reshape(*empty.shape[:-1], -1), offsets_of(counts))

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    def _segment(self, a: int, b: int) -> np.ndarray:
        return self.flat[..., a:b]
