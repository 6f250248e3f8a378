"""Certified robustness to base substitutions by randomised substitution smoothing (robustness/ga/certify.py).

The certificate is checked against computations that share nothing with its region-and-dynamic-program
derivation: exact smoothed probabilities of classifiers whose law under the noise is a binomial, the worst case
over every base classifier and every sequence within the distance found by enumerating all 4^L noisy sequences
(and, for the tiniest lengths, by a generic LP solver), and a GA that attacks the exactly computed smoothed
classifier.
"""

from __future__ import annotations

import csv
import itertools
import subprocess
import sys
from math import factorial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import DEMO, REPO
from gfm_audit.config import validate_config
from gfm_audit.errors import InputError
from gfm_audit.robustness.ga import certify as cert
from gfm_audit.robustness.ga.attack import ga_attack_stage, sample_rows
from gfm_audit.robustness.ga.classifiers import load_classifier
from gfm_audit.robustness.ga.clean_training import train_classifier_stage
from gfm_audit.robustness.ga.constraints import Constraints
from gfm_audit.robustness.ga.data import encode, read_labelled_csv
from gfm_audit.robustness.ga.robust_accuracy import robust_by_budget
from gfm_audit.robustness.ga.search import GAParams, genetic_attack
from numpy.typing import ArrayLike
from scipy.optimize import linprog
from scipy.stats import binom

A, C, G, T = 0, 1, 2, 3
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


# --- independent references --------------------------------------------------------------------------------------
def noise_law(x: np.ndarray, zs: np.ndarray, q: float) -> np.ndarray:
    """P(phi(x) = z) for every row z of ``zs``, straight from the definition: keep 1 - q, each other base q/3."""
    return np.where(zs == x, 1 - q, q / 3).prod(axis=-1)


def all_sequences(length: int) -> np.ndarray:
    return np.array(list(itertools.product(range(4), repeat=length)), dtype=np.uint8).reshape(-1, length)


def least_probability_knapsack(p_x: np.ndarray, p_other: np.ndarray, p_a: ArrayLike) -> np.ndarray:
    """min sum_z f(z) p_other(z) over f in [0, 1]^Z with sum_z f(z) p_x(z) >= p_a: an LP with one constraint,
    solved exactly by taking noisy sequences in ascending p_other / p_x (the fractional knapsack), the last in part:
    linear interpolation along the running sums. Checked against a generic LP solver below."""
    order = np.argsort(p_other / p_x, kind="stable")
    taken = np.concatenate([[0.0], np.cumsum(p_x[order])])
    cost = np.concatenate([[0.0], np.cumsum(p_other[order])])
    return np.interp(p_a, taken, cost)


def least_probability_lp(p_x: np.ndarray, p_other: np.ndarray, p_as: np.ndarray) -> np.ndarray:
    """The same LP handed to a generic solver (HiGHS), for the tiniest lengths."""
    values = []
    for p_a in p_as:
        res = linprog(p_other, A_ub=-p_x[None, :], b_ub=[-p_a], bounds=(0, 1), method="highs")
        assert res.status == 0
        values.append(res.fun)
    return np.array(values)


def brute_force_worst_case(x: np.ndarray, q: float, p_as: ArrayLike, solver=least_probability_knapsack) -> np.ndarray:
    """(len(p_as), len(x) + 1): at [i, d] the least P(f(phi(x')) = c_A) over every x' at Hamming distance d and
    every f with P(f(phi(x)) = c_A) >= p_as[i], by enumerating every x' and every noisy sequence."""
    zs = all_sequences(len(x))
    p_x = noise_law(x, zs, q)
    p_as = np.atleast_1d(p_as)
    worst = np.full((len(p_as), len(x) + 1), np.inf)
    for other in zs:
        d = int((other != x).sum())
        worst[:, d] = np.minimum(worst[:, d], solver(p_x, noise_law(other, zs, q), p_as))
    return worst


def brute_force_radius(worst: np.ndarray) -> int:
    """Largest R with every distance 1..R certified (worst case above 1/2); ``worst`` is one row of the above."""
    radius = 0
    for d in range(1, len(worst)):
        if worst[d] <= 0.5:
            break
        radius = d
    return radius


def count_law(n_match: int, n_other: int, q: float) -> np.ndarray:
    """Law of how many bases of phi(x) are one given base b, when x has n_match b's and n_other other bases: each b
    stays b with probability 1 - q, each other base becomes b with probability q/3 (a binomial convolution)."""
    return np.convolve(
        binom.pmf(np.arange(n_match + 1), n_match, 1 - q), binom.pmf(np.arange(n_other + 1), n_other, q / 3)
    )


def cp_lower_by_definition(k: int, n: int, confidence: float) -> float:
    """The p solving P(Bin(n, p) >= k) = 1 - confidence, by bisection on the binomial tail."""
    lo, hi = 0.0, 1.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if binom.sf(k - 1, n, mid) < 1 - confidence:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


# --- the noise ----------------------------------------------------------------------------------------------------
def test_each_base_is_replaced_with_probability_q_by_a_uniformly_drawn_other_base():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, 50).astype(np.uint8)
    q, n = 0.3, 40_000
    z = cert.noisy_copies(x, n, q, rng=rng)
    changed = z != x
    total = changed.size
    # Binomial counts within 5 standard deviations: each of these 54 checks fails by chance with probability
    # 5.7e-7, all together below 1e-4 at any seed.
    assert abs(changed.sum() - q * total) < 5 * np.sqrt(total * q * (1 - q))
    shifts = ((z.astype(int) - x) % 4)[changed]
    for s in (1, 2, 3):
        m = shifts.size
        assert abs((shifts == s).sum() - m / 3) < 5 * np.sqrt(m * (1 / 3) * (2 / 3))
    # Every position on its own too: a per-position bias would hide in the total.
    per_position = changed.mean(axis=0)
    assert np.all(np.abs(per_position - q) < 5 * np.sqrt(q * (1 - q) / n))


# --- toy classifiers whose smoothed probability is known exactly --------------------------------------------------
def test_a_classifier_that_reads_one_position_attains_the_bound_and_gets_radius_zero():
    """f(z) = 1 iff z_4 = x_4: P(f = 1) = 1 - q by hand; the x' that changes x_4 has P(f = 1) = q/3, which is
    exactly the worst case at distance 1, and below 1/2, so g flips there: the true radius is 0, as certified."""
    rng = np.random.default_rng(1)
    x = rng.integers(0, 4, 12).astype(np.uint8)
    pos = 4
    for q in (0.05, 0.2, 0.3, 0.45):  # 1 - q > 1/2: the prediction itself is certified
        p_x = 1 - q
        assert cert.worst_case_probability(p_x, 1, q) == pytest.approx(q / 3, abs=1e-12)
        assert int(cert.certified_radius(p_x, q, len(x))) == 0

    def reads_one_position(codes: np.ndarray) -> np.ndarray:
        hit = (codes[:, pos] == x[pos]).astype(float)
        return np.stack([1 - hit, hit], axis=1)

    q, n = 0.2, 5000
    result = cert.certify(
        reads_one_position,
        x[None, :],
        q=q,
        n_select=100,
        n_samples=n,
        confidence=0.999,
        seed=3,
        num_classes=2,
    )
    assert result.prediction[0] == 1
    assert abs(result.votes[0] - n * (1 - q)) < 5 * np.sqrt(n * q * (1 - q))
    assert result.p_a_lower[0] <= result.votes[0] / n
    assert result.radius[0] == 0


@pytest.mark.parametrize("q", [0.1, 0.25, 0.4, 0.6])
def test_a_base_counting_classifier_is_never_certified_beyond_where_its_smoothed_prediction_flips(q):
    """f(z) = 1 iff z has at least theta A's. Its smoothed probability is a binomial convolution; the worst x' at
    distance r turns r of x's A's into C's. The certified radius from the exact p_A must stay within the true one,
    and the bound must never exceed the true probability."""
    length = 40
    checked = 0
    for n_a in range(10, 41, 3):
        for theta in range(4, n_a + 1, 3):
            law = count_law(n_a, length - n_a, q)
            p_a = law[theta:].sum()
            # Within 1e-6 of 1 the bound's last region (likelihood ratio ((1-q)/(q/3))^r) turns the last bits of
            # the float sum into visible error, and no sample count reaches such a p_A anyway.
            if p_a <= 0.5 or p_a > 1 - 1e-6:
                continue
            radius = int(cert.certified_radius(p_a, q, length))
            true_radius = 0
            for r in range(1, n_a + 1):
                p_r = count_law(n_a - r, length - n_a + r, q)[theta:].sum()
                assert cert.worst_case_probability(p_a, r, q) <= p_r + 1e-12
                if p_r <= 0.5:
                    break
                true_radius = r
            else:
                true_radius = length  # even with no A left g keeps class 1: other changes cannot lower the count
            assert radius <= true_radius
            checked += 1
    assert checked > 20


def test_monte_carlo_votes_of_a_base_counting_classifier_match_its_binomial_probability():
    rng = np.random.default_rng(7)
    length, q, theta, n = 30, 0.3, 9, 4000
    codes = rng.choice(4, size=(6, length), p=[0.55, 0.15, 0.15, 0.15]).astype(np.uint8)

    def counts_a(z: np.ndarray) -> np.ndarray:
        hit = ((z == A).sum(axis=1) >= theta).astype(float)
        return np.stack([1 - hit, hit], axis=1)

    result = cert.certify(counts_a, codes, q=q, n_select=50, n_samples=n, confidence=0.999, seed=0, num_classes=2)
    for i, x in enumerate(codes):
        n_a = int((x == A).sum())
        p1 = count_law(n_a, length - n_a, q)[theta:].sum()
        p_chosen = p1 if result.prediction[i] == 1 else 1 - p1
        assert abs(result.votes[i] - n * p_chosen) < 5 * np.sqrt(n * p_chosen * (1 - p_chosen)) + 1
        assert result.p_a_lower[i] == pytest.approx(cert.clopper_pearson_lower(result.votes[i], n, 0.999))
        assert result.radius[i] == cert.certified_radius(result.p_a_lower[i], q, length)


# --- the tight bound against brute force --------------------------------------------------------------------------
@pytest.mark.parametrize("q", [0.1, 0.3, 0.55, 0.75, 0.9])
@pytest.mark.parametrize("length", [1, 2, 3, 4, 5, 6])
def test_the_radius_is_exactly_the_largest_distance_certified_by_brute_force(q, length):
    """Worst case over every x' within the distance and every (randomised) base classifier, by enumeration."""
    rng = np.random.default_rng(length)
    x = rng.integers(0, 4, length).astype(np.uint8)
    assert noise_law(x, all_sequences(length), q).sum() == pytest.approx(1.0)
    # p_A = 1 is left to its special-case test: there the last region's likelihood ratio, up to 27^6, magnifies the
    # float residue of the enumeration's running sums.
    p_as = np.concatenate([rng.uniform(0.5, 0.9999, 12), [0.5, 0.45]])
    # Just either side of each distance's threshold, where an off-by-one radius would show.
    thresholds = np.array([cert.threshold(r, q) for r in range(1, length + 1)])
    thresholds = thresholds[thresholds < 0.9999]
    p_as = np.concatenate([p_as, thresholds - 1e-6, thresholds + 1e-6])
    worst = brute_force_worst_case(x, q, p_as)
    radii = []
    for p_a, row in zip(p_as, worst, strict=True):
        for d in range(1, length + 1):
            assert cert.worst_case_probability(p_a, d, q) == pytest.approx(row[d], abs=1e-9)
        if np.any(np.abs(row[1:] - 0.5) < 1e-9):
            continue  # on the boundary the comparison is decided by rounding
        radii.append(int(cert.certified_radius(p_a, q, length)))
        assert radii[-1] == (brute_force_radius(row) if p_a > 0.5 else -1)
    assert -1 in radii and max(radii) >= 1


@pytest.mark.parametrize("q", [0.2, 0.8])
def test_the_knapsack_agrees_with_a_generic_lp_solver(q):
    x = np.array([G, A, T], dtype=np.uint8)
    p_as = np.array([0.55, 0.8, 0.97])
    assert brute_force_worst_case(x, q, p_as, least_probability_lp)[:, 1:] == pytest.approx(
        brute_force_worst_case(x, q, p_as)[:, 1:], abs=1e-8
    )


def test_a_region_classifier_attains_the_bound_at_every_breakpoint():
    """Tightness by a deterministic f: class c_A iff (matches of x) - (matches of x') >= s0 on the differing
    positions. Its probabilities under x and x', by enumeration, lie on the bound's curve."""
    length, q = 4, 0.3
    x = np.array([A, C, G, T], dtype=np.uint8)
    zs = all_sequences(length)
    p_x = noise_law(x, zs, q)
    for r in range(1, length + 1):
        other = x.copy()
        other[:r] = (other[:r] + 1) % 4
        p_o = noise_law(other, zs, q)
        s = (zs[:, :r] == x[:r]).sum(axis=1) - (zs[:, :r] == other[:r]).sum(axis=1)
        for s0 in range(-r, r + 1):
            region = s >= s0
            assert cert.worst_case_probability(p_x[region].sum(), r, q) == pytest.approx(p_o[region].sum(), abs=1e-12)


# --- monotonicity and special cases -------------------------------------------------------------------------------
def test_the_radius_never_falls_as_p_a_rises():
    p = np.linspace(0.3, 0.999999, 4001)
    for q in (0.05, 0.3, 0.6, 0.75, 0.85):
        radius = cert.certified_radius(p, q, 200)
        assert np.all(np.diff(radius) >= 0)
        assert radius[0] == -1 and radius[-1] > 0


def test_the_worst_case_falls_and_the_threshold_rises_with_the_distance():
    """rho_r(p_A) is non-increasing in r, so t_r is non-decreasing: certifying r certifies every smaller distance."""
    for q in (0.05, 0.3, 0.6, 0.74, 0.9):
        thresholds = [cert.threshold(r, q) for r in range(1, 30)]
        assert np.all(np.diff(thresholds) >= -1e-15)
        for p_a in (0.6, 0.9, 0.999):
            rho = [float(cert.worst_case_probability(p_a, r, q)) for r in range(1, 30)]
            assert np.all(np.diff(rho) <= 1e-15)


def test_more_noise_certifies_no_smaller_radius_up_to_three_quarters():
    """At a fixed p_A the radius grows with q up to 3/4 (where the noise forgets x); beyond 3/4 the noise moves
    bases away from x too surely, and it falls again."""
    qs = np.linspace(0.02, 0.75, 74)
    for p_a in (0.6, 0.8, 0.95, 0.99, 0.9999):
        radii = [int(cert.certified_radius(p_a, q, 100)) for q in qs]
        assert np.all(np.diff(radii) >= 0)
    assert int(cert.certified_radius(0.99, 0.95, 100)) < int(cert.certified_radius(0.99, 0.75, 100))


def test_at_q_three_quarters_the_noise_forgets_the_sequence_and_the_whole_length_is_certified():
    for length in (1, 7, 300):
        assert int(cert.certified_radius(0.5000001, 0.75, length)) == length
        assert int(cert.certified_radius(0.5, 0.75, length)) == -1
    assert cert.threshold(5, 0.75) == 0.5


def test_p_a_of_one_certifies_the_whole_length_and_at_most_a_half_abstains():
    for q in (0.01, 0.3, 0.9):
        assert int(cert.certified_radius(1.0, q, 300)) == 300
        assert int(cert.certified_radius(0.5, q, 300)) == -1
        assert int(cert.certified_radius(0.2, q, 300)) == -1


@pytest.mark.parametrize("q", [0.01, 0.1, 0.3, 0.5, 0.6, 0.7])
def test_distance_one_threshold_matches_its_closed_form(q):
    """r = 1 by hand: regions s = +1 (mass 1-q under x, q/3 under x'), 0 (2q/3 both), -1 (q/3, 1-q), filled in
    that order until x' has 1/2."""
    by_hand = 1 - q / 3 + (0.5 - q) * q / (3 * (1 - q)) if q <= 0.5 else 1.5 - 4 * q / 3
    assert cert.threshold(1, q) == pytest.approx(by_hand, abs=1e-12)


def test_region_masses_are_the_multinomial_law_of_the_agreement_difference():
    q, r = 0.37, 6
    a, b = 1 - q, q / 3
    by_formula = np.zeros(2 * r + 1)
    for u in range(r + 1):
        for v in range(r + 1 - u):
            w = r - u - v
            by_formula[u - v + r] += (
                factorial(r) / (factorial(u) * factorial(v) * factorial(w)) * a**u * b**v * (2 * b) ** w
            )
    assert cert.region_masses(r, q) == pytest.approx(by_formula, abs=1e-15)


# --- Clopper-Pearson and the smallest usable N --------------------------------------------------------------------
def test_the_clopper_pearson_lower_bound_solves_its_defining_binomial_tail_equation():
    for k, n, confidence in ((1, 10, 0.95), (37, 50, 0.999), (1000, 1000, 0.999), (520, 1000, 0.99)):
        assert float(cert.clopper_pearson_lower(k, n, confidence)) == pytest.approx(
            cp_lower_by_definition(k, n, confidence), abs=1e-9
        )
    assert float(cert.clopper_pearson_lower(0, 100, 0.999)) == 0.0


@pytest.mark.parametrize("confidence", [0.5, 0.9, 0.95, 0.999, 0.999999, 1 - 2**-10])
def test_minimum_samples_is_the_smallest_n_whose_unanimous_bound_exceeds_a_half(confidence):
    # All n agreeing, the bound is (1 - confidence)^(1/n): walk n up from 1.
    n = 1
    while (1 - confidence) ** (1 / n) <= 0.5:
        n += 1
    assert cert.minimum_samples(confidence) == n


# --- config validation --------------------------------------------------------------------------------------------
def _config(**certify) -> dict:
    return {
        "reference": {"fasta": "a.fa", "vcf": "a.vcf.gz"},
        "robustness": {
            "ga": {"train": "a.csv", "test": "b.csv", "classifiers": {"cnn": {"kind": "cnn"}}, "certify": certify}
        },
    }


@pytest.mark.parametrize("q", [0, 1, -0.2, 1.5])
def test_a_substitution_probability_outside_zero_one_is_refused_in_one_line(q):
    with pytest.raises(InputError) as err:
        validate_config(_config(enabled=True, substitution_probability=q))
    message = str(err.value)
    assert "robustness.ga.certify.substitution_probability" in message and "\n" not in message


@pytest.mark.parametrize("confidence", [0.95, 0.999, 0.999999])
def test_too_few_samples_for_the_confidence_are_refused_in_one_line_naming_the_minimum(confidence):
    need = cert.minimum_samples(confidence)
    with pytest.raises(InputError) as err:
        validate_config(_config(enabled=True, n_samples=need - 1, confidence=confidence))
    message = str(err.value)
    assert "\n" not in message
    assert "robustness.ga.certify.n_samples" in message and f"the minimum is {need}" in message
    validate_config(_config(enabled=True, n_samples=need, confidence=confidence))


def test_the_certify_block_is_off_by_default_and_its_defaults_can_certify():
    config = validate_config(_config())
    block = config["robustness"]["ga"]["certify"]
    assert block["enabled"] is False
    assert block["n_samples"] >= cert.minimum_samples(block["confidence"])
    assert 0 < block["substitution_probability"] < 1


# --- determinism ------------------------------------------------------------------------------------------------
def _gc_count_classifier(codes: np.ndarray) -> np.ndarray:
    gc = ((codes == C) | (codes == G)).mean(axis=1)
    p1 = 1 / (1 + np.exp(-20 * (gc - 0.5)))
    return np.stack([1 - p1, p1], axis=1)


def test_the_same_seed_gives_identical_certificates_whatever_the_batch_size_and_a_new_seed_differs():
    rng = np.random.default_rng(11)
    codes = rng.integers(0, 4, (9, 24)).astype(np.uint8)
    settings = dict(q=0.3, n_select=30, n_samples=300, confidence=0.99, num_classes=2)
    runs = [
        cert.certify(_gc_count_classifier, codes, seed=5, batch_rows=rows, **settings) for rows in (8192, 300, 97, 1)
    ]
    for other in runs[1:]:
        for field in ("prediction", "votes", "p_a_lower", "radius"):
            assert np.array_equal(getattr(runs[0], field), getattr(other, field))
    # A sequence's draws do not depend on the sequences after it.
    head = cert.certify(_gc_count_classifier, codes[:4], seed=5, **settings)
    assert np.array_equal(head.votes, runs[0].votes[:4])
    assert not np.array_equal(cert.certify(_gc_count_classifier, codes, seed=6, **settings).votes, runs[0].votes)


# --- the GA never flips the smoothed classifier within the certified radius ---------------------------------------
HALF = 16


def _front_back_classifier(codes: np.ndarray) -> np.ndarray:
    """A cheap real classifier: class 1 when GC content and A/T in the first half are high together (its score is
    never 0: the offset is half an integer)."""
    gc = (codes == C) | (codes == G)
    score = 3 * gc.sum(axis=1) + (~gc[:, :HALF]).sum(axis=1) - 56.5
    p1 = 1 / (1 + np.exp(-score / 2))
    return np.stack([1 - p1, p1], axis=1)


def _smoothed_exactly(codes: np.ndarray, q: float) -> np.ndarray:
    """P(f(phi(x)) = c) of _front_back_classifier exactly: under the noise a GC base stays GC with probability
    1 - 2q/3 and an A/T base becomes GC with 2q/3, independently, so each half's GC count is a binomial
    convolution and the two halves are independent."""
    gc = (codes == C) | (codes == G)
    out = np.zeros((len(codes), 2))
    keep, gain = 1 - 2 * q / 3, 2 * q / 3
    k = np.arange(HALF + 1)
    for i, row in enumerate(gc):
        front_gc, back_gc = int(row[:HALF].sum()), int(row[HALF:].sum())
        front = np.convolve(
            binom.pmf(k[: front_gc + 1], front_gc, keep), binom.pmf(k[: HALF - front_gc + 1], HALF - front_gc, gain)
        )
        back = np.convolve(
            binom.pmf(k[: back_gc + 1], back_gc, keep), binom.pmf(k[: HALF - back_gc + 1], HALF - back_gc, gain)
        )
        score = 3 * (k[:, None] + k[None, :]) + (HALF - k[:, None]) - 56.5
        p1 = float((front[:, None] * back[None, :])[score > 0].sum())
        out[i] = (1 - p1, p1)
    return out


def test_the_ga_never_flips_the_smoothed_classifier_within_the_certified_radius():
    """60 random 32-bp sequences (GC content drawn per sequence, so margins vary), certified from samples; the GA
    then attacks the smoothed classifier itself, its probabilities computed exactly (no sampling error in the
    check), with the edit budget set to each sequence's radius. Every candidate it scores must keep the certified
    class. Numbers: n_samples 2000 at confidence 1 - 1e-6 lets radii up to 4 be certified at q = 0.4 (the
    unanimous bound is 0.9931), and each certificate is wrong with probability at most 1e-6, so the 60 together
    fail at any seed with probability below 1e-4. With a budget of 12 the same GA flips many of them (this
    GC-count classifier is far more robust than the worst case the certificate allows for), so the search has
    the power to find a flip where one exists."""
    rng = np.random.default_rng(2024)
    q, n_seq, length = 0.4, 60, 2 * HALF
    gc_share = rng.uniform(0.15, 0.85, n_seq)
    gc_base = np.where(rng.random((n_seq, length)) < 0.5, C, G)
    at_base = np.where(rng.random((n_seq, length)) < 0.5, A, T)
    codes = np.where(rng.random((n_seq, length)) < gc_share[:, None], gc_base, at_base).astype(np.uint8)
    result = cert.certify(
        _front_back_classifier,
        codes,
        q=q,
        n_select=100,
        n_samples=2000,
        confidence=1 - 1e-6,
        seed=0,
        num_classes=2,
    )
    radii = result.radius
    assert (radii >= 1).sum() >= 20 and len(set(radii[radii >= 1])) >= 2

    def smoothed(z: np.ndarray) -> np.ndarray:
        return _smoothed_exactly(z, q)

    params = GAParams(population=24, generations=25, patience=6, delta=1e-9)
    flipped_beyond = 0
    for radius in sorted(set(radii[radii >= 1])):
        rows = np.flatnonzero(radii == radius)
        originals, labels = codes[rows], result.prediction[rows]
        p_before = smoothed(originals)[np.arange(len(rows)), labels]
        seen: list[np.ndarray] = []

        def recording(z: np.ndarray, seen: list[np.ndarray] = seen) -> np.ndarray:
            seen.append(z.copy())
            return smoothed(z)

        for budget, record in ((int(radius), True), (12, False)):
            constraints = Constraints(max_edits=budget, gc_tolerance=1.0, protected_motifs=(), transition_weight=1.0)
            attack = genetic_attack(
                recording if record else smoothed,
                originals,
                labels,
                p_true_before=p_before,
                protected=np.zeros_like(originals, dtype=bool),
                constraints=constraints,
                params=params,
                rng=np.random.default_rng(int(radius)),
            )
            if record:
                assert not attack.success.any()
            else:
                flipped_beyond += int(attack.success.sum())
        # Every candidate scored within the radius, for every sequence of this radius, keeps the certified class.
        for batch in seen:
            distance = (batch[:, None, :] != originals[None, :, :]).sum(axis=-1).min(axis=1)
            assert np.all(distance <= radius)
        for s, original in enumerate(originals):
            for batch in seen:
                mine = batch[(batch != original).sum(axis=1) <= radius]
                if len(mine):
                    assert np.all(smoothed(mine).argmax(axis=1) == labels[s])
    assert flipped_beyond >= (radii >= 1).sum() // 2


# --- the rule's stage on a real classifier ------------------------------------------------------------------------
def _subset_csv(src: Path, dst: Path, rows: range) -> Path:
    with open(src, newline="") as fh:
        table = list(csv.DictReader(fh))
    with open(dst, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["sequence", "label"])
        writer.writeheader()
        writer.writerows(table[i] for i in rows)
    return dst


def test_the_certify_stage_certifies_the_gas_sample_and_tabulates_both_accuracies(tmp_path):
    gue = DEMO / "gue_prom_300_all"
    train_csv = _subset_csv(gue / "dev.csv", tmp_path / "train.csv", range(2000))
    test_csv = _subset_csv(gue / "test.csv", tmp_path / "test.csv", range(100, 160))
    spec = {"kind": "cnn", "num_labels": 2, "channels": 16, "kernel": 9, "batch_size": 512, "seed": 0}
    spec["training"] = {"epochs": 4, "learning_rate": 1e-3, "batch_size": 64, "weight_decay": 0.01}
    train_classifier_stage(
        "cnn",
        spec,
        train_csv=str(train_csv),
        test_csv=str(test_csv),
        non_acgt="skip",
        base_folder=None,
        out_dir=tmp_path / "clf",
    )
    attack = {
        "n_sequences": 16,
        "max_edits": 3,
        "gc_tolerance": 0.05,
        "protected_motifs": ["TATAAA"],
        "coding": False,
        "frame": 0,
        "transition_weight": 2.0,
        "delta": 0.2,
        "population": 10,
        "generations": 6,
        "crossover": 0.9,
        "mutation": 0.3,
        "tournament": 3,
        "elitism": 2,
        "patience": 4,
        "seed": 3,
    }
    ga_attack_stage(
        "cnn",
        spec,
        folder=str(tmp_path / "clf"),
        test_csv=str(test_csv),
        non_acgt="skip",
        attack=attack,
        adversarial_tsv=tmp_path / "adversarial.tsv",
        summary_tsv=tmp_path / "summary.tsv",
    )
    block = {
        "enabled": True,
        "substitution_probability": 0.2,
        "n_select": 20,
        "n_samples": 200,
        "confidence": 0.99,
        "seed": 0,
    }
    cert.certify_stage(
        "cnn",
        spec,
        folder=str(tmp_path / "clf"),
        test_csv=str(test_csv),
        non_acgt="skip",
        attack=attack,
        certify_block=block,
        certified_tsv=str(tmp_path / "certified.tsv"),
        accuracy_tsv=str(tmp_path / "accuracy.tsv"),
    )
    certified = pd.read_csv(tmp_path / "certified.tsv", sep="\t")
    accuracy = pd.read_csv(tmp_path / "accuracy.tsv", sep="\t")
    adversarial = pd.read_csv(tmp_path / "adversarial.tsv", sep="\t")
    assert list(certified.columns) == cert.CERTIFIED_COLUMNS
    assert list(accuracy.columns) == cert.ACCURACY_COLUMNS

    # The GA's own sample, every row of it, in its order.
    test = read_labelled_csv(test_csv)
    sample = test.subset(sample_rows(len(test), attack["n_sequences"], attack["seed"]))
    assert list(certified.seq_id) == sample.ids
    assert set(adversarial.seq_id) <= set(certified.seq_id)
    assert np.array_equal(certified.abstain, certified.radius < 0)
    assert np.allclose(certified.p_a_lower, cert.clopper_pearson_lower(certified.votes, 200, 0.99))

    # Certified accuracy by hand from the per-sequence table; budget 0 of the empirical column is the base
    # classifier's clean accuracy on the sample.
    n = len(sample)
    correct = (certified.prediction == certified.label) & ~certified.abstain
    clf = load_classifier("cnn", tmp_path / "clf", spec)
    clean = (clf.predict_proba(encode(sample.sequences)).argmax(axis=1) == sample.labels).mean()
    # The empirical column is the standard robust accuracy of the same sample, measured independently here.
    strict = robust_by_budget(
        clf, sample, constraints=Constraints(**_constraint_keys(attack)), params=_ga(attack), seed=3
    )
    assert list(accuracy.budget) == list(range(attack["max_edits"] + 1))
    for row in accuracy.itertuples():
        assert row.n_sequences == n
        assert row.certified_accuracy == pytest.approx((correct & (certified.radius >= row.budget)).sum() / n)
        assert row.certified_ci_low <= row.certified_accuracy <= row.certified_ci_high
        assert row.robust_ci_low <= row.robust_accuracy <= row.robust_ci_high
        if row.budget:
            assert row.robust_accuracy == pytest.approx(strict.robust[row.budget - 1] / n)
            # Never above what the GA's success rule (adversarial.tsv) reports: every GA-rule success is also a
            # misclassification within the same edits.
            ga_rule = (~(adversarial.success & (adversarial.edits <= row.budget))).sum() / n
            assert row.robust_accuracy <= ga_rule
    assert accuracy.robust_accuracy.iloc[0] == pytest.approx(clean)
    assert np.all(np.diff(accuracy.certified_accuracy) <= 0) and np.all(np.diff(accuracy.robust_accuracy) <= 0)


def _constraint_keys(attack: dict) -> dict:
    keys = ("max_edits", "gc_tolerance", "coding", "frame", "transition_weight")
    return {**{k: attack[k] for k in keys}, "protected_motifs": tuple(attack["protected_motifs"])}


def _ga(attack: dict) -> GAParams:
    return GAParams(**{k: attack[k] for k in GAParams.__dataclass_fields__})


def _any_a_any_g_cnn(folder: Path) -> None:
    """A CNN of the workflow's own architecture (16 bp, 2 channels, kernel 1) with hand-set weights, saved the way
    rule train_classifier saves one: conv 1 marks A (channel 0) and G (channel 1) at each position, conv 2 passes
    them on, the two max-pools make them "any A" and "any G", and the dense layer gives
    logit(1) - logit(0) = -0.2 + 0.4 * anyA - 10 * anyG."""
    import torch
    from gfm_audit.robustness.ga.classifiers import CNNClassifier, save_classifier

    clf = CNNClassifier("toy", 16, channels=2, kernel=1, seed=0)
    conv1, conv2, dense = clf.model[0], clf.model[3], clf.model[8]
    with torch.no_grad():
        for layer in (conv1, conv2, dense):
            layer.weight.zero_()
            layer.bias.zero_()
        conv1.weight[0, A, 0] = conv1.weight[1, G, 0] = 1.0
        conv2.weight[0, 0, 0] = conv2.weight[1, 1, 0] = 1.0
        dense.weight[1] = torch.tensor([0.4, -10.0])
        dense.bias[1] = -0.2
    save_classifier(clf, [], folder)


def test_a_flip_with_a_small_probability_drop_is_not_robust_in_the_certified_accuracy_table(tmp_path):
    # Hand-derived. "A" + 15 "T" (label 1): margin +0.2, p_true 0.550; the only edits the GC window (0.05 < 1/16)
    # allows are A <-> T, and A -> T gives margin -0.2, p_true 0.450: a flip with a drop of 0.0997, below the GA's
    # delta 0.2, and no edit can drop it further (no G can be added). 16 "G" (label 0): margin -10.2; only G <-> C
    # is allowed and any G left keeps it class 0, so it is robust up to 15 edits. 16 "T" (label 1): margin -0.2,
    # wrong as given. So robust accuracy is 2/3 at budget 0 and 1/3 at every budget >= 1; the GA's success rule
    # (adversarial.tsv) never flips the first and would read 2/3.
    folder = tmp_path / "clf"
    _any_a_any_g_cnn(folder)
    test_csv = tmp_path / "test.csv"
    test_csv.write_text("sequence,label\n" + "A" + "T" * 15 + ",1\n" + "G" * 16 + ",0\n" + "T" * 16 + ",1\n")
    attack = {
        "n_sequences": 3,
        "max_edits": 3,
        "gc_tolerance": 0.05,
        "protected_motifs": [],
        "coding": False,
        "frame": 0,
        "transition_weight": 1.0,
        "delta": 0.2,
        "population": 20,
        "generations": 20,
        "crossover": 0.9,
        "mutation": 0.3,
        "tournament": 3,
        "elitism": 2,
        "patience": 20,
        "seed": 0,
    }
    spec = {"kind": "cnn"}
    common = dict(folder=str(folder), test_csv=str(test_csv), non_acgt="skip", attack=attack)
    ga_attack_stage(
        "toy", spec, **common, adversarial_tsv=tmp_path / "adversarial.tsv", summary_tsv=tmp_path / "summary.tsv"
    )
    adversarial = pd.read_csv(tmp_path / "adversarial.tsv", sep="\t")
    assert not adversarial.success.any()  # the GA's rule: nothing flipped, the premise of the test
    block = {"enabled": True, "substitution_probability": 0.2, "n_select": 10, "n_samples": 100, "confidence": 0.99}
    cert.certify_stage(
        "toy",
        spec,
        **common,
        certify_block={**block, "seed": 0},
        certified_tsv=str(tmp_path / "certified.tsv"),
        accuracy_tsv=str(tmp_path / "accuracy.tsv"),
    )
    accuracy = pd.read_csv(tmp_path / "accuracy.tsv", sep="\t")
    assert accuracy.robust_accuracy.tolist() == pytest.approx([2 / 3, 1 / 3, 1 / 3, 1 / 3])
    # Wilson 95% interval of 1 of 3, by hand: centre (1/3 + z^2/6) / (1 + z^2/3), half-width
    # z sqrt(2/27 + z^2/36) / (1 + z^2/3) with z = 1.959964: 0.0615 and 0.7923 (4 decimals: rounding of the hand
    # computation).
    assert accuracy.robust_ci_low.iloc[1] == pytest.approx(0.0615, abs=1e-4)
    assert accuracy.robust_ci_high.iloc[1] == pytest.approx(0.7923, abs=1e-4)


# --- the rules ----------------------------------------------------------------------------------------------------
@pytest.mark.workflow
def test_the_default_target_plans_the_certify_rules_only_when_certify_is_enabled(tmp_path):
    gue = DEMO / "gue_prom_300_all"
    ga = {"train": str(gue / "dev.csv"), "test": str(gue / "test.csv"), "classifiers": {"cnn": {"kind": "cnn"}}}
    config = {"reference": {"fasta": str(DEMO / "z.fa"), "vcf": str(DEMO / "z.vcf.gz")}, "robustness": {"ga": ga}}
    plans = {}
    for enabled in (False, True):
        ga["certify"] = {"enabled": enabled, "n_samples": 500}
        path = tmp_path / f"config-{enabled}.yaml"
        path.write_text(yaml.safe_dump(config))
        cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path), "--cores", "1"]
        result = subprocess.run([*cmd, "--configfile", str(path), "--dry-run"], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-3000:]
        plans[enabled] = result.stdout
    assert "rule certify_ga:" not in plans[False] and "rule plot_certified:" not in plans[False]
    assert "rule certify_ga:" in plans[True] and "rule plot_certified:" in plans[True]
    for name in ("certified.tsv", "certified_accuracy.tsv", "certified_accuracy.png"):
        assert f"results/robustness/ga/cnn/{name}" in plans[True]
    # The certificates measure their own empirical robust accuracy on the GA's sample; the GA's own outputs are
    # unchanged by enabling them.
    assert plans[True].count("rule ga_attack:") == plans[False].count("rule ga_attack:") == 1


@pytest.mark.workflow
def test_the_certify_rules_write_the_documented_tables_and_the_figure(tmp_path):
    gue = DEMO / "gue_prom_300_all"
    train = _subset_csv(gue / "dev.csv", tmp_path / "train.csv", range(800))
    test = _subset_csv(gue / "test.csv", tmp_path / "test.csv", range(60))
    ga = {
        "train": str(train),
        "test": str(test),
        "classifiers": {"cnn": {"kind": "cnn", "channels": 16, "training": {"epochs": 2}}},
        "attack": {"n_sequences": 12, "population": 10, "generations": 5},
        "certify": {"enabled": True, "n_select": 10, "n_samples": 100, "confidence": 0.99},
    }
    config = {"reference": {"fasta": str(DEMO / "z.fa"), "vcf": str(DEMO / "z.vcf.gz")}, "robustness": {"ga": ga}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "results/robustness/ga/cnn"
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path), "--cores", "2"]
    result = subprocess.run(
        [*cmd, "results/robustness/ga/cnn/certified_accuracy.png", "--configfile", str(path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    certified = pd.read_csv(out / "certified.tsv", sep="\t")
    accuracy = pd.read_csv(out / "certified_accuracy.tsv", sep="\t")
    assert list(certified.columns) == cert.CERTIFIED_COLUMNS and len(certified) == 12
    assert list(accuracy.columns) == cert.ACCURACY_COLUMNS and list(accuracy.budget) == list(range(6))
    assert (out / "certified_accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    log = (tmp_path / "results/logs/robustness/cnn.certify_ga.log").read_text()
    assert "certifying 12 sequences of 300 bp" in log
    assert (tmp_path / "results/benchmarks/certify_ga/cnn.tsv").is_file()
