"""Empirical robust accuracy by edit budget, under the standard criterion (not the GA's success rule).

robust_j = #{x in holdout : f(x) = y and f(x') = y for every x' the attack finds within j edits} / |holdout|,
j = 1..max_edits: a held-out sequence counts as robust at budget j when it is classified correctly and no
candidate of at most j substitutions (under the GA's constraints) is misclassified. This is the robust accuracy of
Madry et al. (ICLR 2018) and of the robustness literature; the attack gives an upper bound on the true value.

The GA's own success rule (:func:`.search.successful`) also asks for a drop of ``delta`` in the true-class
probability, which is right for an attack success rate (a flip from 0.51 to 0.49 is not a strong attack) but
wrong for robust accuracy: a defended model that is merely less confident would look robust because its flips
are small. Here the GA searches with delta = -inf, so ``successful`` reduces to "predicted class != label", and
its edits are pruned (:func:`.search.prune_edits`) under the same rule, so that a flip found with 4 edits that
needs only 2 counts at budget 2. :func:`robust_by_budget` adds, on classifiers with a one-hot input (the CNN),
the white-box HotFlip maximiser (Ebrahimi et al., ACL 2018; :mod:`.inner`) run at each budget j: a sequence is
broken at j when either attack makes its prediction wrong within j edits.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .attack import Targets, attack_sequences
from .classifiers import Classifier
from .constraints import Constraints
from .data import LabelledSequences
from .search import GAParams

MISCLASSIFIED = -np.inf
"""The GA's ``delta`` that makes its success test "prediction wrong", whatever the probability drop."""


@dataclass(frozen=True)
class RobustByBudget:
    robust: np.ndarray  # (max_edits,) int: sequences robust at budget j = 1..max_edits (index j - 1)
    n: int  # sequences measured (the denominator: the whole sample, correct or not)

    @property
    def accuracy(self) -> np.ndarray:
        return self.robust / self.n if self.n else np.full(len(self.robust), np.nan)


def hotflip_broken(clf: Classifier, t: Targets, constraints: Constraints) -> np.ndarray:
    """(S, max_edits) bool over the attacked (correctly classified) sequences ``t``: HotFlip at budget j makes the
    prediction wrong."""
    from .inner import hotflip_attack

    # A wrapped defence (ADFAR's detector + randomisation) has no gradient of its own: HotFlip follows the
    # gradient of the classifier inside it and the defended predict_proba judges the result (a transfer attack).
    white_box = getattr(clf, "inner", clf)
    broken = np.zeros((len(t.labels), constraints.max_edits), dtype=bool)
    for j in range(1, constraints.max_edits + 1):
        res = hotflip_attack(
            white_box, t.originals, t.labels, protected=t.protected, constraints=replace(constraints, max_edits=j)
        )
        broken[:, j - 1] = clf.predict_proba(res.adversarial).argmax(axis=1) != t.labels
    return np.logical_or.accumulate(broken, axis=1)  # broken within j edits stays broken at larger budgets


@dataclass(frozen=True)
class BrokenByAttack:
    ga: np.ndarray  # (S, max_edits) bool over the correctly classified sequences: the GA makes it wrong within j
    hotflip: np.ndarray  # the same for HotFlip (all False where the classifier has no one-hot input)
    n: int  # sequences measured, correct or not
    ids: tuple[str, ...] = ()  # the S correctly classified sequences' ids, in the order of the rows above

    def robust_up_to(self, ids: list[str]) -> np.ndarray:
        """Per sequence of the measured sample (``ids``, in its order): the largest budget j at which it is robust
        (correct and broken by neither attack within j edits), 0 when misclassified or broken by one edit. Robust at
        budget j <=> robust_up_to >= j, because a sequence broken within j edits stays broken at larger budgets;
        so ``(robust_up_to >= j).sum()`` is the count :func:`robust_by_budget` gives, sequence by sequence, which
        a paired comparison of two models on the same sample needs."""
        if len(self.ids) != len(self.ga):
            raise ValueError(f"{len(self.ga)} attacked rows but {len(self.ids)} ids: measured without ids")
        budget = self.ga.shape[1] - (self.ga | self.hotflip).sum(axis=1)
        by_id = dict(zip(self.ids, budget.tolist(), strict=True))
        return np.array([by_id.get(i, 0) for i in ids], dtype=np.int64)


def broken_by_attack(
    clf: Classifier, data: LabelledSequences, *, constraints: Constraints, params: GAParams, seed: int
) -> BrokenByAttack:
    """Per correctly classified sequence and budget, whether each attack of the standard criterion breaks it: the
    GA searching for any misclassification (edits pruned), and on one-hot classifiers (or a defence wrapping one,
    through its ``inner`` classifier) HotFlip at each budget."""
    run = attack_sequences(
        clf,
        data,
        constraints=constraints,
        params=replace(params, delta=MISCLASSIFIED),
        seed=seed,
        baseline=False,
        prune=True,
    )
    edits = (run.ga.adversarial != run.originals).sum(axis=1)
    budgets = np.arange(1, constraints.max_edits + 1)
    ga = run.ga.success[:, None] & (edits[:, None] <= budgets[None, :])
    hotflip = np.zeros_like(ga)
    if hasattr(getattr(clf, "inner", clf), "logits_from_one_hot") and len(run.attacked):
        hotflip = hotflip_broken(clf, run.targets, constraints)
    return BrokenByAttack(ga=ga, hotflip=hotflip, n=len(data), ids=tuple(run.attacked.ids))


def robust_by_budget(
    clf: Classifier, data: LabelledSequences, *, constraints: Constraints, params: GAParams, seed: int
) -> RobustByBudget:
    """Robust counts by budget under the standard criterion: correct and broken by neither attack of
    :func:`broken_by_attack` within the budget."""
    broken = broken_by_attack(clf, data, constraints=constraints, params=params, seed=seed)
    return RobustByBudget(robust=len(broken.ga) - (broken.ga | broken.hotflip).sum(axis=0), n=broken.n)
