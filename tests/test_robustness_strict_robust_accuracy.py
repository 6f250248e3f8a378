"""Robust accuracy under the strict criterion (no confidence-drop threshold) against the GA's success rule."""

from __future__ import annotations

import math

import numpy as np
import torch
from gfm_audit.robustness.ga import classifiers, data
from gfm_audit.robustness.ga.attack import attack_sequences
from gfm_audit.robustness.ga.constraints import Constraints
from gfm_audit.robustness.ga.robust_accuracy import robust_by_budget
from gfm_audit.robustness.ga.search import GAParams

LENGTH = 20
# Any base anywhere, no GC window: only the edit budget constrains the attacks, so the answers below follow from the
# weights alone.
FREE = Constraints(max_edits=5, gc_tolerance=1.0, protected_motifs=())
GA = GAParams(population=20, generations=40, patience=40, delta=0.2)


def _count_a_model() -> torch.nn.Module:
    """Hand-set linear map of a (N, 4, L) one-hot input: logit(class 1) - logit(class 0) = -3.8 + 0.4 * (number of
    A)."""
    linear = torch.nn.Linear(4 * LENGTH, 2)
    with torch.no_grad():
        linear.weight.zero_()
        linear.weight[1, :LENGTH] = 0.4  # Flatten of (N, 4, L): channel A is the first L inputs
        linear.bias.copy_(torch.tensor([0.0, -3.8]))
    return torch.nn.Sequential(torch.nn.Flatten(), linear).eval()


def _one_hot(codes):
    x = torch.as_tensor(np.ascontiguousarray(codes), dtype=torch.long)
    return torch.nn.functional.one_hot(x, 4).to(torch.float32).transpose(1, 2)


class GAOnly(classifiers.Classifier):
    """The hand-set classifier without a one-hot entry point: only the GA can attack it."""

    def __init__(self):
        self.name, self.num_labels, self.fixed_length, self.device = "count_a", 2, LENGTH, "cpu"
        self.model = _count_a_model()

    def logits(self, codes):
        return self.model(_one_hot(codes))


class CountA(GAOnly):
    """The same classifier with ``logits_from_one_hot``: HotFlip attacks it too."""

    def logits_from_one_hot(self, one_hot):
        return self.model(one_hot)


def _sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def _toy() -> data.LabelledSequences:
    seqs = [
        "A" * 10 + "C" * 10,  # label 1, margin +0.2: p_true 0.550; one A edited away: margin -0.2, p_true 0.450
        "C" * LENGTH,  # label 0, margin 3.8: five added A leave it at 1.8, still class 0
        "A" * LENGTH,  # label 0 but margin -4.2: misclassified before any edit
    ]
    return data.LabelledSequences("toy.csv", ["flip_small_drop", "robust", "wrong"], seqs, np.array([1, 0, 0]))


def test_the_hand_built_margins_give_the_probabilities_the_toy_relies_on():
    probs = CountA().predict_proba(data.encode(_toy().sequences))
    # Hand-computed from the weights (float32 forward pass: 1e-6).
    assert np.allclose(probs[:, 1], [_sigmoid(0.2), _sigmoid(-3.8), _sigmoid(4.2)], atol=1e-6)
    # One A removed from the first: a flip whose true-class drop is below the GA's delta 0.2.
    assert _sigmoid(0.2) - _sigmoid(-0.2) < 0.2 < _sigmoid(0.2) - _sigmoid(-1.0)


def test_a_flip_with_a_small_probability_drop_makes_a_sequence_non_robust():
    res = robust_by_budget(CountA(), _toy(), constraints=FREE, params=GA, seed=0)
    # Hand-derived: the first flips with 1 edit, the second never within 5, the third is wrong as given; so only
    # the second is robust, at every budget, out of all three.
    assert res.robust.tolist() == [1, 1, 1, 1, 1]
    assert res.n == 3
    assert res.accuracy.tolist() == [1 / 3] * 5


def test_the_ga_success_rule_counts_the_same_sequence_robust_until_three_edits():
    # The GA's rule needs p_true down by 0.2: 2 A removed drop it by 0.196, 3 by 0.281 (hand-computed above), so it
    # reports the first sequence flipped only with 3 edits: the inflation the strict criterion removes.
    run = attack_sequences(CountA(), _toy(), constraints=FREE, params=GA, seed=0, baseline=False)
    edits = (run.ga.adversarial != run.originals).sum(axis=1)
    assert run.attacked.ids == ["flip_small_drop", "robust"]
    assert run.ga.success.tolist() == [True, False]
    assert edits[0] == 3


def test_the_ga_alone_finds_the_one_edit_flip_of_a_classifier_without_gradients():
    res = robust_by_budget(GAOnly(), _toy(), constraints=FREE, params=GA, seed=0)
    assert res.robust.tolist() == [1, 1, 1, 1, 1]  # the first sequence already broken at budget 1
