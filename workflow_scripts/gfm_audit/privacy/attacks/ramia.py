"""Range membership inference (RaMIA; Tao & Shokri 2024, "Range Membership Inference Attacks"; Privacy Meter 2.0).

The query is a range, not a point: did the model train on *any* haplotype variant of this locus? The range of a
window is the window itself and its neighbours of one kind (``attacks.ramia.kinds``), pooled over every p or of
one p (``attacks.ramia.probs``) (:mod:`..ranges`). Each point x of the range scores -L(x) (LOSS) under the target;
the range scores the trimmed mean of its points' scores, the lowest-scoring share q (``attacks.ramia.trim``)
dropped:
  score(range) = mean of the max(1, floor((1 - q) n)) highest -L(x) over the range's n points.
A member range holds a trained variant whose low loss a plain mean would dilute among the untrained ones.
The trimmed means are computed by the reduce step (rule window_features), which alone sees every neighbour's
loss; this module reads the per-window column ``range_<kind>[_p<p>]_trim<q>_loss`` (the kept points' mean loss).
Columns: ``ramia_<kind>[_p<p>]_trim<q>`` (``_neighbors_only`` when the window is left out of its range).
Higher score = member. Its label is the range's: in finetune mode with ``membership.train_on: neighbor`` the
target trains on one variant of each member window, never on the window itself (:mod:`...membership`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ...errors import InputError
from ..ranges import RangeSpec, check_trim

NAME = "ramia"

DEFAULTS = {"trim": 0.5, "kinds": ["snp"], "probs": None, "include_window": True}


def _params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {**DEFAULTS, **params.get("ramia", {})}


def range_specs(params: Mapping[str, Any]) -> list[RangeSpec]:
    """The configured ranges (``params``: the ``attacks`` block), one per kind x p (or pooled) x trim share."""
    p = _params(params)
    trims = p["trim"] if isinstance(p["trim"], list | tuple) else [p["trim"]]
    for trim in trims:
        check_trim(trim)
    probs = [None] if p["probs"] is None else list(p["probs"])
    return [
        RangeSpec(
            kind=kind, prob=None if prob is None else float(prob), trim=float(trim), include_window=p["include_window"]
        )
        for kind in p["kinds"]
        for prob in probs
        for trim in trims
    ]


def features(params):
    return {"loss"}


def reductions(params):
    return [spec.column for spec in range_specs(params)]


def check_config(config: Mapping[str, Any], where: str = "the config") -> None:
    """Refuse, at start-up, ranges the neighbors stage cannot fill: a kind it does not write, a p it does not use,
    fewer than two points per range (a one-point range is a point query: use the loss attack)."""
    attacks = config.get("attacks", {})
    if NAME not in attacks.get("names", []):
        return
    p = _params(attacks)
    try:
        range_specs(attacks)
    except InputError as exc:
        raise InputError(f"{where} {exc}") from None
    neighbors = config.get("neighbors", {})
    if "control" in p["kinds"] and not neighbors.get("control", True):
        raise InputError(
            f"{where} attacks.ramia.kinds has control but neighbors.control is false, so no control neighbors are "
            "written; set neighbors.control: true or attacks.ramia.kinds: [snp]"
        )
    probs = neighbors.get("probs", [0.1, 0.2, 0.3])
    unknown = [q for q in p["probs"] or [] if q not in probs]
    if unknown:
        raise InputError(
            f"{where} attacks.ramia.probs has {unknown[0]:g}, which is not in neighbors.probs "
            f"({', '.join(f'{q:g}' for q in probs)}); use those, or null to pool them"
        )
    per_prob = neighbors.get("per_prob", 3)
    points = int(p["include_window"]) + per_prob * (len(probs) if p["probs"] is None else 1)
    if points < 2:
        raise InputError(
            f"{where} attacks.ramia ranges have {points} point each (include_window "
            f"{str(p['include_window']).lower()}, neighbors.per_prob {per_prob}); a range needs at least 2: raise "
            "neighbors.per_prob or set attacks.ramia.include_window: true"
        )


def missing(data):
    table = data.windows(data.target)
    columns = reductions(data.params)
    if not all(c in table.columns for c in columns):
        return "the per-window tables lack the range statistics (re-run rule window_features with ramia configured)"
    if all(table[c].isna().all() for c in columns):
        return "no range has a scored point (neighbors stage produced none)"
    return None


def run(data):
    table = data.windows(data.target)
    out = {}
    for spec in range_specs(data.params):
        group = spec.kind if spec.prob is None else f"{spec.kind}_p{spec.prob:g}"
        suffix = "" if spec.include_window else "_neighbors_only"
        out[f"ramia_{group}_trim{spec.trim:g}{suffix}"] = -table[spec.column].to_numpy(np.float64)
    return out
