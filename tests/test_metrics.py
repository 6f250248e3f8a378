"""Metrics against scikit-learn and hand computation; edge cases of TPR at low FPR."""

import math

import numpy as np
import pandas as pd
import pytest
from gfm_audit.errors import InputError
from gfm_audit.metrics import (
    TOO_FEW,
    auc_with_ci,
    clopper_pearson,
    epsilon_lower_bound,
    evaluate,
    resampled_auc,
    threshold_table,
    tpr_at_fpr,
)
from scipy.stats import binomtest
from sklearn.metrics import roc_auc_score, roc_curve


def _mann_whitney_auc(scores, labels):
    pos, neg = scores[labels == 1], scores[labels == 0]
    diff = pos[:, None] - neg[None, :]
    return (diff > 0).mean() + 0.5 * (diff == 0).mean()


def test_auc_equals_the_mann_whitney_statistic_and_its_ci_brackets_it():
    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(300), np.zeros(300)].astype(int)
    scores = np.round(rng.normal(labels * 0.5, 1.0), 1)  # rounded: many ties
    auc, lo, hi = auc_with_ci(scores, labels, 500, 0)
    assert auc == pytest.approx(_mann_whitney_auc(scores, labels))
    assert auc == pytest.approx(roc_auc_score(labels, scores))
    assert lo < auc < hi and 0.04 < hi - lo < 0.12  # sd of AUC here is about 0.017


def test_resampled_auc_equals_sklearn_on_the_expanded_resample():
    rng = np.random.default_rng(2)
    pos, neg = np.round(rng.normal(0.5, 1, 40), 1), np.sort(np.round(rng.normal(0, 1, 30), 1))
    pos_counts, neg_counts = rng.integers(0, 4, (3, 40)), rng.integers(0, 4, (3, 30))
    got = resampled_auc(pos, neg, pos_counts, neg_counts)
    for b in range(3):
        p, n = np.repeat(pos, pos_counts[b]), np.repeat(neg, neg_counts[b])
        expected = roc_auc_score(np.r_[np.ones(len(p)), np.zeros(len(n))], np.r_[p, n])
        assert got[b] == pytest.approx(expected)


def test_tpr_at_fpr_with_ties_takes_the_last_threshold_under_the_fpr():
    labels = np.array([1] * 10 + [0] * 100)
    scores = np.r_[np.arange(10, 0, -1), [10] + [0] * 99]  # one non-member ties the best member
    fpr, tpr, _ = roc_curve(labels, scores)
    # Any threshold that calls a member calls the tied non-member too (FPR 1/100); at 1% every member fits.
    assert tpr_at_fpr(fpr, tpr, 0.01, 100) == pytest.approx(1.0)
    assert tpr_at_fpr(fpr, tpr, 0.005, 1000) == 0.0  # the tie cannot be split: nothing under 0.5%


def test_tpr_at_an_unreachable_fpr_is_reported_as_such():
    fpr, tpr = np.array([0, 0.5, 1.0]), np.array([0.5, 0.9, 1.0])
    assert tpr_at_fpr(fpr, tpr, 0.001, 200) == TOO_FEW
    assert tpr_at_fpr(fpr, tpr, 0.01, 100) == 0.5


def test_clopper_pearson_matches_scipy_exact_interval():
    lo, hi = clopper_pearson(np.array([7]), 40, 0.95)
    ci = binomtest(7, 40).proportion_ci(0.95, method="exact")
    assert lo[0] == pytest.approx(ci.low) and hi[0] == pytest.approx(ci.high)


def test_epsilon_lower_bound_of_a_perfect_attack_by_hand():
    labels = np.r_[np.ones(100), np.zeros(100)].astype(int)
    scores = labels.astype(float)
    tpr_lo = 0.025 ** (1 / 100)  # Clopper-Pearson lower bound for 100 of 100
    fpr_hi = 1 - 0.025 ** (1 / 100)  # upper bound for 0 of 100
    expected = math.log((tpr_lo - 1e-5) / fpr_hi)
    assert epsilon_lower_bound(scores, labels, 1e-5, 0.95) == pytest.approx(expected)
    assert epsilon_lower_bound(np.zeros(200), labels, 1e-5, 0.95) == 0.0


def test_evaluate_writes_one_row_per_attack_with_the_documented_columns():
    rng = np.random.default_rng(1)
    member = np.r_[np.ones(50), np.zeros(50)].astype(int)
    table = pd.DataFrame({"window_id": [f"w{i}" for i in range(100)], "member": member,
                          "loss": rng.normal(member, 1), "rmia": np.r_[rng.random(75), [np.nan] * 25]})  # fmt: skip
    metrics = evaluate(table, 50, 0, 1e-5, 0.95)
    assert list(metrics.columns) == ["attack", "auc", "auc_low", "auc_high", "tpr_at_fpr_0.001", "tpr_at_fpr_0.01",
                                     "balanced_accuracy", "eps_lower_bound", "n_members", "n_nonmembers"]  # fmt: skip
    assert metrics.attack.tolist() == ["loss", "rmia"]
    assert metrics.set_index("attack").loc["rmia", "n_nonmembers"] == 25  # held-out population not evaluated
    assert (metrics["tpr_at_fpr_0.001"] == TOO_FEW).all()
    fpr, tpr, _ = roc_curve(member, table.loss)
    assert metrics.balanced_accuracy[0] == pytest.approx(((tpr + 1 - fpr) / 2).max())


@pytest.mark.parametrize("labels", [[1, 1, 1], [0, 0, 0]])
def test_scores_without_members_or_non_members_need_ground_truth(labels):
    table = pd.DataFrame({"window_id": ["a", "b", "c"], "member": labels, "loss": [1.0, 2.0, 3.0]})
    with pytest.raises(InputError, match="need membership ground truth"):
        evaluate(table, 10, 0, 1e-5, 0.95)


def test_threshold_table_counts_over_members_and_non_members():
    table = pd.DataFrame({"window_id": list("abcde"), "member": [1, 1, 0, 0, 0],
                          "neighborhood_snp": [0.10, 0.02, 0.05, -0.01, 0.0]})  # fmt: skip
    t = threshold_table(table, thresholds=(0.0, 0.03))
    first, second = t.iloc[0], t.iloc[1]
    # t = 0: called a, b, c -> TP 2, FP 1
    assert (first.precision, first.recall, first.fpr) == pytest.approx((2 / 3, 1.0, 1 / 3))
    # t = 0.03: called a, c -> TP 1, FP 1
    assert (second.precision, second.recall, second.fpr) == pytest.approx((0.5, 0.5, 1 / 3))
