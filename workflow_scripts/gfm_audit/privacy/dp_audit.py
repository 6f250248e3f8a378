"""A DP-trained model's claimed (eps, delta) against the empirical lower bounds the audit measures.

An empirical lower bound holds at its confidence level for any correctly implemented and correctly accounted
(eps, delta)-DP training: a bound above the claimed eps means, at that confidence, that the implementation or the
accounting is wrong (Jagielski, Ullman & Oprea 2020; Nasr et al. 2021; Steinke, Nasr & Jagielski 2023). A bound at
or below it is consistent with the claim, and says nothing of how tight the claim is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .metrics import epsilon_lower_bound
from .one_run_bound import guesses_from_scores, one_run_epsilon

NAMES = {
    "one_run": "one-run canary bound",
    "one_run_gdp": "one-run Gaussian-DP bound",
    "clopper_pearson": "Clopper-Pearson threshold bound",
}
# Bounds that rule out only trainings of a given privacy-curve shape (here Gaussian): shown beside a claim, never
# held against it, since an (eps, delta)-DP training of another shape may exceed them without being wrong.
SHAPE_ASSUMED = frozenset({"one_run_gdp"})


@dataclass(frozen=True)
class DPVerdict:
    claimed_epsilon: float
    delta: float
    level: float
    bounds: Mapping[str, float]
    violated: tuple[str, ...]

    def sentence(self) -> str:
        measured = ", ".join(_measured(self.bounds))
        head = (
            f"Claimed (eps = {self.claimed_epsilon:.2f}, delta = {self.delta:g}); empirical lower bounds at "
            f"{self.level:.0%} confidence: {measured}."
        )
        if self.violated:
            names = " and ".join(NAMES.get(k, k) for k in self.violated)
            verb = "exceeds" if len(self.violated) == 1 else "exceed"
            return f"{head} The {names} {verb} the claim: it is violated, the DP implementation or accounting is wrong."
        return f"{head} Consistent with the claimed guarantee."


def _measured(bounds: Mapping[str, float]) -> list[str]:
    """'name value' per bound; three or more attack bounds as their largest ("the largest of 23 ...")."""
    prefix = "Clopper-Pearson bound of "
    attacks = {k[len(prefix) :]: v for k, v in bounds.items() if k.startswith(prefix)}
    items = [
        f"{NAMES.get(k, k)} {v:.2f}" for k, v in bounds.items() if len(attacks) < 3 or k[len(prefix) :] not in attacks
    ]
    if len(attacks) >= 3:
        top = max(attacks, key=attacks.get)  # the first of the largest, in the table's order
        items.append(
            f"the largest of {len(attacks)} Clopper-Pearson bounds of the membership attacks ({top}) {attacks[top]:.2f}"
        )
    return items


def check_claim(claimed_epsilon: float, bounds: Mapping[str, float], *, delta: float, level: float = 0.95) -> DPVerdict:
    """Which empirical lower bounds (each computed at ``delta`` and confidence ``level``) exceed ``claimed_epsilon``."""
    violated = tuple(name for name, bound in bounds.items() if bound > claimed_epsilon)
    return DPVerdict(float(claimed_epsilon), float(delta), float(level), dict(bounds), violated)


def audit_canaries(
    record: Mapping, scores: np.ndarray, included: np.ndarray, *, k: int, level: float = 0.95
) -> DPVerdict:
    """The claim in a model's ``dp.json`` against m canaries, each included in training with probability 1/2.

    ``scores``: higher means more likely included. The k highest are guessed in and the k lowest out (k fixed
    before looking: choosing it from the outcome would void the bound); the one-run bound takes the m canaries and
    those 2k guesses (``one_run_bound``), the Clopper-Pearson bound every threshold over all m (``metrics``); both at
    the record's delta.
    """
    scores, included = np.asarray(scores, float), np.asarray(included, bool)
    delta = float(record["delta"])
    r, v = guesses_from_scores(scores, included, k_in=k, k_out=k)
    bounds = {
        "one_run": one_run_epsilon(len(scores), r, v, delta=delta, level=level),
        "clopper_pearson": epsilon_lower_bound(scores, included.astype(int), delta=delta, level=level),
    }
    claimed = math.inf if record["epsilon"] is None else record["epsilon"]  # None: the accountant found no bound
    return check_claim(claimed, bounds, delta=delta, level=level)
