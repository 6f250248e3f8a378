"""Attack metrics: ROC AUC with a bootstrap CI, TPR at low FPR, balanced accuracy,
the neighbor-threshold table, and an empirical lower bound on DP epsilon.

TPR at FPR alpha is the highest TPR over thresholds with FPR <= alpha
(``tpr_at_fpr_<alpha>``); the ``_strict`` columns use FPR < alpha, the
convention of mimir and of LiRA's code, so that both kinds of published
numbers have a counterpart.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import beta
from sklearn.metrics import roc_auc_score, roc_curve

from ..errors import InputError
from ..outputs import atomic_outputs

FPR_LEVELS = (0.001, 0.01)
METRIC_COLUMNS = (
    "attack",
    "auc",
    "auc_low",
    "auc_high",
    "tpr_at_fpr_0.001",
    "tpr_at_fpr_0.01",
    "tpr_at_fpr_0.001_strict",
    "tpr_at_fpr_0.01_strict",
    "balanced_accuracy",
    "eps_lower_bound",
    "n_members",
    "n_nonmembers",
    "rmia_population",
)
TOO_FEW = "insufficient_nonmembers"
# The fixed grid of the original HyenaDNA membership-inference benchmark, which this project's neighborhood
# attack follows; kept for comparison with it, it suits only that benchmark's loss scale.
HYENADNA_BENCHMARK_THRESHOLDS = tuple(round(0.01 * i, 2) for i in range(20))
QUANTILE_LEVELS = tuple(round(0.05 * i, 2) for i in range(1, 20))
THRESHOLD_COLUMNS = ("attack", "quantile", "threshold", "called_members", "precision", "recall", "fpr")


def resampled_auc(pos: np.ndarray, neg_sorted: np.ndarray, *, pos_counts: np.ndarray, neg_counts: np.ndarray):
    """AUC (Mann-Whitney, ties count half) of samples holding each value ``counts`` times.

    ``neg_sorted`` must be sorted; counts may be (B, n) to evaluate B resamples at once,
    in O(B (n_pos + n_neg)) rather than one ROC per resample.
    """
    lo = np.searchsorted(neg_sorted, pos, side="left")
    hi = np.searchsorted(neg_sorted, pos, side="right")
    neg_counts = np.atleast_2d(neg_counts)
    cum = np.concatenate([np.zeros((len(neg_counts), 1)), np.cumsum(neg_counts, axis=1)], axis=1)
    beaten = cum[:, lo] + 0.5 * (cum[:, hi] - cum[:, lo])  # negatives below each positive, ties half
    total = np.atleast_2d(pos_counts).sum(axis=1) * neg_counts.sum(axis=1)
    return (np.atleast_2d(pos_counts) * beaten).sum(axis=1) / total


def auc_with_ci(scores: np.ndarray, labels: np.ndarray, *, n_boot: int, seed: int, level: float = 0.95):
    """ROC AUC and a percentile bootstrap CI, resampling members and non-members separately."""
    auc = roc_auc_score(labels, scores)
    rng = np.random.default_rng(seed)
    pos, neg = scores[labels == 1], np.sort(scores[labels == 0])
    boots = []
    # Resamples are evaluated in blocks of B: the (B, n) count and cumulative arrays (about six of them, float64)
    # stay near 2^20 elements whatever the number of windows n, so the job's memory does not grow with the
    # genome; up to 64 per block, as at the demo's size (the block size sets the order of the random draws).
    block = max(1, min(64, (1 << 20) // max(1, len(scores))))
    for start in range(0, n_boot, block):
        b = min(block, n_boot - start)
        boots.append(
            resampled_auc(
                pos,
                neg,
                pos_counts=rng.multinomial(len(pos), np.full(len(pos), 1 / len(pos)), size=b),
                neg_counts=rng.multinomial(len(neg), np.full(len(neg), 1 / len(neg)), size=b),
            )
        )
    if not boots:
        return float(auc), np.nan, np.nan
    lo, hi = np.quantile(np.concatenate(boots), [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(auc), float(lo), float(hi)


def tpr_at_fpr(
    fpr: np.ndarray, tpr: np.ndarray, alpha: float, *, n_nonmembers: int, strict: bool = False
) -> float | str:
    """Highest TPR at a threshold whose FPR <= alpha, or FPR < alpha with ``strict``.

    Papers use both conventions; FPR < alpha is the one of the code of mimir
    (Duan et al. 2024) and of LiRA (Carlini et al. 2022). When the non-members are too few for any threshold other than
    FPR 0 to qualify (n * alpha < 1, or <= 1 when strict), the number would
    say nothing about alpha: report that instead.
    """
    if n_nonmembers * alpha < (1 + 1e-9 if strict else 1):
        return TOO_FEW
    allowed = fpr < alpha - 1e-12 if strict else fpr <= alpha + 1e-12  # k/n and alpha may differ in the last bit
    return float(tpr[allowed].max())


def clopper_pearson(k: np.ndarray, n: int, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact binomial confidence interval for k successes out of n."""
    a = (1 - level) / 2
    k = np.asarray(k, float)
    lo = np.where(k > 0, beta.ppf(a, k, n - k + 1), 0.0)
    hi = np.where(k < n, beta.ppf(1 - a, k + 1, n - k), 1.0)
    return lo, hi


def epsilon_lower_bound(scores: np.ndarray, labels: np.ndarray, *, delta: float, level: float) -> float:
    """Empirical lower bound on DP epsilon (Jagielski et al. 2020; Nasr et al. 2021).

    (epsilon, delta)-DP bounds both error trade-offs of any membership test
    (Kairouz et al. 2015): FPR + e^eps FNR >= 1 - delta and e^eps FPR + FNR >= 1 - delta, so

        eps >= max over thresholds of max(ln((1 - delta - FNR) / FPR), ln((1 - delta - FPR) / FNR)).

    The second term is the larger one when almost no member is missed (FNR
    near 0) but many non-members are called members. FPR and FNR = 1 - TPR enter at their Clopper-Pearson upper
    bounds, so the result holds with the given confidence. Every distinct
    score is a threshold (collinear ROC points are kept: the bounds are not
    linear along a segment). 0 when no threshold gives a positive bound.
    """
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    n_pos, n_neg = int(labels.sum()), int((labels == 0).sum())
    tpr_lo, _ = clopper_pearson(np.round(tpr * n_pos), n_pos, level)
    _, fpr_hi = clopper_pearson(np.round(fpr * n_neg), n_neg, level)
    fnr_hi = 1 - tpr_lo
    with np.errstate(divide="ignore", invalid="ignore"):
        eps = np.r_[np.log((tpr_lo - delta) / fpr_hi), np.log((1 - delta - fpr_hi) / fnr_hi)]
    eps = eps[np.isfinite(eps)]
    return float(max(eps.max(), 0.0)) if eps.size else 0.0


def is_rmia(column: str) -> bool:
    return column == "rmia" or column.startswith("rmia_")


def evaluate(table: pd.DataFrame, *, n_boot: int, seed: int, delta: float, level: float) -> pd.DataFrame:
    """One metrics row per attack column of a ``scores.tsv`` table.

    ``rmia_population`` is the size of RMIA's population |Z|, on which its
    TPR at low FPR depends: RMIA leaves exactly those non-members unscored
    (attacks/rmia.py). Empty for the other attacks.
    """
    if "member" not in table or table.member.nunique() < 2:
        raise InputError("the scores have no members or no non-members: attacks need membership ground truth")
    rows = []
    for column in table.columns.drop(["window_id", "member"]):
        ok = table[column].notna().to_numpy()
        scores, labels = table[column].to_numpy(float)[ok], table.member.to_numpy(int)[ok]
        n_pos, n_neg = int(labels.sum()), int((labels == 0).sum())
        if n_pos == 0 or n_neg == 0:
            continue
        auc, lo, hi = auc_with_ci(scores, labels, n_boot=n_boot, seed=seed, level=level)
        fpr, tpr, _ = roc_curve(labels, scores)
        held_out = int(((table.member.to_numpy(int) == 0) & ~ok).sum())
        rows.append(
            {
                "attack": column,
                "auc": auc,
                "auc_low": lo,
                "auc_high": hi,
                **{f"tpr_at_fpr_{a:g}": tpr_at_fpr(fpr, tpr, a, n_nonmembers=n_neg) for a in FPR_LEVELS},
                **{
                    f"tpr_at_fpr_{a:g}_strict": tpr_at_fpr(fpr, tpr, a, n_nonmembers=n_neg, strict=True)
                    for a in FPR_LEVELS
                },
                "balanced_accuracy": float(((tpr + 1 - fpr) / 2).max()),
                "eps_lower_bound": epsilon_lower_bound(scores, labels, delta=delta, level=level),
                "n_members": n_pos,
                "n_nonmembers": n_neg,
                "rmia_population": held_out if is_rmia(column) else None,
            }
        )
    metrics = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    metrics["rmia_population"] = metrics["rmia_population"].astype("Int64")  # a count: never "%.6g", empty if none
    return metrics


def threshold_table(
    table: pd.DataFrame, thresholds: Sequence[float] | None = None, quantiles: Sequence[float] = QUANTILE_LEVELS
) -> pd.DataFrame:
    """The HyenaDNA membership benchmark's table for the neighbor loss difference, with proper precision, recall, FPR.

    A window is called a member when mean neighbor loss - its loss > t.
    precision = TP / (TP + FP), recall = TP / members, FPR = FP / non-members.
    t runs over the given fixed ``thresholds`` (e.g. that benchmark's
    HYENADNA_BENCHMARK_THRESHOLDS), or, when None, over the ``quantiles`` of
    each column's observed differences (members and non-members pooled, linear
    interpolation; the ``quantile`` column), so that every row splits the
    windows whatever the model's loss scale. A column with no observed
    difference has no quantiles and no rows.
    """
    rows = []
    labels = table.member.to_numpy(int)
    for column in [c for c in table.columns if c.startswith("neighborhood_")]:
        values = table[column].to_numpy(float)
        ok = ~np.isnan(values)
        if thresholds is not None:
            grid = [(np.nan, float(t)) for t in thresholds]
        elif ok.any():
            grid = list(zip(quantiles, np.quantile(values[ok], quantiles).tolist(), strict=True))
        else:
            grid = []
        pos, neg = int((labels[ok] == 1).sum()), int((labels[ok] == 0).sum())
        for q, t in grid:
            called = (values > t) & ok
            tp, fp = int((called & (labels == 1)).sum()), int((called & (labels == 0)).sum())
            rows.append(
                {
                    "attack": column,
                    "quantile": q,
                    "threshold": t,
                    "called_members": tp + fp,
                    "precision": tp / (tp + fp) if tp + fp else np.nan,
                    "recall": tp / pos if pos else np.nan,
                    "fpr": fp / neg if neg else np.nan,
                }
            )
    return pd.DataFrame(rows, columns=THRESHOLD_COLUMNS)


def write_metrics(metrics: pd.DataFrame, thresholds: pd.DataFrame, *, metrics_path, thresholds_path) -> None:
    with atomic_outputs(metrics_path, thresholds_path) as (m, t):
        metrics.to_csv(m, sep="\t", index=False, float_format="%.6g")
        thresholds.to_csv(t, sep="\t", index=False, float_format="%.6g")


def read_scores(path: str | os.PathLike) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"window_id": str})
