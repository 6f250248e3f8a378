"""The one-run epsilon lower bound (Steinke, Nasr & Jagielski 2023) against hand computation, the exact binomial
bound it reduces to at delta = 0, and numbers from a public implementation of the paper's procedure."""

import math

import numpy as np
import pytest
from gfm_audit.privacy.one_run_bound import (
    guesses_from_scores,
    one_run_ceiling,
    one_run_epsilon,
    one_run_p_value,
    randomised_response_accuracy,
)
from scipy.stats import beta


def test_all_correct_guesses_without_delta_give_the_closed_form_bound():
    # r = v: p-value = q^r, so the bound solves q^r = 0.05: q = 0.05^(1/20) = 0.860891, eps = ln(q / (1 - q))
    q = 0.05 ** (1 / 20)
    assert q == pytest.approx(0.860891, abs=1e-6)
    assert one_run_epsilon(100, 20, 20, delta=0.0, level=0.95) == pytest.approx(math.log(q / (1 - q)), abs=1e-8)
    assert math.log(q / (1 - q)) == pytest.approx(1.822716, abs=1e-6)
    # m = r = v = 10: q = 0.05^(1/10) = 0.741134, eps = ln(0.741134 / 0.258866) = 1.051873
    assert one_run_epsilon(10, 10, 10, delta=0.0) == pytest.approx(1.051873, abs=1e-6)


def test_p_value_with_delta_matches_the_formula_worked_by_hand():
    # m = r = v = 2, eps = 1, delta = 0.01; q = e / (1 + e) = 0.7310586
    q = math.e / (1 + math.e)
    assert randomised_response_accuracy(1.0) == pytest.approx(q)
    tail = q**2  # P[Bin(2, q) >= 2] = 0.5344466
    p1 = 2 * q * (1 - q)  # P[Bin = 1] = 0.3932239
    p0 = (1 - q) ** 2  # P[Bin = 0] = 0.0723295
    slack = max(p1 / 1, (p1 + p0) / 2)  # i = 1: 0.3932239; i = 2: 0.2327767
    expected = tail + 2 * 2 * 0.01 * slack  # 0.5344466 + 0.0157290 = 0.5501756
    assert expected == pytest.approx(0.5501756, abs=1e-7)
    assert one_run_p_value(2, 2, 2, eps=1.0, delta=0.01) == pytest.approx(expected, rel=1e-12)


def test_without_delta_the_bound_is_the_logit_of_the_one_sided_clopper_pearson_limit():
    # delta = 0: P[Bin(r, q) >= v] = 0.05 at q = Beta^{-1}(0.05; v, r - v + 1)
    for r, v in [(50, 40), (200, 130), (1000, 560)]:
        q = beta.ppf(0.05, v, r - v + 1)
        assert one_run_epsilon(1000, r, v, delta=0.0) == pytest.approx(math.log(q / (1 - q)), abs=1e-8)


# (m, r, v, delta) -> eps at 95% confidence and p-value at eps = 1, from the p_value_DP_audit / get_eps_audit
# functions of github.com/zj-jayzhang/one_round_auditing (src/dp_audit.py, commit 91fd340), which reproduce the
# procedure published with the paper; their bisection stops after 30 halvings, hence the 1e-8 tolerance.
REFERENCE = [
    ((1000, 100, 90, 1e-5), 1.626143479719758, 0.0008412885614385305),
    ((1000, 100, 100, 1e-5), 3.4653763473033905, 0.0005633089840961709),
    ((1000, 1000, 1000, 1e-5), 5.782283132895827, 6.588622306865122e-05),
    ((1000, 200, 150, 1e-5), 0.819972911849618, 0.3044225124350048),
    ((10000, 1000, 800, 1e-5), 1.2507917806506157, 0.0020859885157612636),
    ((1000, 100, 60, 1e-5), 0.04954866040498018, 0.9984587634832446),
    ((1000, 100, 55, 1e-5), 0.0, 0.9999677024364989),
]


@pytest.mark.parametrize(("args", "eps", "p_at_1"), REFERENCE)
def test_bound_and_p_value_equal_a_public_implementation(args, eps, p_at_1):
    m, r, v, delta = args
    assert one_run_epsilon(m, r, v, delta=delta, level=0.95) == pytest.approx(eps, abs=1e-8)
    assert one_run_p_value(m, r, v, eps=1.0, delta=delta) == pytest.approx(p_at_1, rel=1e-12)


def test_bound_grows_with_correct_guesses_and_never_passes_the_all_correct_value():
    m, r = 100, 60
    bounds = [one_run_epsilon(m, r, v, delta=1e-5) for v in range(r + 1)]
    assert all(b2 >= b1 for b1, b2 in zip(bounds[:-1], bounds[1:], strict=True))
    ceiling = one_run_ceiling(m, delta=1e-5)
    assert bounds[-1] <= ceiling
    assert ceiling == pytest.approx(one_run_epsilon(m, m, m, delta=1e-5))  # all m guessed and right


def test_guesses_at_chance_give_zero():
    assert one_run_epsilon(1000, 1000, 500, delta=1e-5) == 0.0
    assert one_run_epsilon(1000, 1000, 510, delta=1e-5) == 0.0  # P[Bin(1000, 1/2) >= 510] = 0.27
    assert one_run_epsilon(1000, 0, 0, delta=1e-5) == 0.0  # every canary abstained


def test_larger_delta_or_higher_confidence_never_raises_the_bound():
    base = one_run_epsilon(1000, 100, 90, delta=1e-5, level=0.95)
    assert one_run_epsilon(1000, 100, 90, delta=1e-3, level=0.95) < base
    assert one_run_epsilon(1000, 100, 90, delta=1e-5, level=0.99) < base


def test_guesses_count_the_top_as_in_and_the_bottom_as_out():
    scores = np.array([0.9, 0.1, 0.8, 0.2, 0.5, 0.7])
    included = np.array([True, False, False, False, True, True])
    # in: 0.9 (yes), 0.8 (no); out: 0.1 (yes), 0.2 (yes)
    assert guesses_from_scores(scores, included, k_in=2, k_out=2) == (4, 3)
    assert guesses_from_scores(scores, included, k_in=3, k_out=0) == (3, 2)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: one_run_epsilon(10, 5, 6, delta=0.0), "correct"),
        (lambda: one_run_epsilon(10, 11, 6, delta=0.0), "canaries"),
        (lambda: one_run_epsilon(10, 5, 3, delta=1.5), "delta"),
        (lambda: one_run_epsilon(10, 5, 3, delta=0.0, level=1.0), "level"),
        (lambda: guesses_from_scores(np.zeros(3), np.zeros(3, bool), k_in=2, k_out=2), "k_in"),
    ],
)
def test_impossible_counts_are_refused_with_the_argument_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
