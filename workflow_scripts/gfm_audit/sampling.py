"""Seeded subsets: which k of n items a seed picks, drawn the same way wherever the package samples.

``seed`` is anything :func:`numpy.random.default_rng` takes: an int, a list of ints, a
``SeedSequence`` (e.g. one child of ``SeedSequence(seed).spawn``), or a ``Generator``, which is
used as it is, so successive subsets from one generator continue its stream.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def sample_indices(n: int, k: int, seed: Any) -> np.ndarray:
    """Sorted indices of min(k, n) distinct items of ``range(n)``."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(k, n), replace=False))


def sample_labels(n: int, k: int, seed: Any) -> np.ndarray:
    """int8 labels of ``n`` items, 1 for the k a seed picks, 0 for the rest.

    The k are the first of a seeded permutation, not :func:`sample_indices`' draw (numpy draws
    the two differently): membership splits were made this way, and a seed must keep its split.
    """
    labels = np.zeros(n, dtype=np.int8)
    labels[np.random.default_rng(seed).permutation(n)[:k]] = 1
    return labels
