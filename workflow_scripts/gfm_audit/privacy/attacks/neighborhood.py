"""Neighborhood attack (Mattern et al. 2023, "Membership inference attacks against language
models via neighborhood comparison"), with SNP neighbors instead of word swaps.

score(x) = mean_n L(n) - L(x) over the neighbors n of window x: a member's
loss is lower than that of its close variants. Higher score = member.
Variants: per neighbor kind (snp, control) and replacement probability p,
pooled over p, and on SNP-site tokens only (``_snpsites``, using the loss
over the tokens covering the window's SNP sites). The neighbor means come
from the per-window table (:mod:`..features`), not from per-neighbor rows.
"""

import numpy as np

NAME = "neighborhood"


def features(params):
    return {"loss", "snp_loss"}


def missing(data):
    if not data.neighbor_groups(data.target):
        return "no neighbors were scored (neighbors stage produced none)"
    return None


def run(data):
    own = data.windows(data.target)
    groups = data.neighbor_groups(data.target)
    kinds = sorted({kind for kind, _ in groups}, key=lambda k: (k != "snp", k))
    out = {}
    for kind in kinds:
        probs = sorted(p for k, p in groups if k == kind and p is not None)
        for suffix, feature in (("", "loss"), ("_snpsites", "snp_loss")):
            orig = own[feature].to_numpy(np.float64)
            out[f"neighborhood_{kind}{suffix}"] = data.neighbor_mean(data.target, (kind, None), feature) - orig
            for p in probs:
                mean = data.neighbor_mean(data.target, (kind, p), feature)
                out[f"neighborhood_{kind}_p{p:g}{suffix}"] = mean - orig
    return out
