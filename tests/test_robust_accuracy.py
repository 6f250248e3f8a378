"""Robust accuracy by budget under the standard criterion (robustness/ga/robust_accuracy.py) and the Wilson
interval it is reported with, on a hand-built classifier whose answer is known exactly."""

from __future__ import annotations

import numpy as np
import pytest
from gfm_audit.robustness.ga import data
from gfm_audit.robustness.ga.adversarial_training import wilson_interval
from gfm_audit.robustness.ga.attack import attack_sequences, settings_from_config
from gfm_audit.robustness.ga.classifiers import Classifier
from gfm_audit.robustness.ga.robust_accuracy import BrokenByAttack, broken_by_attack, robust_by_budget
from test_robustness_ga import ATTACK


class FirstFiveCounter(Classifier):
    """Two classes; p(class 0) = 0.55 - 0.03 d, d = how many of the first five bases are not A.

    d = 0: 0.55, d = 1: 0.52 (still class 0), d = 2: 0.49 (class 1). The largest possible drop of p(class 0) is
    5 x 0.03 = 0.15, below the GA's delta of 0.2, so no GA success is ever possible, yet two edits make any
    all-A-start sequence of class 0 misclassified."""

    name, num_labels = "first_five", 2

    def predict_proba(self, codes: np.ndarray) -> np.ndarray:
        d = (codes[:, :5] != 0).sum(axis=1)
        p0 = 0.55 - 0.03 * d
        return np.stack([p0, 1 - p0], axis=1)


def _sequences() -> data.LabelledSequences:
    rng = np.random.default_rng(0)
    tails = ["".join(rng.choice(list("ACGT"), 25)) for _ in range(6)]
    # Five of class 0 (classified correctly) and one of class 1 (classified wrong: never robust).
    return data.LabelledSequences(
        path="toy",
        ids=[f"s{i}" for i in range(6)],
        sequences=["AAAAA" + t for t in tails],
        labels=np.array([0, 0, 0, 0, 0, 1]),
    )


def test_a_flip_with_a_small_probability_drop_counts_as_not_robust():
    seqs = _sequences()
    # No GC limit or motifs: every position may change, so the GA can reach the first five bases.
    c, p = settings_from_config({**ATTACK, "gc_tolerance": 1.0, "protected_motifs": [], "delta": 0.2})
    result = robust_by_budget(FirstFiveCounter(), seqs, constraints=c, params=p, seed=0)
    # Hand count: 5 correct sequences, none breakable with 1 edit (0.52 > 0.48), all with 2 (0.49 < 0.51).
    assert result.robust.tolist() == [5, 0, 0, 0, 0]
    assert result.n == 6
    assert result.accuracy.tolist() == pytest.approx([5 / 6, 0, 0, 0, 0])
    # The GA's own success rule (flip and p_true down by >= 0.2) would call all five robust at every budget.
    run = attack_sequences(FirstFiveCounter(), seqs, constraints=c, params=p, seed=0, baseline=False)
    assert len(run.attacked) == 5 and not run.ga.success.any()


def test_robust_up_to_gives_each_sequence_the_largest_budget_it_survives():
    seqs = _sequences()
    c, p = settings_from_config({**ATTACK, "gc_tolerance": 1.0, "protected_motifs": [], "delta": 0.2})
    broken = broken_by_attack(FirstFiveCounter(), seqs, constraints=c, params=p, seed=0)
    up_to = broken.robust_up_to(seqs.ids)
    # Hand count as above: the five of class 0 survive one edit and not two; the misclassified one survives none.
    assert up_to.tolist() == [1, 1, 1, 1, 1, 0]
    # Sequence by sequence, the counts robust_by_budget reports.
    counts = robust_by_budget(FirstFiveCounter(), seqs, constraints=c, params=p, seed=0).robust
    assert [(up_to >= j).sum() for j in range(1, 6)] == counts.tolist()


def test_robust_up_to_takes_the_first_budget_either_attack_breaks_and_zero_for_sequences_not_attacked():
    broken = BrokenByAttack(
        ga=np.array([[False, False, True], [False, False, False]]),
        hotflip=np.array([[False, True, True], [False, False, False]]),
        n=3,
        ids=("a", "c"),
    )
    # "a": HotFlip breaks it at 2, so robust up to 1; "b" was misclassified (not attacked); "c" survives all 3.
    assert broken.robust_up_to(["a", "b", "c"]).tolist() == [1, 0, 3]
    without_ids = BrokenByAttack(ga=broken.ga, hotflip=broken.hotflip, n=3)
    with pytest.raises(ValueError, match="2 attacked rows but 0 ids"):
        without_ids.robust_up_to(["a", "b", "c"])


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        # z = 1.959964, z^2 = 3.841459. k = 0: [0, z^2 / (n + z^2)]; k = n: [n / (n + z^2), 1].
        (0, 12, 0.0, 3.841459 / 15.841459),
        (12, 12, 12 / 15.841459, 1.0),
        (0, 10, 0.0, 3.841459 / 13.841459),
        # k = 5, n = 10: centre 0.5 exactly; half = z sqrt(0.025 + z^2/400) / (1 + z^2/10) = 0.263407.
        (5, 10, 0.5 - 0.263407, 0.5 + 0.263407),
    ],
)
def test_the_wilson_interval_matches_hand_computed_values_and_is_exactly_zero_or_one_at_the_ends(k, n, low, high):
    got = wilson_interval(k, n)
    # Hand values carry 6-7 significant digits.
    assert got == pytest.approx((low, high), abs=2e-6)
    if k == 0:
        assert got[0] == 0.0  # exactly, not a rounding error above 0
    if k == n:
        assert got[1] == 1.0


def test_a_wrapped_defence_is_attacked_through_its_inner_classifiers_gradient_too():
    from gfm_audit.robustness.ga.adfar import AdfarClassifier
    from gfm_audit.robustness.ga.classifiers import CNNClassifier
    from gfm_audit.robustness.ga.search import GAParams

    rng = np.random.default_rng(1)
    seqs = ["".join(rng.choice(list("ACGT"), 40)) for _ in range(30)]
    train = data.LabelledSequences("toy", [f"s{i}" for i in range(30)], seqs, np.arange(30) % 2)
    cnn = CNNClassifier("tiny", 40, channels=4, kernel=3, seed=0)
    cnn.fit(
        data.encode(seqs),
        train.labels,
        training={"epochs": 30, "learning_rate": 1e-2, "batch_size": 8, "weight_decay": 0.0},
        seed=0,
    )
    c, _ = settings_from_config({**ATTACK, "gc_tolerance": 1.0, "protected_motifs": []})
    weak = GAParams(population=2, generations=1, patience=1)  # a GA too weak to find most flips: HotFlip must
    adfar = {"kmer": 3, "rare_quantile": 0.2, "rate": 1.0, "threshold": 0.5}
    defended = AdfarClassifier(cnn, train, settings={"adfar": adfar, "seed": 0})
    # Its detector is untrained and flags nothing, so the defended model predicts exactly as the CNN: the same
    # attacks must find the same flips, HotFlip's included.
    plain = robust_by_budget(cnn, train, constraints=c, params=weak, seed=0)
    wrapped = robust_by_budget(defended, train, constraints=c, params=weak, seed=0)
    assert wrapped.robust.tolist() == plain.robust.tolist()
    # ... and HotFlip did matter here: the GA alone (the CNN behind a plain predict_proba) finds fewer flips.
    hidden = ProbabilitiesOnly(cnn)
    assert robust_by_budget(hidden, train, constraints=c, params=weak, seed=0).robust[-1] > plain.robust[-1]


class ProbabilitiesOnly(Classifier):
    """A classifier's predict_proba and nothing else (no gradient to follow)."""

    def __init__(self, clf):
        self.clf, self.name, self.num_labels = clf, clf.name, clf.num_labels

    def predict_proba(self, codes: np.ndarray) -> np.ndarray:
        return self.clf.predict_proba(codes)
