"""FreeLB and ADFAR (robustness/ga/freelb.py, adfar.py), checked against hand-written loops and counts, and the
one-line refusal of a scheme a classifier cannot take."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import DEMO
from gfm_audit.errors import InputError
from gfm_audit.robustness.ga import classifiers, data
from gfm_audit.robustness.ga.adfar import AdfarClassifier, KmerFrequencies
from gfm_audit.robustness.ga.adversarial_training import adversarial_training
from gfm_audit.robustness.ga.attack import settings_from_config
from gfm_audit.robustness.ga.defence_table import (
    clean_loss_exceeded,
    defence_table,
    defence_table_html,
    defences_sentence,
)
from gfm_audit.robustness.ga.defences import check_scheme
from gfm_audit.robustness.ga.freelb import freelb_batch
from test_gfm_families import FIXTURES
from test_robustness_ga import ATTACK

GUE = DEMO / "gue_prom_300_all"
TRAINING = {"epochs": 3, "learning_rate": 3e-3, "batch_size": 32, "weight_decay": 0.01}
FREELB = {"steps": 3, "epsilon": 0.5, "step_size": 0.3, "init_magnitude": 0.4}
ADFAR = {"kmer": 3, "rare_quantile": 0.2, "rate": 1.0, "threshold": 0.5}


def tiny_cnn(length: int = 32, seed: int = 0) -> classifiers.CNNClassifier:
    return classifiers.CNNClassifier("tiny", length, channels=4, kernel=3, seed=seed)


def random_codes(n: int, length: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4, (n, length)).astype(np.uint8)


# --- FreeLB -----------------------------------------------------------------------------------------------------
def test_freelb_keeps_every_perturbation_inside_its_l2_ball():
    clf = tiny_cnn()
    codes, labels = random_codes(8, 32, 0), np.arange(8) % 2
    trajectory = freelb_batch(
        clf, codes, labels, steps=5, epsilon=0.5, step_size=2.0, init_magnitude=3.0, generator=torch.Generator()
    )
    assert len(trajectory) == 6
    norms = np.array([[float(d.flatten(1).norm(dim=1).max())] for (d,) in trajectory])
    # Tolerance: float32 rounding of the rescaling (relative 1e-6 on a norm of 0.5).
    assert (norms <= 0.5 * (1 + 1e-5)).all()
    # A step of 2.0 against a ball of 0.5: after the first ascent step every perturbation sits on the sphere.
    assert np.allclose(norms[1:], 0.5, rtol=1e-5)


def test_freelb_parameter_gradient_is_the_mean_over_k_steps_of_a_hand_loop():
    clf = tiny_cnn()
    clf.model.eval()  # no dropout: the hand loop must see the same network
    codes, labels = random_codes(6, 32, 1), np.array([0, 1, 1, 0, 1, 0])
    steps, epsilon, alpha = 4, 0.3, 0.1
    params = list(clf.model.parameters())
    for p in params:
        p.grad = None
    trajectory = freelb_batch(
        clf,
        codes,
        labels,
        steps=steps,
        epsilon=epsilon,
        step_size=alpha,
        init_magnitude=0.2,
        generator=torch.Generator().manual_seed(3),
    )
    one_hot = torch.nn.functional.one_hot(torch.as_tensor(codes, dtype=torch.long), 4).float().transpose(1, 2)
    target = torch.as_tensor(labels)
    expected = [torch.zeros_like(p) for p in params]
    delta = trajectory[0][0].clone()
    for t in range(1, steps + 1):
        x = (one_hot + delta).requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(clf.model(x), target)
        *g_theta, g_x = torch.autograd.grad(loss, [*params, x])
        expected = [e + g / steps for e, g in zip(expected, g_theta, strict=True)]
        # The ascent step written out per sequence in numpy: delta + alpha g / ||g||, then scaled into the ball.
        d, g = delta.numpy().copy(), g_x.numpy()
        for i in range(len(d)):
            d[i] = d[i] + alpha * g[i] / np.linalg.norm(g[i])
            d[i] *= min(1.0, epsilon / np.linalg.norm(d[i]))
        # Tolerance: float32 sums in a different order (autograd.grad vs backward of loss / K).
        np.testing.assert_allclose(trajectory[t][0].numpy(), d, rtol=1e-4, atol=1e-6)
        delta = torch.as_tensor(d)
    for p, e in zip(params, expected, strict=True):
        np.testing.assert_allclose(p.grad.numpy(), e.numpy(), rtol=1e-4, atol=1e-7)


def test_freelb_perturbs_a_gfm_heads_token_embeddings_and_trains_only_the_head():
    clf = classifiers.NativeHeadClassifier.from_gfm(
        "hyena_head", FIXTURES / "hyenadna", architecture="hyenadna", num_labels=2
    )
    codes, labels = random_codes(4, 24, 2), np.array([0, 1, 0, 1])
    trajectory = freelb_batch(
        clf, codes, labels, steps=2, epsilon=0.05, step_size=1.0, init_magnitude=0.01, generator=torch.Generator()
    )
    deltas = [d for step in trajectory for d in step]
    width = clf.lm.get_input_embeddings().embedding_dim if hasattr(clf.lm, "get_input_embeddings") else None
    assert deltas[0].dim() == 3 and (width is None or deltas[0].shape[-1] == width)
    assert max(float(d.flatten(1).norm(dim=1).max()) for d in deltas) <= 0.05 * (1 + 1e-5)
    assert all(p.grad is not None for p in clf.model["head"].parameters())
    assert all(p.grad is None for p in clf.model["lm"].parameters())


class SklearnClassifier(classifiers.Classifier):
    """A scikit-learn logistic regression on one-hot bases: a predict_proba and nothing to perturb or share."""

    def __init__(self, codes: np.ndarray, labels: np.ndarray):
        from sklearn.linear_model import LogisticRegression

        self.name, self.num_labels = "logreg", 2
        self.model = LogisticRegression().fit(np.eye(4)[codes].reshape(len(codes), -1), labels)

    def predict_proba(self, codes: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(np.eye(4)[codes].reshape(len(codes), -1))


@pytest.mark.parametrize("scheme", ["freelb", "adfar"])
def test_a_scheme_the_classifier_cannot_take_is_refused_in_one_line(scheme):
    clf = SklearnClassifier(random_codes(20, 16, 0), np.arange(20) % 2)
    with pytest.raises(InputError) as info:
        check_scheme(clf, scheme)
    message = str(info.value)
    assert "\n" not in message and "'logreg'" in message and f"scheme {scheme}" in message
    assert "use scheme" in message
    check_scheme(clf, "iterative")  # querying it is all iterative needs
    check_scheme(tiny_cnn(), scheme)  # the CNN takes both


# --- ADFAR --------------------------------------------------------------------------------------------------------
def test_kmer_frequencies_and_rarity_match_a_hand_count():
    codes = random_codes(10, 12, 4)
    freq = KmerFrequencies(codes, k=2, rare_quantile=0.25)
    words = Counter(tuple(row[i : i + 2]) for row in codes.tolist() for i in range(11))
    total = sum(words.values()) + 16  # add-one smoothing over the 16 dimers
    log_f = {(a, b): np.log((words[(a, b)] + 1) / total) for a in range(4) for b in range(4)}
    row = codes[3].tolist()
    hand = [log_f[tuple(row[0:2])]] + [
        (log_f[tuple(row[i - 1 : i + 1])] + log_f[tuple(row[i : i + 2])]) / 2 for i in range(1, 11)
    ]
    hand.append(log_f[tuple(row[10:12])])
    np.testing.assert_allclose(freq.rarity(codes)[3], hand, rtol=1e-12)
    every = np.concatenate([freq.rarity(codes[i : i + 1])[0] for i in range(10)])
    assert freq.threshold == pytest.approx(np.quantile(every, 0.25))


def test_randomisation_changes_only_rare_positions_towards_frequent_kmers_and_is_seeded():
    train = random_codes(200, 40, 5)
    train[:, 10:14] = [0, 1, 2, 3]  # ACGT everywhere: its k-mers are frequent
    freq = KmerFrequencies(train, k=3, rare_quantile=0.2)
    codes = random_codes(30, 40, 6)
    out = freq.randomise(codes, rate=1.0, seed=0)
    changed = out != codes
    assert changed.any()
    assert not (changed & ~(freq.rarity(codes) < freq.threshold)).any()
    assert (freq.rarity(out).mean(axis=1) >= freq.rarity(codes).mean(axis=1) - 1e-12).all()
    assert np.array_equal(out, freq.randomise(codes, rate=1.0, seed=0))
    # Each sequence's draw depends on the sequence, not on the batch around it.
    assert np.array_equal(out[7:8], freq.randomise(codes[7:8], rate=1.0, seed=0))
    half = [freq.randomise(codes, rate=0.5, seed=s) for s in (0, 1)]
    assert not np.array_equal(*half)


def _gue(n_train: int, n_test: int) -> tuple[data.LabelledSequences, data.LabelledSequences]:
    train = data.read_labelled_csv(GUE / "dev.csv").subset(range(n_train))
    test = data.read_labelled_csv(GUE / "test.csv").subset(range(n_test))
    return train, test


def test_the_adfar_detector_trains_and_flags_what_it_was_shown_and_the_flagged_are_randomised():
    train, test = _gue(300, 120)
    clf = classifiers.CNNClassifier("cnn", 300, channels=8, kernel=9, seed=0)
    settings = {"adfar": ADFAR, "seed": 0, "epochs": 6, "learning_rate": 3e-3}
    defended = AdfarClassifier(clf, train, settings=settings)
    assert not defended.detect(data.encode(test.sequences)).any()  # untrained: flags nothing

    def planted(codes):  # a marked stretch stands in for an attack's fingerprint
        codes = codes.copy()
        codes[:, 140:160] = np.tile([2, 1], 10)
        return codes

    codes = data.encode(train.sequences)
    defended.adversarial = planted(codes[:100])
    defended.adversarial_labels = train.labels[:100]
    defended.fit_joint(codes, train.labels, settings=settings, training=TRAINING, seed=0)
    held_out = data.encode(test.sequences)
    p_clean, p_marked = defended.detect(held_out), defended.detect(planted(held_out))
    assert (p_marked > 0.5).mean() > 0.9 and (p_clean > 0.5).mean() < 0.1
    probs = defended.predict_proba(planted(held_out))
    flagged = p_marked > 0.5
    np.testing.assert_array_equal(probs[flagged], clf.predict_proba(defended.randomise(planted(held_out)[flagged])))
    np.testing.assert_array_equal(probs[~flagged], clf.predict_proba(planted(held_out)[~flagged]))


def test_adfar_on_a_gfm_head_reads_the_heads_input_and_trains_only_the_two_heads():
    clf = classifiers.NativeHeadClassifier.from_gfm(
        "hyena_head", FIXTURES / "hyenadna", architecture="hyenadna", num_labels=2
    )
    codes = random_codes(16, 24, 7)
    train = data.LabelledSequences("t", [f"t:{i}" for i in range(16)], data.decode(codes), np.arange(16) % 2)
    defended = AdfarClassifier(clf, train, settings={"adfar": ADFAR, "seed": 0})
    features, logits = defended.forward(codes[:3])
    # The detector sees exactly what the classifier's head sees: the head applied to it gives the logits.
    torch.testing.assert_close(clf.model["head"](features), logits.float())
    assert features.shape == (3, clf.model["head"].in_features)
    encoder = [p.detach().clone() for p in clf.model["lm"].parameters()]
    head, detector = clf.model["head"].weight.detach().clone(), defended.detector.weight.detach().clone()
    defended.adversarial, defended.adversarial_labels = codes[:4] ^ 1, train.labels[:4]
    defended.fit_joint(codes, train.labels, settings={"epochs": 1, "learning_rate": 1e-2}, training=TRAINING, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(encoder, clf.model["lm"].parameters(), strict=True))
    assert not torch.equal(head, clf.model["head"].weight) and not torch.equal(detector, defended.detector.weight)
    assert defended.detect(codes).shape == (16,)


SETTINGS = {
    "iterations": 1,
    "train_sample": 40,
    "holdout": 20,
    "epochs": 1,
    "learning_rate": 3e-3,
    "freelb": FREELB,
    "adfar": ADFAR,
}


@pytest.mark.parametrize("scheme", ["freelb", "adfar"])
def test_each_defence_gives_identical_tables_under_one_seed_and_other_ones_under_another(scheme):
    train, test = _gue(120, 40)
    c, p = settings_from_config(
        {
            **ATTACK,
            "population": 16,
            "generations": 12,
            "patience": 4,
            "delta": 0.0,
            "max_edits": 20,
            "gc_tolerance": 0.1,
        }
    )
    runs = []
    for seed in (0, 0, 1):
        clf = classifiers.CNNClassifier("cnn", 300, channels=8, kernel=9, seed=0)
        clf.fit(data.encode(train.sequences), train.labels, training=TRAINING, seed=0)
        progress, cost = adversarial_training(
            clf,
            train,
            test,
            constraints=c,
            params=p,
            settings={**SETTINGS, "scheme": scheme, "seed": seed},
            training=TRAINING,
        )
        runs.append((progress, cost.drop(columns="seconds")))
    assert runs[0][0].equals(runs[1][0]) and runs[0][1].equals(runs[1][1])
    assert not runs[0][0].equals(runs[2][0])
    assert runs[0][1].scheme.tolist() == [scheme, scheme]
    assert runs[0][0].n_adversarial.iloc[1] > 0


# --- defence rows and their report ----------------------------------------------------------------------------
def _run_tables(asr, n_attacked, robust=((10, 8), (12, 9)), scheme="freelb"):
    """progress.tsv and cost.tsv of a run with one row per iteration; ``robust``: the robust counts (of 25) at
    budgets 1 and 2, one pair per iteration."""
    iterations = list(range(len(asr)))
    progress = pd.DataFrame(
        {
            "iteration": iterations,
            "train_size": 100,
            "n_adversarial": 0,
            "clean_accuracy": 0.8,
            "robust_accuracy": [r[-1] / 25 for r in robust],
            "asr": asr,
            "n_attacked": n_attacked,
        }
    )
    cost = pd.DataFrame(
        {
            "iteration": iterations,
            "scheme": scheme,
            "robust_accuracy": [r[-1] / 25 for r in robust],
            "robust_ci_low": 0.3,
            "robust_ci_high": 0.7,
            "n_holdout": 25,
            "attack_queries": 0,
            "seconds": 1.0,
            "n_robust_k1": [r[0] for r in robust],
            "n_robust_k2": [r[1] for r in robust],
        }
    )
    return progress, cost


def test_defence_rows_carry_scipys_wilson_intervals_and_a_robust_accuracy_verdict_only_when_disjoint(tmp_path):
    from scipy.stats import binomtest

    runs = []
    # (ASR before/after, attacked before/after, robust counts of 25 at budgets 1, 2 before and after)
    cases = (
        ([0.9, 0.1], [20, 20], ((5, 2), (24, 22))),  # robust 2/25 -> 22/25: disjoint, helped
        ([0.5, 0.4], [20, 18], ((10, 8), (12, 10))),  # overlapping
        ([0.9, 0.1], [20, 20], ((10, 8), (10, 8))),  # ASR fell (a less confident model) but robust accuracy did not
        ([0.25, 0.0], [12, 12], ((25, 25), (3, 0))),  # robust 25/25 -> 0/25: hurt
    )
    for i, (asr, n, robust) in enumerate(cases):
        progress, cost = _run_tables(asr, n, robust, scheme=["madry", "freelb", "adfar", "iterative"][i])
        progress.to_csv(tmp_path / f"p{i}.tsv", sep="\t", index=False)
        cost.to_csv(tmp_path / f"c{i}.tsv", sep="\t", index=False)
        runs.append(("cnn", str(tmp_path / f"p{i}.tsv"), str(tmp_path / f"c{i}.tsv")))
    table = defence_table(runs)
    assert table.defence.tolist() == ["madry", "freelb", "adfar", "iterative"]
    assert table.verdict.tolist() == ["helped", "unclear", "unclear", "hurt"]
    # 0 of 12 and 0 of 25: the interval starts exactly at 0 (wilson_interval itself, no clamp here); 25 of 25 ends at 1.
    assert table.asr_after[3] == 0 and table.asr_after_low[3] == 0.0
    assert table.robust_after_low[3] == 0.0 and table.robust_before_high[3] == 1.0
    expected = binomtest(18, 20).proportion_ci(confidence_level=0.95, method="wilson")
    assert table.asr_before_low[0] == pytest.approx(expected.low, abs=1e-12)
    assert table.asr_before_high[0] == pytest.approx(expected.high, abs=1e-12)
    after = binomtest(round(0.4 * 18), 18).proportion_ci(confidence_level=0.95, method="wilson")
    assert (table.asr_after_low[1], table.asr_after_high[1]) == pytest.approx((after.low, after.high), abs=1e-12)
    # Robust accuracy at every budget over the whole holdout of 25, the largest budget's repeated.
    assert table.max_edits.tolist() == [2, 2, 2, 2]
    assert table.robust_k1_before[0] == 5 / 25 and table.robust_k1_after[0] == 24 / 25
    assert table.robust_after[0] == table.robust_k2_after[0] == 22 / 25
    k1 = binomtest(24, 25).proportion_ci(confidence_level=0.95, method="wilson")
    assert (table.robust_k1_after_low[0], table.robust_k1_after_high[0]) == pytest.approx((k1.low, k1.high), abs=1e-12)
    sentence = defences_sentence(table)
    assert "at 2 edits" in sentence and "in 1 of 4 runs" in sentence
    assert "madry on cnn 0.08 [" in sentence and "&rarr; 0.88 [" in sentence


def test_the_sentence_counts_the_runs_that_helped_at_a_clean_cost_above_two_points(tmp_path):
    # Three runs that helped (robust 2/25 -> 22/25), losing 1, exactly 2 and 3 points of clean accuracy; a fourth
    # that did not help loses 10 points and is not counted among those that helped.
    runs = []
    cases = (((0.90, 0.89), ((5, 2), (24, 22))), ((0.90, 0.88), ((5, 2), (24, 22))), ((0.90, 0.87), ((5, 2), (24, 22))))
    cases += (((0.90, 0.80), ((10, 8), (10, 8))),)
    for i, (clean, robust) in enumerate(cases):
        progress, cost = _run_tables([0.9, 0.1], [20, 20], robust, scheme=["madry", "freelb", "adfar", "iterative"][i])
        progress["clean_accuracy"] = list(clean)
        progress.to_csv(tmp_path / f"p{i}.tsv", sep="\t", index=False)
        cost.to_csv(tmp_path / f"c{i}.tsv", sep="\t", index=False)
        runs.append(("cnn", str(tmp_path / f"p{i}.tsv"), str(tmp_path / f"c{i}.tsv")))
    table = defence_table(runs)
    assert table.verdict.tolist() == ["helped", "helped", "helped", "unclear"]
    assert clean_loss_exceeded(table).tolist() == [False, False, True, True]
    sentence = defences_sentence(table)
    assert "in 3 of 4 runs, 1 of those 3 at a cost of more than 2 points of clean accuracy (" in sentence
    assert "adfar on cnn 0.08 [" in sentence and "(helped; clean accuracy 0.900 &rarr; 0.870)" in sentence
    # No run helped: no cost clause.
    none = defences_sentence(table.iloc[3:])
    assert "in 0 of 1 runs (" in none and "at a cost" not in none


def test_the_ga_section_shows_the_defence_sentence_and_certificates_at_radii_one_to_five(tmp_path):
    from gfm_audit.robustness.ga.report import certified_html

    accuracy = pd.DataFrame(
        {
            "budget": range(8),
            "n_sequences": 10,
            "certified_accuracy": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2],
            "certified_ci_low": 0.1,
            "certified_ci_high": 0.95,
            "robust_accuracy": 0.5,
            "robust_ci_low": 0.2,
            "robust_ci_high": 0.8,
        }
    )
    page = certified_html(accuracy)
    import re

    assert [int(b) for b in re.findall(r"<tr><td>(\d+)</td>", page)] == [1, 2, 3, 4, 5]
    assert "<td>0.800</td>" in page and "<td>0.300</td>" not in page
    progress, cost = _run_tables([0.9, 0.1], [20, 20], ((5, 2), (24, 22)))
    progress.to_csv(tmp_path / "p.tsv", sep="\t", index=False)
    cost.to_csv(tmp_path / "c.tsv", sep="\t", index=False)
    html = defence_table_html(defence_table([("cnn", str(tmp_path / "p.tsv"), str(tmp_path / "c.tsv"))]))
    assert "in 1 of 1 runs" in html and "freelb on cnn 0.08 [" in html
    # The by-budget table: one cell per budget, before -> after with intervals, and clean accuracy.
    assert "<th>budget 1</th>" in html and "<th>budget 2</th>" in html and "0.800 \u2192 0.800" in html
    assert "0.20 [" in html and "\u2192 0.96 [" in html


# --- a transformers-class GFM head, saved and loaded as a user's checkpoint ---------------------------------------
def _saved_gpt2_head(tmp_path, train):
    """A real GPT-2 (1 layer, width 16, seeded random weights) on disk, given a new head and saved by the
    workflow's classifier step, then read back the way rule adversarial_training reads a trained classifier."""
    from gfm_audit.char_lm import save_char_causal_lm

    base = save_char_causal_lm(tmp_path / "gpt2", hidden=16, layers=1, heads=2, max_positions=320, weights_seed=0)
    spec = {"kind": "gfm_head", "num_labels": 2, "batch_size": 16, "seed": 0, "training": TRAINING}
    made = classifiers.new_classifier("gpt2_head", spec, base_folder=str(base), length=300, seed=0)
    made.fit(data.encode(train.sequences), train.labels, training={**TRAINING, "epochs": 1}, seed=0)
    classifiers.save_classifier(made, [0.0], tmp_path / "trained")
    clf = classifiers.load_classifier("gpt2_head", tmp_path / "trained", spec)
    assert isinstance(clf, classifiers.HFClassifier)
    frozen = {n: p.detach().clone() for n, p in clf.model.named_parameters() if not p.requires_grad}
    head = {n: p.detach().clone() for n, p in clf.model.named_parameters() if p.requires_grad}
    assert frozen and head
    return clf, frozen, head


def _changed(clf, before) -> list[bool]:
    after = dict(clf.model.named_parameters())
    return [not torch.equal(v, after[n].detach()) for n, v in before.items()]


def test_freelb_trains_and_predicts_on_a_transformers_head_loaded_from_disk(tmp_path):
    train, test = _gue(48, 16)
    clf, frozen, head = _saved_gpt2_head(tmp_path, train)
    check_scheme(clf, "freelb")
    c, p = settings_from_config({**ATTACK, "population": 8, "generations": 3, "patience": 2, "max_edits": 2})
    settings = {**SETTINGS, "holdout": 8, "train_sample": 8, "scheme": "freelb", "seed": 0}
    progress, cost = adversarial_training(
        clf, train, test, constraints=c, params=p, settings=settings, training={**TRAINING, "epochs": 1}
    )
    assert progress.iteration.tolist() == [0, 1] and cost.scheme.tolist() == ["freelb", "freelb"]
    assert {"n_robust_k1", "n_robust_k2"} <= set(cost.columns)
    assert not any(_changed(clf, frozen)) and any(_changed(clf, head))  # encoder frozen, head trained
    probs = clf.predict_proba(data.encode(test.sequences))
    assert probs.shape == (16, 2) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-6)


def test_adfar_trains_and_predicts_on_a_transformers_head_loaded_from_disk(tmp_path):
    train, test = _gue(48, 16)
    clf, frozen, head = _saved_gpt2_head(tmp_path, train)
    check_scheme(clf, "adfar")
    defended = AdfarClassifier(clf, train, settings={"adfar": ADFAR, "seed": 0})
    detector = defended.detector.weight.detach().clone()
    codes = data.encode(train.sequences)
    # Hand-made "adversarial" examples (every base changed): the round's GA would rarely flip a random-weight
    # head under delta, and the joint training is what is checked here.
    defended.adversarial, defended.adversarial_labels = (codes[:8] + 1) % 4, train.labels[:8]
    defended.fit_joint(codes, train.labels, settings={"epochs": 1, "learning_rate": 1e-2}, training=TRAINING, seed=0)
    assert not any(_changed(clf, frozen)) and any(_changed(clf, head))
    assert not torch.equal(detector, defended.detector.weight)
    probs = defended.predict_proba(data.encode(test.sequences))
    assert probs.shape == (16, 2) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert defended.detect(data.encode(test.sequences)).shape == (16,)
