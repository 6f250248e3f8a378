"""Offline RMIA (Zarifzadeh et al. 2024, "Low-cost high-power membership inference attacks").

With p(x|m) = exp(-L_m(x)), the per-token geometric-mean likelihood of window
x under model m (an LM's probability of a whole sequence underflows, this
keeps p in (0, 1)):
  P_OUT(x) = mean of p(x|r) over the reference models r that did not train on x,
  P(x)     = ((1 + a) P_OUT(x) + (1 - a)) / 2   (P_IN approximated as a P_OUT + 1 - a),
  LR(x, z) = [p(x|target) / P(x)] / [p(z|target) / P(z)],
  score(x) = fraction of population windows z with LR(x, z) >= gamma
             + sigmoid(mean_z ln(LR(x, z) / gamma)) / |Z|.
The fraction moves in steps of 1/|Z|: on a small population many members and
a few non-members all beat every z and tie at 1, which leaves no threshold
with a low FPR. The second term breaks such ties by the likelihood ratio
itself; it lies in [0, 1/|Z|), so it never reorders distinct fractions, and
the score is then strictly increasing in p(x|target) / P(x). The population
is a seeded share of the target's non-member windows, held out from
evaluation (their score is left empty); metrics.tsv states its size. ``a`` is chosen from a grid
by attacking each reference model with the others (their membership is known).
Higher score = member.
"""

from __future__ import annotations

import logging

import numpy as np

from ...sampling import sample_indices

NAME = "rmia"


def features(params):
    return {"loss"}


log = logging.getLogger(__name__)

DEFAULTS = {
    "gamma": 1.0,
    "a": None,
    "a_grid": [round(0.1 * i, 1) for i in range(11)],
    "population_fraction": 0.25,
    "seed": 0,
}


def missing(data):
    if not data.references:
        return "needs reference models trained by the workflow (membership.mode finetune, reference_models >= 1)"
    return None


def population_mask(nonmember: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A seeded ``fraction`` of the non-members (at least one)."""
    idx = np.flatnonzero(nonmember)
    k = min(len(idx), max(1, int(round(fraction * len(idx)))))
    mask = np.zeros(len(nonmember), dtype=bool)
    mask[idx[sample_indices(len(idx), k, seed)]] = True
    return mask


def rmia_scores(
    target_lik: np.ndarray, ref_lik: np.ndarray, ref_in: np.ndarray, *, population: np.ndarray, a: float, gamma: float
) -> np.ndarray:
    """Scores of every window against the population windows (``population`` mask), ties broken.

    ``target_lik``: (n,) p(x|target); ``ref_lik``: (K, n) p(x|ref); ``ref_in``: (K, n) bool.
    score = share of z with LR(x, z) >= gamma + sigmoid(mean_z ln(LR(x, z) / gamma)) / |Z| (module docstring).
    """
    # Imported here: the workflow imports every attack module to collect their features, before any conda env.
    from scipy.special import expit

    out_models = ~ref_in
    counts = out_models.sum(axis=0)
    p_out = np.where(counts > 0, (ref_lik * out_models).sum(axis=0) / np.maximum(counts, 1), ref_lik.mean(axis=0))
    p_x = ((1 + a) * p_out + (1 - a)) / 2
    ratio = target_lik / p_x
    ratio_z = np.sort(ratio[population])
    n_z = len(ratio_z)
    # LR(x, z) >= gamma  <=>  ratio_z <= ratio_x / gamma
    fraction = np.searchsorted(ratio_z, ratio / gamma, side="right") / n_z
    mean_log_lr = np.log(ratio) - np.log(ratio_z).mean() - np.log(gamma)
    # Clipped below 1: a saturated sigmoid must not add a whole step and tie with the next fraction.
    tie_break = np.minimum(expit(mean_log_lr), np.nextafter(1.0, 0.0))
    return fraction + tie_break / n_z


def tune_a(ref_lik: np.ndarray, ref_in: np.ndarray, *, grid, gamma: float, fraction: float, seed: int) -> float:
    """The ``a`` that maximises the mean AUC of attacking each reference with the others."""
    from sklearn.metrics import roc_auc_score

    k = len(ref_lik)
    best, best_auc = 0.5, -1.0
    for a in grid:
        aucs = []
        for j in range(k):
            others = [i for i in range(k) if i != j]
            labels = ref_in[j]
            population = population_mask(~labels, fraction, seed)
            scores = rmia_scores(ref_lik[j], ref_lik[others], ref_in[others], population=population, a=a, gamma=gamma)
            # A window without scored tokens (masked model, sampled mode, no SNP site and fraction 0) has no loss.
            keep = ~population & np.isfinite(scores)
            if keep.any() and labels[keep].min() != labels[keep].max():
                aucs.append(roc_auc_score(labels[keep], scores[keep]))
        if aucs and np.mean(aucs) > best_auc:
            best, best_auc = a, float(np.mean(aucs))
    return best


def run(data):
    params = {**DEFAULTS, **data.params.get("rmia", {})}
    refs = list(data.references)
    target_lik = np.exp(-data.losses([data.target])[0])
    ref_lik = np.exp(-data.losses(refs))
    ref_in = np.stack([np.asarray(data.ref_member[r], bool) for r in refs])
    a = params["a"]
    if a is None:
        if len(refs) >= 2:
            a = tune_a(
                ref_lik,
                ref_in,
                grid=params["a_grid"],
                gamma=params["gamma"],
                fraction=params["population_fraction"],
                seed=params["seed"],
            )
        else:
            a = 0.5
        log.info(
            "rmia: a = %.2f (%s)", a, "tuned on the reference models" if len(refs) >= 2 else "default, one reference"
        )
    population = population_mask(data.member == 0, params["population_fraction"], params["seed"])
    scores = rmia_scores(target_lik, ref_lik, ref_in, population=population, a=a, gamma=params["gamma"])
    scores[population] = np.nan
    return {"rmia": scores}
