"""Dataset inference (Maini et al. 2024) and DUCI's fraction (Tong et al. 2025) on seeded simulations."""

import numpy as np
import pandas as pd
import pytest
from gfm_audit.errors import InputError
from gfm_audit.privacy.dataset_inference import (
    MIN_SEQUENCES,
    combined_p_value,
    complete_features,
    cross_fitted_duci,
    curve_sizes,
    dataset_inference,
    duci_fraction,
    p_value_curve,
    score_table_inference,
    split_test,
    window_sets,
)
from scipy.stats import kstest, norm

N_FEATURES = 5


def gaussian_sets(rng, n_suspect, n_validation, shift=0.0):
    """Suspect and validation feature matrices: correlated Gaussian scores (attack scores are), the suspect set's
    mean moved by ``shift`` in every feature."""
    mixing = np.eye(N_FEATURES) + 0.5  # every pair of features correlated, as the attacks' scores are
    suspect = rng.standard_normal((n_suspect, N_FEATURES)) @ mixing + shift
    validation = rng.standard_normal((n_validation, N_FEATURES)) @ mixing
    return suspect, validation


def null_p_values(n_datasets, n=40):
    """One split's p-value on each of ``n_datasets`` seeded datasets whose two sets share one distribution; the
    sets differ in size so that Welch's correction is exercised."""
    ps = []
    for i in range(n_datasets):
        rng = np.random.default_rng([7, i])
        s, v = gaussian_sets(rng, n, n + 12)
        ps.append(split_test(s, v, rng=rng).p_value)
    return np.array(ps)


def test_p_values_are_uniform_when_suspect_and_validation_share_a_distribution():
    ps = null_p_values(200)
    # The aggregated score is a fixed linear function of Gaussian features on the test halves, so it is Gaussian and
    # Welch's p is uniform up to the Satterthwaite approximation. A KS test at level 0.01 fails a correct
    # implementation once in a hundred seeds; a wrong orientation, a leak of the fit halves into the test or a
    # two-sided p piles the p-values at 0 or 1 and fails it by orders of magnitude.
    assert kstest(ps, "uniform").pvalue > 0.01


def test_false_positive_rate_at_alpha_005_stays_within_sampling_error():
    alpha, n = 0.05, 200
    rate = (null_p_values(n) < alpha).mean()
    # Rejections are Binomial(n, alpha) under H0: three standard errors above alpha.
    assert rate <= alpha + 3 * np.sqrt(alpha * (1 - alpha) / n)


def test_combined_p_value_of_20_seeded_splits_keeps_the_level():
    alpha, n = 0.05, 60
    rejected = []
    for i in range(n):
        s, v = gaussian_sets(np.random.default_rng([11, i]), 30, 30)
        rejected.append(dataset_inference(s, v, splits=20, seed=i).p_value < alpha)
    # 2 x median is valid under any dependence between the splits (at most alpha); three binomial standard errors.
    assert np.mean(rejected) <= alpha + 3 * np.sqrt(alpha * (1 - alpha) / n)


def test_p_value_is_small_when_suspect_features_are_shifted():
    rng = np.random.default_rng(3)
    shift, n = 1.5, 100
    s, v = gaussian_sets(rng, n, n, shift=shift)
    result = dataset_inference(s, v, splits=20, seed=0)
    # The best linear score separates the sets by the Mahalanobis distance of the shift, d = sqrt(m' Sigma^-1 m);
    # the t statistic of n/2 per test half is near d sqrt(n/4), and its p-value is what the test should reach
    # (a fitted direction does a little worse: allow a factor 1e3 on p and half the effect size).
    mixing = np.eye(N_FEATURES) + 0.5
    m = np.full(N_FEATURES, shift)
    d = float(np.sqrt(m @ np.linalg.solve(mixing.T @ mixing, m)))
    expected_p = norm.sf(d * np.sqrt(n / 4))
    assert result.p_value < 1e3 * expected_p
    assert result.row()["cohens_d"] > d / 2
    assert all(sp.mean_difference > 0 for sp in result.splits)


def test_p_value_curve_falls_with_the_number_of_suspect_sequences():
    s, v = gaussian_sets(np.random.default_rng(5), 128, 128, shift=1.0)
    curve = p_value_curve(s, v, repeats=10, seed=0, alpha=0.01)
    assert curve.n_suspect.tolist() == curve_sizes(128) == [4, 8, 16, 32, 64, 128]
    assert curve.p_median.iloc[-1] < curve.p_median.iloc[0]
    assert curve.rejected_share.iloc[-1] >= curve.rejected_share.iloc[0]
    assert (curve.n_validation == curve.n_suspect).all()


def test_combined_p_value_is_twice_the_median():
    assert combined_p_value(np.array([0.01, 0.02, 0.5])) == pytest.approx(0.04)
    assert combined_p_value(np.array([0.6, 0.9])) == 1.0


def binormal_scores(rng, n, members, gap=2.0):
    """Attack scores: non-members N(0, 1), members N(gap, 1); ``members`` rows of ``n`` are members."""
    return rng.standard_normal(n) + gap * (np.arange(n) < members)


@pytest.mark.parametrize("share", [0.0, 0.25, 0.5, 1.0])
def test_duci_recovers_the_member_share_of_a_suspect_set(share):
    rng = np.random.default_rng([13, int(share * 100)])
    n_suspect, n_cal, gap = 4000, 10000, 2.0
    suspect = binormal_scores(rng, n_suspect, int(share * n_suspect), gap)
    members, nonmembers = binormal_scores(rng, n_cal, n_cal, gap), binormal_scores(rng, n_cal, 0, gap)
    duci = duci_fraction(suspect, members, nonmembers)
    # The tolerance is four delta-method standard errors at the population's own TPR and FPR: for equal-variance
    # Gaussians Youden's threshold is gap / 2, so TPR = Phi(gap / 2), FPR = 1 - TPR. The guessed share q,
    # TPR and FPR are binomial proportions, TPR and FPR measured on the held-out fold of each class (n_cal / 2).
    tpr = norm.cdf(gap / 2)
    fpr = 1 - tpr
    q = fpr + share * (tpr - fpr)
    m = n_cal / 2
    var = q * (1 - q) / n_suspect + (1 - share) ** 2 * fpr * (1 - fpr) / m + share**2 * tpr * (1 - tpr) / m
    tolerance = 4 * np.sqrt(var) / (tpr - fpr)
    assert abs(duci.fraction_raw - share) < tolerance
    assert abs(duci.fraction - share) < tolerance
    assert 0 <= duci.fraction <= 1
    assert duci.standard_error == pytest.approx(np.sqrt(var) / (tpr - fpr), rel=0.2)


def test_duci_interval_covers_sets_of_every_member_and_of_none():
    """20 members and 20 non-members whose scores barely overlap (gap 4): the whole member set is the suspect set,
    each half calibrated on the other (cross-fitting). Youden's threshold lands at or near the lowest calibration
    member, where the calibration's own TPR is 1 and a fresh member's below it; the interval must still cover."""
    draws, n = 200, 20
    covered = {1: 0, 0: 0}
    for d in range(draws):
        rng = np.random.default_rng([29, d])
        member = (np.arange(2 * n) < n).astype(int)
        scores = rng.standard_normal(2 * n) + 4.0 * member
        for share in covered:
            duci = cross_fitted_duci(scores, member, member == share, seed=d)
            covered[share] += bool(abs(duci.fraction_raw - share) <= 1.96 * duci.standard_error)
    # 95% nominal; 0.9 of 200 draws is 3.2 binomial standard deviations (sqrt(0.95 * 0.05 / 200) = 0.015) below
    # it. TPR and FPR measured on the scores that chose the threshold, without their variance when measured at 0
    # or 1, covered the all-member sets in 0.82 of 300 such draws.
    assert covered[1] / draws >= 0.9
    assert covered[0] / draws >= 0.9


def test_duci_measures_tpr_and_fpr_on_the_fold_that_did_not_choose_the_threshold():
    # Members 0..9, non-members -10..-1, cut into folds of five. Youden's threshold on a fold is its lowest member.
    # The fold holding member 0 chooses 0: the other fold is all at or above it (TPR 1). The other fold chooses its
    # own lowest member, at least 1, which member 0 of the measuring fold is below (TPR at most 0.8). FPR is 0 for
    # both. Measured on the scores that chose them, both TPRs would be 1.
    members, nonmembers = np.arange(10.0), -np.arange(1.0, 11.0)
    # 9 is at or above either threshold (a fold's lowest of five is at most 5), -20 below both: q = 1/2 each time.
    duci = duci_fraction(np.array([9.0, -20.0]), members, nonmembers, seed=3)
    assert duci.fpr == 0.0 and duci.guessed_share == 0.5
    assert duci.tpr <= 0.9
    # The folds' means enter the ratio: (q - FPR) / (TPR - FPR) = 0.5 / TPR.
    assert duci.fraction_raw == pytest.approx(0.5 / duci.tpr, rel=1e-12)
    with pytest.raises(ValueError, match="at least 2 calibration scores"):
        duci_fraction(np.array([1.0]), np.array([1.0]), nonmembers)


def test_duci_says_nothing_when_the_attack_does_not_separate():
    scores = np.ones(10)
    duci = duci_fraction(scores, scores, scores)
    assert np.isnan(duci.fraction_raw) and duci.tpr == duci.fpr


def test_cross_fitted_duci_estimates_a_set_of_every_member_without_calibrating_on_itself():
    rng = np.random.default_rng(17)
    n = 4000
    member = (np.arange(n) < n // 2).astype(int)
    scores = rng.standard_normal(n) + 2.0 * member
    duci = cross_fitted_duci(scores, member, member == 1, seed=0)
    # Each half of the members is calibrated on the other half: no member is left to a set that holds all.
    assert duci.n_members == n // 4 and duci.n_nonmembers == n // 2
    assert abs(duci.fraction_raw - 1.0) < 4 * duci.standard_error
    control = cross_fitted_duci(scores, member, member == 0, seed=0)
    assert abs(control.fraction_raw) < 4 * control.standard_error


def score_table(rng, n_members=120, n_nonmembers=120, shift=1.0):
    """A scores.tsv-like table: members' scores moved by ``shift``; an RMIA-like column missing on a quarter of the
    non-members, and a column missing on most windows."""
    n = n_members + n_nonmembers
    member = (np.arange(n) < n_members).astype(int)
    table = pd.DataFrame({"window_id": [f"w{i:06d}" for i in range(n)], "member": member})
    for name in ("loss", "zlib", "rmia", "sparse"):
        table[name] = rng.standard_normal(n) + shift * member
    table.loc[(member == 0) & (np.arange(n) % 4 == 0), "rmia"] = np.nan
    table.loc[np.arange(n) % 5 != 0, "sparse"] = np.nan
    return table


def test_score_table_rejects_members_and_not_the_control():
    table = score_table(np.random.default_rng(19))
    member = table.member.to_numpy()
    result, curve = score_table_inference(
        table, member == 1, member == 0, names=("members", "non_members"), splits=10, curve_repeats=5
    )
    suspect, control = result.set_index("test").loc["suspect"], result.set_index("test").loc["control"]
    assert suspect.rejected and suspect.p_value < 0.01
    assert not control.rejected
    # The sparse column is left out; the RMIA-like one is kept and the non-members it misses are dropped.
    assert suspect.features == "loss,zlib,rmia"
    assert suspect.n_suspect == 120 and suspect.n_validation == 90
    assert abs(suspect.duci_fraction_raw - 1) < 4 * suspect.duci_standard_error
    assert abs(control.duci_fraction_raw) < 4 * control.duci_standard_error
    assert curve.n_suspect.iloc[-1] == 120


def test_complete_features_drops_rows_not_fills_them():
    table = score_table(np.random.default_rng(23))
    features = table.drop(columns=["window_id", "member"])
    cols, s, v = complete_features(features[table.member == 1], features[table.member == 0])
    assert cols == ["loss", "zlib", "rmia"] and not s.isna().any().any() and not v.isna().any().any()


def test_overlapping_suspect_and_validation_sets_are_refused():
    table = score_table(np.random.default_rng(29))
    everything = np.ones(len(table), bool)
    with pytest.raises(
        InputError, match=r"dataset_inference.suspect and dataset_inference.validation share 120 sequences \(w000120"
    ):
        score_table_inference(table, everything, table.member.to_numpy() == 0, names=("regions.bed", "non_members"))


def test_too_small_a_suspect_set_is_refused_with_the_number_needed():
    rng = np.random.default_rng(31)
    s, v = gaussian_sets(rng, MIN_SEQUENCES - 1, 20)
    with pytest.raises(
        InputError, match=rf"suspect set has {MIN_SEQUENCES - 1} sequences; .* at least {MIN_SEQUENCES}"
    ):
        dataset_inference(s, v, where="dataset_inference.suspect (regions.bed)")
    table = score_table(rng)
    few = np.zeros(len(table), bool)
    few[:3] = True
    with pytest.raises(InputError, match=r"dataset_inference.suspect \(regions.bed\): the suspect set has 3"):
        score_table_inference(table, few, table.member.to_numpy() == 0, names=("regions.bed", "non_members"))


def test_too_small_a_validation_set_for_the_control_is_refused():
    table = score_table(np.random.default_rng(37))
    few = np.zeros(len(table), bool)
    few[-(2 * MIN_SEQUENCES - 1) :] = True
    with pytest.raises(
        InputError, match=rf"validation set has {2 * MIN_SEQUENCES - 1} .* at least {2 * MIN_SEQUENCES}"
    ):
        score_table_inference(table, table.member.to_numpy() == 1, few, names=("members", "valid.bed"))


def test_a_duci_attack_that_was_not_run_is_refused():
    table = score_table(np.random.default_rng(41))
    member = table.member.to_numpy()
    with pytest.raises(InputError, match=r"dataset_inference.duci_attack lira_online is not a column"):
        score_table_inference(
            table, member == 1, member == 0, names=("members", "non_members"), duci_attack="lira_online"
        )


def test_bed_sets_are_the_labelled_windows_overlapping_their_regions(tmp_path):
    table = score_table(np.random.default_rng(43))
    windows = pd.DataFrame(
        {"window_id": table.window_id, "chrom": "z", "start": np.arange(len(table)) * 1000, "end": 0}
    )
    windows["end"] = windows.start + 256
    windows.to_csv(tmp_path / "windows.tsv", sep="\t", index=False)
    (tmp_path / "contigs.tsv").write_text(
        f"fasta_contig\tvcf_contig\tlength\tmatch\nz\tz\t{1000 * len(table)}\tidentical\n"
    )
    # One region covering windows 0-9 whole, one ending a base into window 20: overlap, as membership BEDs count.
    (tmp_path / "suspect.bed").write_text("z\t0\t9300\nz\t19000\t20001\n")
    suspect, validation = window_sets(
        table,
        str(tmp_path / "suspect.bed"),
        "non_members",
        windows_path=str(tmp_path / "windows.tsv"),
        contigs_path=str(tmp_path / "contigs.tsv"),
    )
    assert np.flatnonzero(suspect).tolist() == [*range(10), 19, 20]
    assert (validation == (table.member == 0)).all()
