"""DC-PDD's per-sequence score from per-token log-probabilities, token ids and a token frequency table.

The formula, its sources and its choices are in :mod:`.attacks.dc_pdd`; this module is the arithmetic, run in the
scoring jobs (feature ``dc_pdd_a<a>``, :mod:`.features`) where the token ids are at hand.
"""

from __future__ import annotations

import numpy as np

from ..ragged import offsets_of, segment_ids, segment_means


def smoothed_frequencies(counts: np.ndarray) -> np.ndarray:
    """Laplace smoothing over the vocabulary V: f(v) = (count(v) + 1) / (sum of counts + |V|), so that a token
    the reference never holds gets the smallest frequency, not zero (whose log(1/f) would be infinite)."""
    counts = np.asarray(counts, dtype=np.float64)
    return (counts + 1.0) / (counts.sum() + len(counts))


def first_occurrences(ids: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of the first occurrence of each token id within each segment ``offsets[i]:offsets[i+1]``, in
    position order, and their (n + 1,) offsets per segment."""
    seg = segment_ids(offsets)
    ids = np.asarray(ids, dtype=np.int64)
    width = int(ids.max()) + 1 if len(ids) else 1
    # One key per (segment, token id): np.unique returns the index of each key's first occurrence.
    _, first = np.unique(seg * width + ids, return_index=True)
    first = np.sort(first)  # sorted by key = by segment, then by id; back to position order
    return first, offsets_of(np.bincount(seg[first], minlength=len(offsets) - 1).astype(np.int64))


def dc_pdd_means(
    logp: np.ndarray, ids: np.ndarray, offsets: np.ndarray, *, frequencies: np.ndarray, a: float
) -> np.ndarray:
    """Per segment, mean over the first occurrence t of each token of min(p_t * log(1 / f(x_t)), a); NaN for a
    segment without tokens.

    ``logp``: (N,) log p of each scored token, segments laid end to end; ``ids``: (N,) their token ids;
    ``frequencies``: smoothed frequency of every token id (:func:`smoothed_frequencies`)."""
    first, counts_offsets = first_occurrences(ids, offsets)
    alpha = np.exp(np.asarray(logp, dtype=np.float64)[first]) * -np.log(frequencies[np.asarray(ids)[first]])
    alpha = np.minimum(alpha, a)
    means = segment_means(alpha, counts_offsets)
    means[np.diff(counts_offsets) == 0] = np.nan
    return means
