"""The k-mer (order-k Markov) baseline of extraction.

``p(b | c) = (n(c, b) + 1) / (n(c) + 4)`` for the k bases ``c`` before ``b`` (add-one smoothing),
counted over the non-member windows. A continuation it predicts is predictable DNA (repeats, low
complexity, common motifs), not memorisation by the audited model: extraction is read against it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BASES = "ACGT"
_CODE = np.full(256, -1, dtype=np.int64)
for _i, _b in enumerate(BASES):
    _CODE[ord(_b)] = _i


def _codes(seq: str) -> np.ndarray:
    return _CODE[np.frombuffer(seq.encode(), dtype=np.uint8)]


class KmerModel:
    """Order-``k`` Markov chain over A, C, G, T; contexts with another base are not counted."""

    def __init__(self, k: int, counts: np.ndarray | None = None) -> None:
        self.k = k
        self.counts = np.zeros((4**k, 4), dtype=np.int64) if counts is None else counts

    @staticmethod
    def count(seq: str, k: int) -> np.ndarray:
        """(4^k, 4) transition counts of one sequence."""
        counts = np.zeros((4**k, 4), dtype=np.int64)
        codes = _codes(seq)
        if len(codes) <= k:
            return counts
        windows = np.lib.stride_tricks.sliding_window_view(codes, k + 1)
        windows = windows[(windows >= 0).all(axis=1)]
        context = np.zeros(len(windows), dtype=np.int64)
        for j in range(k):
            context = context * 4 + windows[:, j]
        np.add.at(counts, (context, windows[:, k]), 1)
        return counts

    @classmethod
    def fit(cls, seqs: Sequence[str], k: int) -> KmerModel:
        model = cls(k)
        for s in seqs:
            model.counts += cls.count(s, k)
        return model

    def without(self, seq: str) -> KmerModel:
        """The model fitted without ``seq`` (leave one out), for continuing a sequence it was fitted on."""
        return KmerModel(self.k, self.counts - self.count(seq, self.k))

    def probabilities(self, context: str) -> np.ndarray:
        """p(A, C, G, T | the last k bases of ``context``); uniform when they hold another base."""
        codes = _codes(context[-self.k :]) if self.k else np.zeros(0, dtype=np.int64)
        if len(codes) < self.k or (codes < 0).any():
            return np.full(4, 0.25)
        index = 0
        for c in codes:
            index = index * 4 + int(c)
        row = self.counts[index] + 1.0
        return row / row.sum()

    def continue_sequence(self, prefix: str, steps: int, *, rng: np.random.Generator | None = None) -> str:
        """``steps`` more bases: the most likely one each time (ties: A < C < G < T), or drawn with ``rng``."""
        text = prefix
        for _ in range(steps):
            p = self.probabilities(text)
            text += BASES[int(np.argmax(p)) if rng is None else int(rng.choice(4, p=p))]
        return text[len(prefix) :]
