"""Empirical lower bound on DP epsilon from one training run (Steinke, Nasr & Jagielski, NeurIPS 2023).

Each of m canaries is included in the training set independently with probability 1/2. After training, the
auditor guesses "in" or "out" for r of them and abstains on the rest; v of the r guesses are correct. If training
is (eps, delta)-DP, the number of correct guesses W satisfies, for every v,

    P[W >= v] <= P[Binomial(r, q) >= v] + 2 m delta max_{i = 1..v} (1/i) P[v - i <= Binomial(r, q) < v],
    q = e^eps / (1 + e^eps),

("Privacy auditing with one (1) training run", Theorem 3.1 for delta = 0: W is stochastically dominated by
Binomial(r, q), the accuracy of eps-randomised response; the delta term is the one of their (eps, delta) theorem
and of the p-value procedure they publish with it). The right-hand side, a p-value, grows with eps; the audit's
bound is the largest eps whose p-value is still below 1 - level: an algorithm with that eps would produce v or
more correct guesses with probability under 1 - level, so the observation rules it out at the given confidence.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq
from scipy.stats import binom


def _check(m: int, r: int, v: int, delta: float) -> None:
    if not 0 <= v <= r <= m:
        raise ValueError(f"need 0 <= correct ({v}) <= guesses ({r}) <= canaries ({m})")
    if not 0 <= delta <= 1:
        raise ValueError(f"delta must lie in [0, 1], got {delta}")


def randomised_response_accuracy(eps: float) -> float:
    """q = e^eps / (1 + e^eps): the best accuracy of a guess about one eps-DP bit."""
    return 1.0 / (1.0 + math.exp(-eps))


def one_run_p_value(m: int, r: int, v: int, *, eps: float, delta: float) -> float:
    """Upper bound on P[W >= v] for an (eps, delta)-DP algorithm (the module docstring's formula), capped at 1.

    m canaries, r guesses, v correct.
    """
    _check(m, r, v, delta)
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    q = randomised_response_accuracy(eps)
    tail = float(binom.sf(v - 1, r, q))  # P[Binomial(r, q) >= v]
    slack = 0.0
    if v > 0 and delta > 0:
        # cumulative[i - 1] = P[v - i <= Binomial(r, q) < v] for i = 1..v
        cumulative = np.cumsum(binom.pmf(np.arange(v - 1, -1, -1), r, q))
        slack = float(np.max(cumulative / np.arange(1, v + 1)))
    return min(1.0, tail + 2 * m * delta * slack)


def one_run_epsilon(m: int, r: int, v: int, *, delta: float, level: float = 0.95) -> float:
    """Largest eps that v correct guesses out of r (m canaries, each in with probability 1/2) rule out.

    sup {eps >= 0 : one_run_p_value(m, r, v, eps=eps, delta=delta) < 1 - level}, to 1e-10; 0 when even eps = 0 is
    consistent with the observation (guesses at chance, too few guesses, or a delta term too large).
    """
    _check(m, r, v, delta)
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    alpha = 1 - level
    if v == 0 or one_run_p_value(m, r, v, eps=0.0, delta=delta) >= alpha:
        return 0.0
    hi = 1.0
    while one_run_p_value(m, r, v, eps=hi, delta=delta) < alpha:
        hi *= 2
        if hi > 1e4:  # unreachable for r >= 1: q^r -> 1 as eps grows
            return math.inf
    return float(
        brentq(
            lambda e: one_run_p_value(m, r, v, eps=e, delta=delta) - alpha, hi / 2 if hi > 1 else 0.0, hi, xtol=1e-10
        )
    )


def one_run_ceiling(m: int, *, delta: float, level: float = 0.95) -> float:
    """The most one_run_epsilon can give with m canaries: every canary guessed, every guess right (r = v = m).

    No audit with m canaries can report more than max over r <= m of one_run_epsilon(m, r, r, ...).
    """
    return max(one_run_epsilon(m, r, r, delta=delta, level=level) for r in range(1, m + 1))


def guesses_from_scores(scores: np.ndarray, included: np.ndarray, *, k_in: int, k_out: int) -> tuple[int, int]:
    """(r, v) when the k_in highest-scoring canaries are guessed "in", the k_out lowest "out", the rest abstained.

    ``scores``: higher means more likely a member; ``included``: whether each canary was in the training set.
    Ties are broken by position (a stable sort), so the count does not depend on the platform's sort.
    """
    scores, included = np.asarray(scores, float), np.asarray(included, bool)
    if scores.shape != included.shape or scores.ndim != 1:
        raise ValueError("scores and included must be 1-d arrays of the same length")
    if k_in < 0 or k_out < 0 or k_in + k_out > len(scores):
        raise ValueError(f"k_in ({k_in}) + k_out ({k_out}) must not exceed the number of canaries ({len(scores)})")
    order = np.argsort(-scores, kind="stable")
    guessed_in, guessed_out = order[:k_in], order[len(order) - k_out :]
    correct = int(included[guessed_in].sum()) + int((~included[guessed_out]).sum())
    return k_in + k_out, correct
