"""Attack metrics: ROC AUC with a bootstrap CI, TPR at low FPR, balanced accuracy,
the neighbour-threshold table, and an empirical lower bound on DP epsilon."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import beta
from sklearn.metrics import roc_auc_score, roc_curve

from .errors import InputError
from .outputs import atomic_outputs

METRIC_COLUMNS = ("attack", "auc", "auc_low", "auc_high", "tpr_at_fpr_0.001", "tpr_at_fpr_0.01",
                  "balanced_accuracy", "eps_lower_bound", "n_members", "n_nonmembers")  # fmt: skip
TOO_FEW = "insufficient_nonmembers"
PILOT_THRESHOLDS = tuple(round(0.01 * i, 2) for i in range(20))


def resampled_auc(pos: np.ndarray, neg_sorted: np.ndarray, pos_counts: np.ndarray, neg_counts: np.ndarray):
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


def auc_with_ci(scores: np.ndarray, labels: np.ndarray, n_boot: int, seed: int, level: float = 0.95):
    """ROC AUC and a percentile bootstrap CI, resampling members and non-members separately."""
    auc = roc_auc_score(labels, scores)
    rng = np.random.default_rng(seed)
    pos, neg = scores[labels == 1], np.sort(scores[labels == 0])
    boots = []
    for start in range(0, n_boot, 64):  # blocks keep the (B, n) count arrays small
        b = min(64, n_boot - start)
        boots.append(resampled_auc(pos, neg, rng.multinomial(len(pos), np.full(len(pos), 1 / len(pos)), size=b),
                                   rng.multinomial(len(neg), np.full(len(neg), 1 / len(neg)), size=b)))  # fmt: skip
    if not boots:
        return float(auc), np.nan, np.nan
    lo, hi = np.quantile(np.concatenate(boots), [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(auc), float(lo), float(hi)


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, alpha: float, n_nonmembers: int) -> float | str:
    """Highest TPR at a threshold whose FPR <= alpha.

    Below 1/alpha non-members the only such threshold has FPR 0, so the
    number would say nothing about alpha: report that instead.
    """
    if n_nonmembers * alpha < 1:
        return TOO_FEW
    return float(tpr[fpr <= alpha + 1e-12].max())


def clopper_pearson(k: np.ndarray, n: int, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact binomial confidence interval for k successes out of n."""
    a = (1 - level) / 2
    k = np.asarray(k, float)
    lo = np.where(k > 0, beta.ppf(a, k, n - k + 1), 0.0)
    hi = np.where(k < n, beta.ppf(1 - a, k + 1, n - k), 1.0)
    return lo, hi


def epsilon_lower_bound(scores: np.ndarray, labels: np.ndarray, delta: float, level: float) -> float:
    """max over thresholds of ln((TPR_lo - delta) / FPR_hi) (Jagielski et al. 2020; Nasr et al. 2021).

    TPR_lo and FPR_hi are Clopper-Pearson bounds, so the result holds with
    the given confidence. 0 when no threshold gives a positive bound.
    """
    fpr, tpr, _ = roc_curve(labels, scores)
    n_pos, n_neg = int(labels.sum()), int((labels == 0).sum())
    tpr_lo, _ = clopper_pearson(np.round(tpr * n_pos), n_pos, level)
    _, fpr_hi = clopper_pearson(np.round(fpr * n_neg), n_neg, level)
    with np.errstate(divide="ignore", invalid="ignore"):
        eps = np.log((tpr_lo - delta) / fpr_hi)
    eps = eps[np.isfinite(eps)]
    return float(max(eps.max(), 0.0)) if eps.size else 0.0


def evaluate(table: pd.DataFrame, n_boot: int, seed: int, delta: float, level: float) -> pd.DataFrame:
    """One metrics row per attack column of a ``scores.tsv`` table."""
    if "member" not in table or table.member.nunique() < 2:
        raise InputError("the scores have no members or no non-members: attacks need membership ground truth")
    rows = []
    for column in table.columns.drop(["window_id", "member"]):
        ok = table[column].notna().to_numpy()
        scores, labels = table[column].to_numpy(float)[ok], table.member.to_numpy(int)[ok]
        n_pos, n_neg = int(labels.sum()), int((labels == 0).sum())
        if n_pos == 0 or n_neg == 0:
            continue
        auc, lo, hi = auc_with_ci(scores, labels, n_boot, seed, level)
        fpr, tpr, _ = roc_curve(labels, scores)
        rows.append({
            "attack": column, "auc": auc, "auc_low": lo, "auc_high": hi,
            "tpr_at_fpr_0.001": tpr_at_fpr(fpr, tpr, 0.001, n_neg),
            "tpr_at_fpr_0.01": tpr_at_fpr(fpr, tpr, 0.01, n_neg),
            "balanced_accuracy": float(((tpr + 1 - fpr) / 2).max()),
            "eps_lower_bound": epsilon_lower_bound(scores, labels, delta, level),
            "n_members": n_pos, "n_nonmembers": n_neg,
        })  # fmt: skip
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


def threshold_table(table: pd.DataFrame, thresholds: Sequence[float] = PILOT_THRESHOLDS) -> pd.DataFrame:
    """The pilot's table for the neighbour loss difference, with proper precision, recall and FPR.

    A window is called a member when mean neighbour loss - its loss > t.
    precision = TP / (TP + FP), recall = TP / members, FPR = FP / non-members.
    """
    rows = []
    labels = table.member.to_numpy(int)
    for column in [c for c in table.columns if c.startswith("neighborhood_")]:
        values = table[column].to_numpy(float)
        ok = ~np.isnan(values)
        for t in thresholds:
            called = (values > t) & ok
            tp, fp = int((called & (labels == 1)).sum()), int((called & (labels == 0)).sum())
            pos, neg = int((labels[ok] == 1).sum()), int((labels[ok] == 0).sum())
            rows.append({"attack": column, "threshold": t, "called_members": tp + fp,
                         "precision": tp / (tp + fp) if tp + fp else np.nan,
                         "recall": tp / pos if pos else np.nan, "fpr": fp / neg if neg else np.nan})  # fmt: skip
    return pd.DataFrame(rows, columns=["attack", "threshold", "called_members", "precision", "recall", "fpr"])


def write_metrics(metrics: pd.DataFrame, thresholds: pd.DataFrame, metrics_path, thresholds_path) -> None:
    with atomic_outputs(metrics_path, thresholds_path) as (m, t):
        metrics.to_csv(m, sep="\t", index=False, float_format="%.6g")
        thresholds.to_csv(t, sep="\t", index=False, float_format="%.6g")


def read_scores(path: str | os.PathLike) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"window_id": str})
