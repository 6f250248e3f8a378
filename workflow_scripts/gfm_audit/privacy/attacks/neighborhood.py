"""Neighborhood attack (Mattern et al. 2023, "Membership inference attacks against language
models via neighborhood comparison"), with SNP neighbors instead of word swaps.

score(x) = mean_n L(n) - L(x) over the neighbors n of window x: a member's
loss is lower than that of its close variants. Higher score = member.
Variants: per neighbor kind (snp, control) and replacement probability p,
pooled over p, and on SNP-site tokens only (``_snpsites``, using the loss
over the tokens covering the window's SNP sites).
"""

import numpy as np
import pandas as pd

NAME = "neighborhood"


def missing(data):
    if data.neighbors(data.target).empty:
        return "no neighbors were scored (neighbors stage produced none)"
    return None


def _diff(nbr: pd.DataFrame, orig: pd.Series, column: str, window_ids) -> np.ndarray:
    mean = nbr.groupby("window_id")[column].mean()
    return (mean.reindex(window_ids) - orig.reindex(window_ids)).to_numpy(float)


def run(data):
    orig = data.windows(data.target)
    nbr = data.neighbors(data.target)
    out = {}
    for kind in sorted(nbr.kind.unique(), key=lambda k: (k != "snp", k)):
        of_kind = nbr[nbr.kind == kind]
        for suffix, column in (("", "loss"), ("_snpsites", "snp_loss")):
            out[f"neighborhood_{kind}{suffix}"] = _diff(of_kind, orig[column], column, data.window_ids)
            for p in sorted(of_kind.prob.unique()):
                sub = of_kind[of_kind.prob == p]
                out[f"neighborhood_{kind}_p{p:g}{suffix}"] = _diff(sub, orig[column], column, data.window_ids)
    return out
