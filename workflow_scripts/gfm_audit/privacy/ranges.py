"""Range membership over SNP neighbourhoods: RaMIA's trimmed aggregation, computed in the reduce step.

Range membership inference (RaMIA; Tao & Shokri 2024, "Range Membership Inference Attacks"; Privacy Meter 2.0,
``modules/ramia/ramia_scores.py``) asks whether a model trained on *any* point of a range. Here the range of a
window is its haplotype variants: the window itself (Privacy Meter's samplers put the range centre first among
the range's points, so it is included by default) and its neighbours of one kind, pooled over every p or of one
p (:mod:`.neighbors`). Each point gets a membership score, here the LOSS score -L(x) under the scored model; the
range's score is the trimmed mean of its points' scores: the lowest-scoring share ``trim`` of the points is
dropped (Privacy Meter's ``trim_direction: bottom``: a member range holds few trained points among many
untrained ones, which pull a plain mean down) and the rest averaged.

The reduce (:func:`..features.reduce_shards`) sees a shard's per-sequence features, neighbours included, one
shard at a time: the trimmed statistic is computed there, as one more column per window, so that the attacks
still see O(windows x features). The column holds the mean *loss* of the kept points (the loss scale of the
other per-window columns); the attack negates it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import InputError
from ..ragged import length_groups, offsets_of, segment_rows

# range_<group>_trim<q>_<feature>: the window and its neighbours; nbr_<group>_trim<q>_<feature>: the neighbours only.
_RANGE = re.compile(
    r"^(?P<prefix>range|nbr)_(?P<kind>[a-z]+)(?:_p(?P<p>[0-9.]+(?:e-?[0-9]+)?))?"
    r"_trim(?P<trim>[0-9.]+(?:e-?[0-9]+)?)_(?P<feature>[a-z_]+)$"
)


@dataclass(frozen=True)
class RangeSpec:
    """One range statistic of the per-window table: which points form the range, and how much is trimmed."""

    kind: str  # the neighbour kind (snp, control)
    prob: float | None  # one p, or None for every p of the kind
    trim: float  # share of the lowest-scoring points dropped, in [0, 1)
    feature: str = "loss"
    include_window: bool = True

    @property
    def column(self) -> str:
        group = self.kind if self.prob is None else f"{self.kind}_p{self.prob:g}"
        return f"{'range' if self.include_window else 'nbr'}_{group}_trim{self.trim:g}_{self.feature}"


def check_trim(trim: float, key: str = "attacks.ramia.trim") -> None:
    """A trim share must leave at least one point of every range: [0, 1)."""
    if not 0 <= trim < 1:
        raise InputError(
            f"{key} is {trim:g}, outside [0, 1): the share of a range's lowest scores dropped; use e.g. 0.5"
        )


def parse_range_column(name: str) -> RangeSpec | None:
    """The :class:`RangeSpec` of a range column name, None for another column."""
    match = _RANGE.match(name)
    if not match:
        return None
    return RangeSpec(
        kind=match["kind"],
        prob=None if match["p"] is None else float(match["p"]),
        trim=float(match["trim"]),
        feature=match["feature"],
        include_window=match["prefix"] == "range",
    )


def kept_count(n: int, trim: float) -> int:
    """How many of a range's ``n`` points are averaged: max(1, floor((1 - trim) n)).

    Privacy Meter keeps int((1 - trim) n); the product is rounded to 9 decimals first so that a share such as 0.7
    of 10 points keeps 3, not the 2 that (1 - 0.7) * 10 = 2.9999999999999996 would floor to; and at least one point
    is kept, where Privacy Meter would average none (NaN) for a small range and a large share.
    """
    return max(1, math.floor(round((1.0 - trim) * n, 9)))


def trimmed_means(losses: np.ndarray, offsets: np.ndarray, trim: float) -> np.ndarray:
    """Per range ``losses[offsets[i]:offsets[i+1]]``: the mean loss of its :func:`kept_count` lowest-loss points,
    i.e. minus the trimmed mean of the scores -loss with the lowest scores dropped; NaN for an empty range.

    Ranges of one size are stacked and sorted along rows (no loop over ranges); ties need no rule, tied values
    being equal wherever they fall.
    """
    counts = np.diff(offsets)
    out = np.full(len(counts), np.nan)
    for length, rows in length_groups(counts):
        take = kept_count(length, trim)
        block = np.sort(segment_rows(losses, offsets, rows, length=length), axis=1)
        out[rows] = np.ascontiguousarray(block[:, :take]).sum(axis=1) / take
    return out


def range_aggregates(sequences: pd.DataFrame, window_ids: np.ndarray, specs: Sequence[RangeSpec]) -> dict:
    """Per window of ``window_ids``, each spec's trimmed statistic over the window's range points in ``sequences``
    (one shard's per-sequence features: ``window_id``, ``kind``, ``prob`` and the feature columns).

    A point without the feature (a sequence without scored tokens) is not in the range; a window whose range has no
    point gets NaN.
    """
    position = pd.Index(window_ids).get_indexer(sequences.window_id.to_numpy())
    kinds = sequences.kind.to_numpy()
    probs = sequences.prob.to_numpy(np.float64)
    out = {}
    for spec in specs:
        values = sequences[spec.feature].to_numpy(np.float64)
        point = kinds == spec.kind
        if spec.prob is not None:
            point &= probs == spec.prob
        if spec.include_window:
            point |= kinds == "window"
        point &= (position >= 0) & ~np.isnan(values)
        # The points grouped by window, in window order (a stable sort keeps each window's own order).
        rows = np.flatnonzero(point)
        rows = rows[np.argsort(position[rows], kind="stable")]
        offsets = offsets_of(np.bincount(position[rows], minlength=len(window_ids)))
        out[spec.column] = trimmed_means(values[rows], offsets, spec.trim)
    return out
