"""The one-run Gaussian-DP bound (Mahloujifar, Melis & Chaudhuri 2024) against the authors' public implementation,
closed forms for two canaries, exact binomial tails of a Gaussian mechanism, a seeded simulation of its audit, and
the (eps, delta) bound of Steinke, Nasr & Jagielski; gdp_to_epsilon against Opacus and a numerical integral."""

import math

import numpy as np
import pytest
from gfm_audit.privacy.one_run_bound import one_run_epsilon
from gfm_audit.privacy.one_run_fdp import (
    gaussian_one_run_ceiling,
    gaussian_one_run_epsilon,
    gaussian_one_run_mu,
    gaussian_one_run_p_value,
    gaussian_one_run_rejects,
    gdp_delta,
    gdp_to_epsilon,
)
from scipy.integrate import quad
from scipy.optimize import brentq
from scipy.stats import binom, norm

# (mu, delta) -> eps from Opacus 1.6.0 (a dependency of this project): opacus.accountants.analysis.gdp.eps_from_mu,
# and the PRV accountant (PRVAccountant with history [(1 / mu, 1.0, 1)]: one Gaussian release of sensitivity 1 and
# noise multiplier sigma = 1 / mu, no subsampling; eps_error 1e-4, delta_error 1e-4 delta), which reaches it
# numerically from the privacy loss distribution instead of the closed form.
OPACUS = [
    ((0.5, 1e-5), 1.9930914044151204, 1.993203393439423),
    ((1.0, 1e-5), 4.377178095681225, 4.377301441114033),
    ((2.0, 1e-5), 9.997256146434303, 9.997401903974858),
    ((4.0, 1e-5), 24.381610883113723, 24.381801187389502),
    ((1.0, 1e-3), 3.138670548582931, 3.138802179866613),
    ((1.0, 0.1), 1.1603338527915705, 1.1604985716397478),
]


@pytest.mark.parametrize(("args", "closed_form", "prv"), OPACUS)
def test_gdp_epsilon_equals_opacus_closed_form_and_prv_accountant(args, closed_form, prv):
    mu, delta = args
    eps = gdp_to_epsilon(mu, delta)
    assert eps == pytest.approx(closed_form, abs=1e-8)
    assert eps == pytest.approx(prv, abs=5e-4)  # the PRV accountant's eps_error, with room for its delta_error


@pytest.mark.parametrize(("mu", "delta"), [(0.3, 1e-5), (1.0, 1e-6), (2.5, 1e-3)])
def test_gdp_epsilon_solves_the_hockey_stick_divergence_of_two_unit_gaussians(mu, delta):
    # delta(eps) = int max(0, p(x) - e^eps q(x)) dx, p = N(mu, 1), q = N(0, 1): the density ratio exceeds e^eps above
    # x0 = eps / mu + mu / 2, so the integral runs from x0 (Balle & Wang 2018, analytic Gaussian mechanism)
    eps = gdp_to_epsilon(mu, delta)
    x0 = eps / mu + mu / 2
    integral, _ = quad(lambda x: norm.pdf(x, mu) - math.exp(eps) * norm.pdf(x), x0, np.inf, epsabs=1e-14)
    assert integral == pytest.approx(delta, rel=1e-6)


def test_gdp_epsilon_by_hand():
    # mu = 1, eps = 1: Phi(-0.5) - e Phi(-1.5) = 0.3085375 - 2.7182818 * 0.0668072 = 0.3085375 - 0.1816008 = 0.1269367
    assert gdp_delta(1.0, 1.0) == pytest.approx(0.1269367375, abs=1e-10)
    assert gdp_to_epsilon(1.0, 0.1269367375) == pytest.approx(1.0, abs=1e-8)
    # eps = 0: delta = Phi(1/2) - Phi(-1/2) = 0.3829249; any delta at or above it needs no eps
    assert gdp_to_epsilon(1.0, 0.3829250) == 0.0
    assert gdp_to_epsilon(1.0, 0.3829248) > 0.0
    assert gdp_to_epsilon(0.0, 1e-5) == 0.0
    assert gdp_to_epsilon(1.0, 0.0) == math.inf


# (m, r, v, level) -> largest rejected mu, and the eps at delta = 1e-6 reported by FDPAnalysisNode.run_analysis, from
# github.com/facebookresearch/PrivacyGuard, privacy_guard/analysis/mia/fdp_analysis_node.py (commit b20d63f, the
# authors' group at Meta): the mu is where its audit_rh_with_cap (noise = 1 / mu, threshold = 1 - level) turns from
# rejecting to passing, found by bisection to 1e-11; run_analysis searches noise on the grid 0.001 + 0.01 i instead.
AUTHORS = [
    ((1000, 100, 100, 0.95), 1.2255334524306818, 6.12640380859375),
    ((1000, 100, 90, 0.95), 0.6025036074356078, 2.76641845703125),
    ((1000, 1000, 1000, 0.95), 2.368073900397576, 13.17901611328125),
    ((1000, 200, 150, 0.95), 0.3394663115038623, 1.474761962890625),
    ((10000, 1000, 800, 0.95), 0.43619514427757167, 1.93328857421875),
    ((1000, 100, 60, 0.95), 0.015266719777248663, None),  # below the grid's smallest mu, 1 / 9.991
    ((100, 50, 45, 0.95), 0.6751465897835782, 3.118896484375),
    ((1000, 100, 55, 0.95), 0.0, None),
    ((1000, 500, 400, 0.99), 0.4294680701137872, 1.906585693359375),
    ((50, 50, 50, 0.95), 1.4601135727352812, 7.485198974609375),
]


@pytest.mark.parametrize(("args", "mu", "grid_eps"), AUTHORS)
def test_bound_equals_the_authors_implementation(args, mu, grid_eps):
    m, r, v, level = args
    bound = gaussian_one_run_mu(m, r, v, level=level)
    assert bound == pytest.approx(mu, abs=1e-9)
    if grid_eps is not None:
        # their eps belongs to the first grid noise at or above 1 / mu, and is bisected to 1e-3 from above
        sigma = 0.001 + 0.01 * math.ceil((1 / bound - 0.001) / 0.01)
        assert grid_eps == pytest.approx(gdp_to_epsilon(1 / sigma, 1e-6), abs=1e-3)
        assert grid_eps <= gaussian_one_run_epsilon(m, r, v, delta=1e-6, level=level) + 1e-3


def test_two_canaries_both_right_follow_the_recursion_worked_by_hand():
    # m = r = v = 2: r_2 = tau, h_2 = 0; h_1 = g(tau), r_1 = tau + g(tau); h_0 = g(tau + g(tau)), r_0 = r_1, so the
    # p-value solves tau + g(tau) + g(tau + g(tau)) = 1. At mu = 0, g(x) = x: 4 tau = 1, P[Bin(2, 1/2) = 2] exactly.
    assert gaussian_one_run_p_value(2, 2, 2, mu=0.0) == pytest.approx(0.25, abs=1e-11)
    mu = 1.0

    def g(x):
        return norm.cdf(norm.ppf(x) - mu)

    tau = brentq(lambda t: t + g(t) + g(t + g(t)) - 1, 1e-9, 0.6, xtol=1e-14)
    assert gaussian_one_run_p_value(2, 2, 2, mu=mu) == pytest.approx(tau, abs=1e-11)
    assert tau >= norm.cdf(mu / 2) ** 2  # two independent mu-GDP guesses, each right with probability Phi(mu / 2)
    assert gaussian_one_run_mu(2, 2, 2) == 0.0  # a p-value below 0.05 needs g(x) > x: impossible


@pytest.mark.parametrize(("m", "r"), [(10, 10), (40, 20), (100, 100)])
@pytest.mark.parametrize("mu", [0.0, 0.5, 1.0, 2.0])
def test_p_value_covers_the_exact_tail_of_independent_gaussian_guesses(m, r, mu):
    # A mu-GDP mechanism: each canary's score is N(mu, 1) if in, N(0, 1) if out; the auditor guesses r fixed canaries
    # by the sign of score - mu / 2, each right with probability Phi(mu / 2) independently: W ~ Bin(r, Phi(mu / 2)).
    for v in range(1, r + 1):
        assert gaussian_one_run_p_value(m, r, v, mu=mu) >= binom.sf(v - 1, r, norm.cdf(mu / 2)) - 1e-12
    if mu == 0.0:  # all right at chance: the bound is exact, 2^-r
        assert gaussian_one_run_p_value(m, r, r, mu=0.0) == pytest.approx(0.5**r, rel=1e-9, abs=1e-12)


def test_bound_grows_with_correct_guesses_and_never_passes_the_all_correct_value():
    m, r = 100, 60
    bounds = [gaussian_one_run_mu(m, r, v) for v in range(r + 1)]
    assert all(b2 >= b1 for b1, b2 in zip(bounds[:-1], bounds[1:], strict=True))
    assert bounds[-1] > bounds[45] > 0
    ceiling, best_r = gaussian_one_run_ceiling(m)
    assert bounds[-1] <= ceiling
    assert ceiling == gaussian_one_run_mu(m, best_r, best_r)
    assert all(gaussian_one_run_mu(m, k, v) <= ceiling for k in (10, 50, 100) for v in range(0, k + 1, 5))


def test_guesses_at_chance_give_zero():
    assert gaussian_one_run_mu(1000, 1000, 500) == 0.0
    assert gaussian_one_run_mu(1000, 1000, 510) == 0.0  # P[Bin(1000, 1/2) >= 510] = 0.27
    assert gaussian_one_run_mu(1000, 0, 0) == 0.0  # every canary abstained
    assert gaussian_one_run_epsilon(1000, 100, 50, delta=1e-5) == 0.0


def test_higher_confidence_never_raises_the_bound():
    assert gaussian_one_run_mu(1000, 100, 90, level=0.99) < gaussian_one_run_mu(1000, 100, 90, level=0.95)


@pytest.mark.parametrize(("m", "k", "mu"), [(200, 100, 0.0), (200, 20, 1.0), (1000, 250, 1.0)])
def test_simulated_gaussian_mechanism_exceeds_its_true_mu_at_most_at_the_stated_rate(m, k, mu):
    # Each trial: canaries in with probability 1/2, scores N(mu, 1) if in and N(0, 1) if out (mu-GDP in each canary),
    # the top k guessed in, the bottom k out. The bound exceeds mu only if the recursion rejects mu; that rejection
    # only grows with v, so one threshold v* counts it for every trial. A sound bound exceeds mu in at most 5% of runs
    # in expectation; the count is checked against the 99.9% quantile of Bin(trials, 0.05), which a sound bound passes
    # with probability at least 0.999. At mu = 0 the guesses are coin flips and the rate is near 5% (the bound is
    # nearly exact there: the test's sharpest point); at mu > 0 the bound is conservative for independent canaries.
    trials, level = 4000, 0.95
    r = 2 * k
    rejected = [gaussian_one_run_rejects(m, r, v, mu=mu, tau=1 - level) for v in range(r + 1)]
    v_star = rejected.index(True)
    assert all(rejected[v_star:])
    rng = np.random.default_rng(20241029)
    included = rng.random((trials, m)) < 0.5
    scores = rng.standard_normal((trials, m)) + mu * included
    ranked = np.take_along_axis(included, np.argsort(-scores, axis=1), axis=1)
    correct = ranked[:, :k].sum(axis=1) + (~ranked[:, m - k :]).sum(axis=1)
    exceed = int((correct >= v_star).sum())
    assert exceed <= binom.ppf(0.999, trials, 1 - level)
    if mu == 0.0:
        assert exceed >= binom.ppf(0.001, trials, binom.sf(v_star - 1, r, 0.5))  # the count the simulation must give
    for v in np.unique(correct)[-5:]:  # the threshold stands for the bound itself
        assert (gaussian_one_run_mu(m, r, int(v), level=level) > mu) == (v >= v_star)


@pytest.mark.parametrize("r", [10, 50, 100, 500, 1000])
def test_f_dp_bound_is_tighter_than_the_eps_delta_bound_when_every_guess_is_right(r):
    # The paper's idealised comparison (every guess right) shows the f-DP audit above Steinke et al.'s at each r
    assert gaussian_one_run_epsilon(1000, r, r, delta=1e-5) > one_run_epsilon(1000, r, r, delta=1e-5)


@pytest.mark.parametrize(("mu", "k"), [(1.0, 25), (1.0, 100), (2.0, 250)])
def test_f_dp_bound_is_tighter_on_guesses_from_a_gaussian_mechanism(mu, k):
    m = 1000
    rng = np.random.default_rng(7)
    included = rng.random(m) < 0.5
    ranked = included[np.argsort(-(rng.standard_normal(m) + mu * included))]
    v = int(ranked[:k].sum() + (~ranked[m - k :]).sum())
    assert gaussian_one_run_epsilon(m, 2 * k, v, delta=1e-5) > one_run_epsilon(m, 2 * k, v, delta=1e-5) > 0


def test_near_chance_the_eps_delta_bound_can_be_the_larger():
    # Not a claim of the paper: with 60 of 100 right the Gaussian curve is rejected only up to a mu whose eps at 1e-5
    # (0.044) lies below the eps that the (eps, delta) audit rules out (0.050)
    assert gaussian_one_run_epsilon(1000, 100, 60, delta=1e-5) < one_run_epsilon(1000, 100, 60, delta=1e-5)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: gaussian_one_run_mu(10, 5, 6), "correct"),
        (lambda: gaussian_one_run_mu(10, 11, 6), "canaries"),
        (lambda: gaussian_one_run_mu(10, 5, 3, level=1.0), "level"),
        (lambda: gdp_to_epsilon(-1.0, 1e-5), "mu"),
        (lambda: gdp_to_epsilon(1.0, 1.5), "delta"),
    ],
)
def test_impossible_arguments_are_refused_with_the_argument_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
