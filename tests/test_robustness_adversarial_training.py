"""Madry / TRADES adversarial training with the HotFlip inner maximiser, and the holdout-size warning."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch
from conftest import DEMO
from gfm_audit.errors import InputError
from gfm_audit.robustness.ga import classifiers, constraints, data
from gfm_audit.robustness.ga.adversarial_training import adversarial_training, holdout_needed
from gfm_audit.robustness.ga.attack import settings_from_config
from gfm_audit.robustness.ga.inner import hotflip_attack
from gfm_audit.robustness.ga.robust_training import reset_weights, robust_epochs
from test_robustness_ga import ATTACK, assert_obeys, hamming
from torch.optim.optimizer import register_optimizer_step_post_hook

GUE = DEMO / "gue_prom_300_all"
TRAINING = {"epochs": 1, "learning_rate": 1e-3, "batch_size": 32, "weight_decay": 0.01}


def _random_codes(n: int, length: int, seed: int, motif: str = "TATAAA") -> np.ndarray:
    """Random sequences, each with a protected motif planted at a seeded position."""
    rng = np.random.default_rng(seed)
    seqs = []
    for row in rng.integers(0, 4, size=(n, length)):
        s = list(data.decode(row[None, :].astype(np.uint8))[0])
        at = int(rng.integers(0, length - len(motif)))
        s[at : at + len(motif)] = motif
        seqs.append("".join(s))
    return data.encode(seqs)


class LinearOneHot(classifiers.Classifier):
    """A real torch classifier linear in the one-hot input: the first-order gain of a flip is its exact change of
    the logit difference, so HotFlip's ranking is exact."""

    def __init__(self, length: int, seed: int):
        torch.manual_seed(seed)
        self.name, self.num_labels, self.fixed_length, self.device = "linear", 2, length, "cpu"
        self.model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4 * length, 2)).eval()

    def logits(self, codes):
        x = torch.as_tensor(np.ascontiguousarray(codes), dtype=torch.long)
        return self.logits_from_one_hot(torch.nn.functional.one_hot(x, 4).to(torch.float32).transpose(1, 2))

    def logits_from_one_hot(self, one_hot):
        return self.model(one_hot)


def _ce(clf, codes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    probs = clf.predict_proba(codes)
    return -np.log(probs[np.arange(len(labels)), labels])


def _brute_force_best_flip(clf, original: np.ndarray, label: int, protected: np.ndarray, c) -> np.ndarray:
    """Every valid single substitution scored by the model, one at a time; the one with the highest loss."""
    best, best_loss = original, _ce(clf, original[None], np.array([label]))[0]
    for pos in range(len(original)):
        for base in range(4):
            if base == original[pos]:
                continue
            cand = original.copy()
            cand[pos] = base
            if not constraints.is_valid(cand[None, None], original[None], protected[None], constraints=c)[0, 0]:
                continue
            loss = _ce(clf, cand[None], np.array([label]))[0]
            if loss > best_loss:
                best, best_loss = cand, loss
    return best


@pytest.mark.parametrize("max_edits, gc_tolerance", [(1, 0.05), (3, 0.05), (5, 0.02)])
def test_hotflip_respects_every_constraint_and_stops_at_the_budget(max_edits, gc_tolerance):
    length = 100
    codes = _random_codes(40, length, seed=1)
    labels = np.arange(40) % 2
    clf = classifiers.CNNClassifier("cnn", length, channels=8, kernel=5, seed=0)
    c = constraints.Constraints(max_edits=max_edits, gc_tolerance=gc_tolerance)
    seqs = data.decode(codes)
    protected = constraints.protected_mask(seqs, c.protected_motifs)
    res = hotflip_attack(clf, codes, labels, protected=protected, constraints=c, candidates=3)
    edits = (res.adversarial != codes).sum(axis=1)
    for original, adv in zip(seqs, data.decode(res.adversarial), strict=True):
        assert_obeys(original, adv, c)  # independent string checks: Hamming, GC, motifs
    # A random-weight CNN's loss keeps rising along some flip, so the budget is reached, never passed.
    assert edits.max() == max_edits
    # The reported loss is the model's loss at the returned sequence, and it never falls below the clean one.
    np.testing.assert_allclose(res.loss, _ce(clf, res.adversarial, labels), rtol=1e-4)  # float32 forward passes
    assert (res.loss >= _ce(clf, codes, labels) - 1e-6).all()


def test_hotflip_finds_the_flip_a_brute_force_search_finds_on_a_linear_model():
    length = 40
    codes = _random_codes(12, length, seed=2)
    labels = np.arange(12) % 2
    clf = LinearOneHot(length, seed=3)
    c = constraints.Constraints(max_edits=1, gc_tolerance=0.03)  # 0.03 x 40 bp: one GC change allowed
    protected = constraints.protected_mask(data.decode(codes), c.protected_motifs)
    # candidates=1: only the top gradient flip is scored, so this checks the gradient ranking itself.
    res = hotflip_attack(clf, codes, labels, protected=protected, constraints=c, candidates=1)
    for i in range(len(codes)):
        expected = _brute_force_best_flip(clf, codes[i], labels[i], protected[i], c)
        np.testing.assert_array_equal(res.adversarial[i], expected)


def test_hotflip_with_every_candidate_scored_matches_brute_force_on_the_cnn():
    length = 32
    codes = _random_codes(6, length, seed=4)
    labels = np.arange(6) % 2
    clf = classifiers.CNNClassifier("cnn", length, channels=8, kernel=5, seed=1)
    c = constraints.Constraints(max_edits=1, gc_tolerance=0.05)
    protected = constraints.protected_mask(data.decode(codes), c.protected_motifs)
    res = hotflip_attack(clf, codes, labels, protected=protected, constraints=c, candidates=3 * length)
    for i in range(len(codes)):
        expected = _brute_force_best_flip(clf, codes[i], labels[i], protected[i], c)
        np.testing.assert_array_equal(res.adversarial[i], expected)


@pytest.mark.parametrize("tau", [0, 1])
def test_hotflip_stops_tau_steps_after_the_first_misclassification(tau):
    # The greedy path is deterministic and its first k steps do not depend on the budget, so the early-stopped
    # result must be the plain attack's at budget k* + tau, k* the first budget whose result the model gets wrong
    # (0 for a sequence it already gets wrong), capped at the budget; never wrong within the budget: the full one.
    length, budget = 40, 5
    codes = _random_codes(60, length, seed=5)
    clf = LinearOneHot(length, seed=6)  # margins of a few edits' worth, so some sequences flip within the budget
    predicted = clf.predict_proba(codes).argmax(axis=1)
    labels = np.where(np.arange(60) < 45, predicted, 1 - predicted)  # the last 15 wrong from the start
    protected = constraints.protected_mask(data.decode(codes), constraints.Constraints().protected_motifs)
    by_budget = [codes] + [
        hotflip_attack(
            clf, codes, labels, protected=protected, constraints=constraints.Constraints(max_edits=k), candidates=3
        ).adversarial
        for k in range(1, budget + 1)
    ]
    wrong = np.stack([clf.predict_proba(x).argmax(axis=1) != labels for x in by_budget])  # (budget + 1, S)
    first = np.where(wrong.any(axis=0), wrong.argmax(axis=0), budget)
    stop = np.minimum(np.where(wrong.any(axis=0), first + tau, budget), budget)
    early = hotflip_attack(
        clf,
        codes,
        labels,
        protected=protected,
        constraints=constraints.Constraints(max_edits=budget),
        candidates=3,
        stop_after_flip=tau,
    ).adversarial
    expected = np.stack([by_budget[k][i] for i, k in enumerate(stop)])
    np.testing.assert_array_equal(early, expected)
    # The cases that matter occur: sequences wrong from the start, and ones that flip before the budget is spent.
    assert (first == 0).any() and ((first > 0) & (first + tau < budget) & wrong.any(axis=0)).any()


def _gue(n_train: int, n_test: int):
    train = data.read_labelled_csv(GUE / "dev.csv").subset(range(n_train))
    test = data.read_labelled_csv(GUE / "test.csv").subset(range(n_test))
    return train, test


SETTINGS = {
    "scheme": "madry",
    "inner": "hotflip",
    "loss": "madry",
    "init": "scratch",
    "iterations": 1,
    "epochs": 1,
    "learning_rate": 1e-3,
    "inner_max_edits": None,
    "inner_candidates": 2,
    "trades_beta": 3.0,
    "holdout": 20,
    "target_gain": None,
    "seed": 0,
}


@pytest.mark.parametrize("loss", ["madry", "trades"])
def test_robust_training_is_deterministic_under_its_seed(loss):
    train, _ = _gue(96, 0)
    c = constraints.Constraints(max_edits=3)
    weights = []
    for seed in (0, 0, 1):
        clf = classifiers.CNNClassifier("cnn", 300, channels=8, kernel=5, seed=0)
        made, queries, losses = robust_epochs(
            clf, train, constraints=c, settings={**SETTINGS, "loss": loss}, training=TRAINING, seed=seed
        )
        assert made == 96 and queries > 96 and math.isfinite(losses[0])
        weights.append(torch.cat([p.detach().flatten() for p in clf.model.parameters()]))
    assert torch.equal(weights[0], weights[1])
    assert not torch.equal(weights[0], weights[2])


@pytest.mark.parametrize("clean_weight", [0.5, 0.8])
def test_madry_loss_weights_the_clean_and_adversarial_cross_entropy_by_clean_weight(clean_weight):
    # One batch of 32, one epoch: the loss returned is the one computed before the only optimiser step, so it can
    # be recomputed by hand from the same inner attack and the same dropout draw (the global seed is set first).
    train, _ = _gue(32, 0)
    c = constraints.Constraints(max_edits=3)
    clf = classifiers.CNNClassifier("cnn", 300, channels=8, kernel=5, seed=0)
    order = torch.randperm(32, generator=torch.Generator().manual_seed(0)).numpy()
    x, y = data.encode(train.sequences)[order], train.labels[order]
    protected = constraints.protected_mask(train.sequences, c.protected_motifs)[order]
    adv = hotflip_attack(clf, x, y, protected=protected, constraints=c, candidates=2).adversarial
    torch.manual_seed(0)
    clf.model.train()
    with torch.no_grad():
        logits = clf.logits(np.concatenate([x, adv])).float()
    clf.model.eval()
    ce = torch.nn.functional.cross_entropy(logits, torch.as_tensor(np.concatenate([y, y])), reduction="none")
    clean_ce, adv_ce = float(ce[:32].mean()), float(ce[32:].mean())
    assert adv_ce > clean_ce + 0.01  # the inner attack raised the loss, so the weight matters

    _, _, losses = robust_epochs(
        clf, train, constraints=c, settings={**SETTINGS, "clean_weight": clean_weight}, training=TRAINING, seed=0
    )
    # float32 means over 32 and 64 terms summed in another order: about 1e-7 relative.
    assert losses[0] == pytest.approx(clean_weight * clean_ce + (1 - clean_weight) * adv_ce, rel=1e-5)


def test_every_epoch_logs_its_number_and_the_mean_loss_it_returns(caplog):
    train, _ = _gue(32, 0)
    clf = classifiers.CNNClassifier("cnn", 300, channels=8, kernel=5, seed=0)
    with caplog.at_level(logging.INFO, logger="gfm_audit.robustness.ga.robust_training"):
        _, _, losses = robust_epochs(
            clf,
            train,
            constraints=constraints.Constraints(max_edits=2),
            settings={**SETTINGS, "epochs": 2},
            training=TRAINING,
            seed=0,
        )
    lines = [r.getMessage() for r in caplog.records if "adversarial training epoch" in r.getMessage()]
    assert len(losses) == 2
    assert lines == [f"adversarial training epoch {e + 1} of 2: mean loss {loss:.4f}" for e, loss in enumerate(losses)]


def test_ema_decay_keeps_the_exponential_moving_average_of_the_weights_after_each_step():
    # The weights after every optimiser step are recorded by a global step hook, independently of the averaging
    # code; the model returned must be their average a_1 = w_1, a_t = d a_(t-1) + (1 - d) w_t, recomputed here
    # in float64.
    train, _ = _gue(64, 0)
    c = constraints.Constraints(max_edits=3)
    clf = classifiers.CNNClassifier("cnn", 300, channels=8, kernel=5, seed=0)
    steps: list[torch.Tensor] = []

    def record(optimizer, args, kwargs):
        steps.append(torch.cat([p.detach().flatten() for p in clf.model.parameters()]).double())

    handle = register_optimizer_step_post_hook(record)
    try:
        robust_epochs(
            clf, train, constraints=c, settings={**SETTINGS, "epochs": 2, "ema_decay": 0.7}, training=TRAINING, seed=0
        )
    finally:
        handle.remove()
    assert len(steps) == 4  # 2 epochs of 2 batches of 32
    expected = steps[0]
    for w in steps[1:]:
        expected = 0.7 * expected + 0.3 * w
    kept = torch.cat([p.detach().flatten() for p in clf.model.parameters()]).double()
    assert (kept - steps[-1]).abs().max() > 1e-3  # not the last weights
    # float32 lerp per step against float64 here: a few ulps of weights of order 0.1.
    assert torch.allclose(kept, expected, rtol=0, atol=1e-6)


def test_madry_scheme_trains_from_scratch_on_hotflip_examples_at_the_attack_budget():
    train, test = _gue(64, 40)
    c, p = settings_from_config({**ATTACK, "max_edits": 4, "population": 8, "generations": 3})
    finals = []
    for start_seed in (0, 5):  # two different starting weights
        clf = classifiers.CNNClassifier("cnn", 300, channels=8, kernel=5, seed=start_seed)
        seen: list[np.ndarray] = []
        real_logits = clf.logits

        def logits(codes, clf=clf, seen=seen, real_logits=real_logits):
            if clf.model.training:
                seen.append(codes.copy())
            return real_logits(codes)

        clf.logits = logits
        progress, cost = adversarial_training(
            clf, train, test, constraints=c, params=p, settings=SETTINGS, training=TRAINING
        )
        finals.append(torch.cat([w.detach().flatten() for w in clf.model.parameters()]))
        # 64 rows in batches of 32: each batch is its 32 clean rows then their 32 adversarial versions.
        assert [len(b) for b in seen] == [64, 64]
        for batch in seen:
            for orig, adv in zip(data.decode(batch[:32]), data.decode(batch[32:]), strict=True):
                assert hamming(orig, adv) <= 4  # inner_max_edits null: the attack's budget
                assert_obeys(orig, adv, c)
        assert progress.n_adversarial.tolist() == [0, 64]
        assert cost.scheme.tolist() == ["madry", "madry"]
    # init scratch: training started from the seeded re-initialisation, whatever weights the model came with.
    assert torch.equal(finals[0], finals[1])


def test_reset_weights_gives_the_weights_of_a_fresh_cnn_of_that_seed():
    trained = classifiers.CNNClassifier("cnn", 64, channels=8, kernel=5, seed=3)
    trained.fit(_random_codes(32, 64, seed=0), np.arange(32) % 2, training=TRAINING, seed=0)
    reset_weights(trained, 7)
    fresh = classifiers.CNNClassifier("cnn", 64, channels=8, kernel=5, seed=7)
    for a, b in zip(trained.model.parameters(), fresh.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_hotflip_and_scratch_refuse_a_classifier_they_cannot_train(tmp_path):
    class NotOneHot(classifiers.Classifier):
        name, model = "head", torch.nn.Linear(2, 2)

    train, _ = _gue(8, 0)
    with pytest.raises(InputError, match=r"classifier 'head': .*inner hotflip needs a one-hot .*inner: greedy"):
        robust_epochs(
            NotOneHot(), train, constraints=constraints.Constraints(), settings=SETTINGS, training=TRAINING, seed=0
        )
    with pytest.raises(InputError, match=r"classifier 'head': .*init scratch re-initialises a CNN only"):
        reset_weights(NotOneHot(), 0)


def test_the_holdout_size_needed_for_a_gain_matches_the_normal_approximation():
    # Two intervals of half-width z sqrt(0.25 / n) around 0.5 -/+ g/2 stop overlapping at n = (z / g)^2 = 96.04 for
    # g = 0.2; Wilson's intervals at p near 0.5 are a little wider, so a few more.
    assert 96 <= holdout_needed(0.2) <= 100
    assert 384 <= holdout_needed(0.1) <= 390  # (1.96 / 0.1)^2 = 384.1
    assert holdout_needed(0.3) < holdout_needed(0.2) < holdout_needed(0.1)


def test_a_holdout_too_small_for_the_target_gain_gets_one_warning(caplog):
    train, test = _gue(40, 60)
    clf = classifiers.CNNClassifier("cnn", 300, channels=8, kernel=5, seed=0)
    c, p = settings_from_config({**ATTACK, "population": 6, "generations": 2})
    settings_ = {**SETTINGS, "iterations": 0, "holdout": 60, "target_gain": 0.2}
    with caplog.at_level(logging.WARNING):
        adversarial_training(clf, train, test, constraints=c, params=p, settings=settings_, training=TRAINING)
    warnings = [r.getMessage() for r in caplog.records if "adversarial_training.holdout" in r.getMessage()]
    assert len(warnings) == 1
    assert "60 held-out sequences cannot separate a robust-accuracy gain of 0.20" in warnings[0]
    assert f"use at least {holdout_needed(0.2)}" in warnings[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        adversarial_training(
            clf, train, test, constraints=c, params=p, settings={**settings_, "target_gain": 0.4}, training=TRAINING
        )
    assert not [r for r in caplog.records if "adversarial_training.holdout" in r.getMessage()]
