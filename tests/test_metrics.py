"""Metrics against scikit-learn and hand computation; edge cases of TPR at low FPR."""

import math

import numpy as np
import pandas as pd
import pytest
from gfm_audit.errors import InputError
from gfm_audit.privacy.metrics import (
    HYENADNA_BENCHMARK_THRESHOLDS,
    TOO_FEW,
    auc_with_ci,
    clopper_pearson,
    epsilon_lower_bound,
    evaluate,
    resampled_auc,
    threshold_table,
    tpr_at_fpr,
    write_metrics,
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
    auc, lo, hi = auc_with_ci(scores, labels, n_boot=500, seed=0)
    assert auc == pytest.approx(_mann_whitney_auc(scores, labels))
    assert auc == pytest.approx(roc_auc_score(labels, scores))
    assert lo < auc < hi and 0.04 < hi - lo < 0.12  # sd of AUC here is about 0.017


def test_resampled_auc_equals_sklearn_on_the_expanded_resample():
    rng = np.random.default_rng(2)
    pos, neg = np.round(rng.normal(0.5, 1, 40), 1), np.sort(np.round(rng.normal(0, 1, 30), 1))
    pos_counts, neg_counts = rng.integers(0, 4, (3, 40)), rng.integers(0, 4, (3, 30))
    got = resampled_auc(pos, neg, pos_counts=pos_counts, neg_counts=neg_counts)
    for b in range(3):
        p, n = np.repeat(pos, pos_counts[b]), np.repeat(neg, neg_counts[b])
        expected = roc_auc_score(np.r_[np.ones(len(p)), np.zeros(len(n))], np.r_[p, n])
        assert got[b] == pytest.approx(expected)


def test_tpr_at_fpr_with_ties_takes_the_last_threshold_under_the_fpr():
    labels = np.array([1] * 10 + [0] * 100)
    scores = np.r_[np.arange(10, 0, -1), [10] + [0] * 99]  # one non-member ties the best member
    fpr, tpr, _ = roc_curve(labels, scores)
    # Any threshold that calls a member calls the tied non-member too (FPR 1/100); at 1% every member fits.
    assert tpr_at_fpr(fpr, tpr, 0.01, n_nonmembers=100) == pytest.approx(1.0)
    assert tpr_at_fpr(fpr, tpr, 0.005, n_nonmembers=1000) == 0.0  # the tie cannot be split: nothing under 0.5%


def test_strict_tpr_at_fpr_leaves_out_the_thresholds_at_exactly_that_fpr():
    labels = np.array([1] * 10 + [0] * 200)
    scores = np.r_[np.arange(10, 0, -1), [10, 10] + [0] * 198]  # two non-members tie the best member: FPR 2/200
    fpr, tpr, _ = roc_curve(labels, scores)
    assert tpr_at_fpr(fpr, tpr, 0.01, n_nonmembers=200) == pytest.approx(1.0)  # FPR <= 1% admits FPR = 1%
    assert tpr_at_fpr(fpr, tpr, 0.01, n_nonmembers=200, strict=True) == 0.0  # FPR < 1% leaves only "call nobody"
    table = pd.DataFrame({"window_id": [f"w{i}" for i in range(210)], "member": labels, "loss": scores})
    row = evaluate(table, n_boot=0, seed=0, delta=1e-5, level=0.95).iloc[0]
    assert (row["tpr_at_fpr_0.01"], row["tpr_at_fpr_0.01_strict"]) == (pytest.approx(1.0), 0.0)


def test_strict_tpr_at_fpr_needs_more_than_one_over_alpha_non_members():
    # With exactly 1/alpha non-members only FPR 0 is below alpha: the number would say nothing about alpha.
    fpr, tpr = np.array([0, 0.01, 1.0]), np.array([0.5, 0.9, 1.0])
    assert tpr_at_fpr(fpr, tpr, 0.01, n_nonmembers=100) == pytest.approx(0.9)
    assert tpr_at_fpr(fpr, tpr, 0.01, n_nonmembers=100, strict=True) == TOO_FEW
    assert tpr_at_fpr(fpr, tpr, 0.01, n_nonmembers=101, strict=True) == 0.5


def test_tpr_at_an_unreachable_fpr_is_reported_as_such():
    fpr, tpr = np.array([0, 0.5, 1.0]), np.array([0.5, 0.9, 1.0])
    assert tpr_at_fpr(fpr, tpr, 0.001, n_nonmembers=200) == TOO_FEW
    assert tpr_at_fpr(fpr, tpr, 0.01, n_nonmembers=100) == 0.5


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
    assert epsilon_lower_bound(scores, labels, delta=1e-5, level=0.95) == pytest.approx(expected)
    assert epsilon_lower_bound(np.zeros(200), labels, delta=1e-5, level=0.95) == 0.0


def test_epsilon_lower_bound_takes_the_false_negative_side_when_no_member_is_missed():
    # Every member and half the non-members score 1: at t = 1, FNR = 0 and FPR = 1/2.
    labels = np.r_[np.ones(100), np.zeros(100)].astype(int)
    scores = np.r_[np.ones(100), np.ones(50), np.zeros(50)]
    fnr_hi = 1 - 0.025 ** (1 / 100)  # Clopper-Pearson upper bound for 0 misses of 100
    fpr_hi = binomtest(50, 100).proportion_ci(0.95, method="exact").high
    expected = math.log((1 - 1e-5 - fpr_hi) / fnr_hi)  # about 2.40; ln((1 - delta - FNR) / FPR) gives only 0.47
    assert epsilon_lower_bound(scores, labels, delta=1e-5, level=0.95) == pytest.approx(expected)
    # Swapping members and non-members (and the score's sign) swaps the two sides and keeps the bound.
    assert epsilon_lower_bound(-scores, 1 - labels, delta=1e-5, level=0.95) == pytest.approx(expected)


def _brute_force_epsilon(scores, labels, delta, level):
    """Both sides of the DP bound at every distinct score, with scipy's exact binomial intervals."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    best = 0.0
    for t in np.r_[np.inf, np.unique(scores)]:
        tp, fp = int((pos >= t).sum()), int((neg >= t).sum())
        tpr_lo = binomtest(tp, len(pos)).proportion_ci(level, method="exact").low
        fpr_hi = binomtest(fp, len(neg)).proportion_ci(level, method="exact").high
        fnr_hi = binomtest(len(pos) - tp, len(pos)).proportion_ci(level, method="exact").high
        for num, den in ((tpr_lo - delta, fpr_hi), (1 - delta - fpr_hi, fnr_hi)):
            if num > 0 and den > 0:
                best = max(best, math.log(num / den))
    return best


@pytest.mark.parametrize("seed", [0, 4])
def test_epsilon_lower_bound_is_the_best_threshold_on_either_side(seed):
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(60), np.zeros(80)].astype(int)
    scores = np.round(rng.normal(labels * 1.5, 1), 1)
    expected = _brute_force_epsilon(scores, labels, 1e-5, 0.95)
    assert epsilon_lower_bound(scores, labels, delta=1e-5, level=0.95) == pytest.approx(expected, rel=1e-9)


def test_evaluate_writes_one_row_per_attack_with_the_documented_columns():
    rng = np.random.default_rng(1)
    member = np.r_[np.ones(50), np.zeros(50)].astype(int)
    table = pd.DataFrame(
        {
            "window_id": [f"w{i}" for i in range(100)],
            "member": member,
            "loss": rng.normal(member, 1),
            "rmia": np.r_[rng.random(75), [np.nan] * 25],
        }
    )
    metrics = evaluate(table, n_boot=50, seed=0, delta=1e-5, level=0.95)
    assert list(metrics.columns) == [
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
    ]
    assert metrics.attack.tolist() == ["loss", "rmia"]
    assert metrics.set_index("attack").loc["rmia", "n_nonmembers"] == 25  # held-out population not evaluated
    assert (metrics["tpr_at_fpr_0.001"] == TOO_FEW).all()
    assert (metrics["tpr_at_fpr_0.001_strict"] == TOO_FEW).all()
    fpr, tpr, _ = roc_curve(member, table.loss)
    assert metrics.balanced_accuracy[0] == pytest.approx(((tpr + 1 - fpr) / 2).max())


@pytest.mark.parametrize("labels", [[1, 1, 1], [0, 0, 0]])
def test_scores_without_members_or_non_members_need_ground_truth(labels):
    table = pd.DataFrame({"window_id": ["a", "b", "c"], "member": labels, "loss": [1.0, 2.0, 3.0]})
    with pytest.raises(InputError, match="need membership ground truth"):
        evaluate(table, n_boot=10, seed=0, delta=1e-5, level=0.95)


def test_threshold_table_counts_over_members_and_non_members():
    table = pd.DataFrame(
        {"window_id": list("abcde"), "member": [1, 1, 0, 0, 0], "neighborhood_snp": [0.10, 0.02, 0.05, -0.01, 0.0]}
    )
    t = threshold_table(table, thresholds=(0.0, 0.03))
    first, second = t.iloc[0], t.iloc[1]
    # t = 0: called a, b, c -> TP 2, FP 1
    assert (first.precision, first.recall, first.fpr) == pytest.approx((2 / 3, 1.0, 1 / 3))
    # t = 0.03: called a, c -> TP 1, FP 1
    assert (second.precision, second.recall, second.fpr) == pytest.approx((0.5, 0.5, 1 / 3))


def test_metrics_state_rmia_population_size_and_leave_it_empty_for_other_attacks(tmp_path):
    rng = np.random.default_rng(1)
    member = np.r_[np.ones(50), np.zeros(50)].astype(int)
    table = pd.DataFrame(
        {
            "window_id": [f"w{i}" for i in range(100)],
            "member": member,
            "loss": rng.normal(member, 1),
            "rmia": np.r_[rng.random(75), [np.nan] * 25],
        }
    )
    metrics = evaluate(table, n_boot=0, seed=0, delta=1e-5, level=0.95)
    write_metrics(metrics, threshold_table(table), metrics_path=tmp_path / "m.tsv", thresholds_path=tmp_path / "t.tsv")
    written = pd.read_csv(tmp_path / "m.tsv", sep="\t", dtype={"rmia_population": str}).set_index("attack")
    assert written.loc["rmia", "rmia_population"] == "25"  # the unscored non-members: RMIA's population
    assert pd.isna(written.loc["loss", "rmia_population"])


def test_threshold_table_thresholds_are_quantiles_of_the_observed_differences_by_default():
    # Differences on a scale of 0.001 (our loss scale): the HyenaDNA benchmark's 0.00-0.19 would call nobody above 0.02.
    values = np.r_[0.001 * np.arange(21), np.nan]
    member = np.r_[np.zeros(10), np.ones(11), [1]].astype(int)  # members are the windows with 0.010-0.020
    table = pd.DataFrame({"window_id": [f"w{i}" for i in range(22)], "member": member, "neighborhood_snp": values})
    t = threshold_table(table).set_index("quantile")
    assert list(t.index) == pytest.approx([0.05 * i for i in range(1, 20)])
    assert t.threshold.to_numpy() == pytest.approx([0.001 * i for i in range(1, 20)])
    assert t.called_members.tolist() == list(range(19, 0, -1))  # 21 values, strictly above the i-th smallest
    # quantile 0.25: t = 0.005, called 0.006-0.020 = all 11 members and 4 of the 10 non-members
    assert (t.loc[0.25].precision, t.loc[0.25].recall, t.loc[0.25].fpr) == pytest.approx((11 / 15, 1.0, 0.4))
    # quantile 0.5: t = 0.010, called 0.011-0.020 = 10 members
    assert (t.loc[0.5].precision, t.loc[0.5].recall, t.loc[0.5].fpr) == pytest.approx((1.0, 10 / 11, 0.0))


def test_threshold_table_keeps_the_hyenadna_benchmarks_fixed_grid_when_asked():
    table = pd.DataFrame({"window_id": list("ab"), "member": [1, 0], "neighborhood_snp": [0.001, 0.0]})
    t = threshold_table(table, HYENADNA_BENCHMARK_THRESHOLDS)
    assert t.threshold.tolist() == [round(0.01 * i, 2) for i in range(20)] and t["quantile"].isna().all()
