"""Gaussian-DP lower bound from one training run (Mahloujifar, Melis & Chaudhuri, "Auditing f-Differential Privacy
in One Run", arXiv 2410.22235, ICML 2025), specialised to f = G_mu, the trade-off function of mu-GDP.

The game is the one of one_run_bound.py: m canaries, each in the training set independently with probability 1/2;
the auditor guesses "in"/"out" for r of them (k' in the paper) and abstains on the rest; v (the paper's c) of the r
guesses are correct. The paper bounds P[W >= v] for an f-DP algorithm by a recursion run from i = v down to 0
(their algorithm for guessing games with abstention, published as ``audit_rh_with_cap``; alphabet size 2):

    r_v = tau v / m,  h_v = tau (r - v) / m,
    h_i = max(h_{i+1}, g(r_{i+1})),  r_i = r_{i+1} + i / (r - i) (h_i - h_{i+1}),
    g(x) = Phi(Phi^{-1}(x) - mu)  (the inverse of the blow-up 1 - G_mu(x) = Phi(Phi^{-1}(x) + mu)),

and: if r_0 + h_0 > r / m, then P[W >= v] <= tau. (The argument: were P[W >= v] >= tau, r_i and h_i would track
the least probabilities that a random canary is guessed right, resp. wrong, while at least i guesses are right; each
step uses the mu-GDP of that canary's inclusion, whose flip turns a right guess wrong. At i = 0 the two cannot add up
to more than r / m, the probability that a random canary is guessed at all.)
The bound is the largest mu that this rejects with tau = 1 - level. Rejection only grows as mu falls (G_mu rises, so
g rises), so the rejected mu form an interval [0, bound]. The eps at delta of mu-GDP follows Dong, Roth & Su
("Gaussian Differential Privacy", JRSS-B 2022, Corollary 2.13):

    delta(eps) = Phi(-eps / mu + mu / 2) - e^eps Phi(-eps / mu - mu / 2).
"""

from __future__ import annotations

import math
from statistics import NormalDist

from scipy.optimize import brentq
from scipy.special import log_ndtr, ndtr

_NORMAL = NormalDist()


def _check(m: int, r: int, v: int, level: float | None = None) -> None:
    if not 0 <= v <= r <= m:
        raise ValueError(f"need 0 <= correct ({v}) <= guesses ({r}) <= canaries ({m})")
    if level is not None and not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")


def _phi(z: float) -> float:
    # erfc keeps relative precision far into the lower tail, where 1 + erf would cancel
    return 0.5 * math.erfc(-z / math.sqrt(2))


def _inverse_blow_up(x: float, mu: float) -> float:
    """g(x) = Phi(Phi^{-1}(x) - mu): the least probability, under one neighbour, of an event of probability x under
    the other, for a mu-GDP algorithm."""
    if x >= 1.0:
        return 1.0
    return _phi(_NORMAL.inv_cdf(x) - mu)


def gaussian_one_run_rejects(m: int, r: int, v: int, *, mu: float, tau: float) -> bool:
    """Whether v correct of r guesses (m canaries) show P[W >= v] <= tau for every mu-GDP algorithm: the recursion of
    the module docstring ends with r_0 + h_0 > r / m."""
    _check(m, r, v)
    if not 0 < tau <= 1:
        raise ValueError(f"tau must lie in (0, 1], got {tau}")
    if v == 0:
        return False  # P[W >= 0] = 1
    total = r / m
    right, wrong = tau * v / m, tau * (r - v) / m
    for i in range(v - 1, -1, -1):
        if right + wrong > total:
            return True  # r_i and h_i only grow as i falls, so r_0 + h_0 exceeds r / m too
        wrong_next = max(wrong, _inverse_blow_up(right, mu))
        if wrong_next == wrong:
            return False  # neither r_i nor h_i can change any more
        right, wrong = right + i / (r - i) * (wrong_next - wrong), wrong_next
    return right + wrong > total


def gaussian_one_run_p_value(m: int, r: int, v: int, *, mu: float) -> float:
    """The paper's bound on P[W >= v] for a mu-GDP algorithm: inf {tau : the recursion rejects at tau}, to 1e-12 and
    never below it; 1 when no tau < 1 is rejected."""
    _check(m, r, v)
    if v == 0 or not gaussian_one_run_rejects(m, r, v, mu=mu, tau=1.0 - 1e-12):
        return 1.0
    lo, hi = 0.0, 1.0  # rejects at hi, not at lo (tau = 0 proves nothing)
    while hi - lo > 1e-12:
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if gaussian_one_run_rejects(m, r, v, mu=mu, tau=mid) else (mid, hi)
    return hi


def gaussian_one_run_mu(m: int, r: int, v: int, *, level: float = 0.95) -> float:
    """Largest mu such that no mu-GDP algorithm gives v or more correct of r guesses (m canaries) with probability
    above 1 - level: sup {mu >= 0 : gaussian_one_run_rejects(m, r, v, mu=mu, tau=1 - level)}, to 1e-10.

    0 when even mu = 0 (perfect privacy) is not rejected: guesses near chance, or too few of them.
    """
    _check(m, r, v, level)
    tau = 1 - level
    if not gaussian_one_run_rejects(m, r, v, mu=0.0, tau=tau):
        return 0.0
    hi = 1.0
    while gaussian_one_run_rejects(m, r, v, mu=hi, tau=tau):
        hi *= 2  # ends: for large mu, g(x) -> 0 and r_0 + h_0 -> tau r / m < r / m
    lo = hi / 2 if hi > 1 else 0.0
    while hi - lo > 1e-10:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if gaussian_one_run_rejects(m, r, v, mu=mid, tau=tau) else (lo, mid)
    return lo


def gaussian_one_run_ceiling(m: int, *, level: float = 0.95) -> tuple[float, int]:
    """(mu, r): the most gaussian_one_run_mu can give with m canaries, every one of r guesses right, at its best r."""
    return max((gaussian_one_run_mu(m, r, r, level=level), r) for r in range(1, m + 1))


def gdp_delta(mu: float, eps: float) -> float:
    """delta at eps of mu-GDP: Phi(-eps / mu + mu / 2) - e^eps Phi(-eps / mu - mu / 2) (Dong, Roth & Su, Cor. 2.13)."""
    if mu <= 0:
        return 0.0
    # e^eps Phi(.) through logs: e^eps overflows long before the product does
    return float(ndtr(-eps / mu + mu / 2) - math.exp(eps + log_ndtr(-eps / mu - mu / 2)))


def gdp_to_epsilon(mu: float, delta: float) -> float:
    """The least eps >= 0 with gdp_delta(mu, eps) <= delta: the (eps, delta)-DP guarantee implied by mu-GDP, to 1e-12.

    delta(eps) falls from 2 Phi(mu / 2) - 1 at eps = 0 towards 0, so the root is unique; inf for mu > 0 and delta = 0.
    """
    if mu < 0:
        raise ValueError(f"mu must be >= 0, got {mu}")
    if not 0 <= delta <= 1:
        raise ValueError(f"delta must lie in [0, 1], got {delta}")
    if mu == 0 or gdp_delta(mu, 0.0) <= delta:
        return 0.0
    if delta == 0 or math.isinf(mu):
        return math.inf
    hi = 1.0
    while gdp_delta(mu, hi) > delta:
        hi *= 2
    return float(brentq(lambda e: gdp_delta(mu, e) - delta, hi / 2 if hi > 1 else 0.0, hi, xtol=1e-12, rtol=1e-14))


def gaussian_one_run_epsilon(m: int, r: int, v: int, *, delta: float, level: float = 0.95) -> float:
    """gaussian_one_run_mu as (eps, delta): the eps at delta of the largest mu-GDP the observation rules out.

    Comparable with one_run_bound.one_run_epsilon next to a claimed (eps, delta), but it rules out less: only the
    algorithms whose privacy curve is Gaussian, not every (eps, delta)-DP one.
    """
    return gdp_to_epsilon(gaussian_one_run_mu(m, r, v, level=level), delta)
