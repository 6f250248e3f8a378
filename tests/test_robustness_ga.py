"""GA attack with hard biological constraints, its random baseline, and adversarial training."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import DEMO
from gfm_audit.errors import InputError
from gfm_audit.robustness.ga import attack, classifiers, constraints, data, search
from gfm_audit.robustness.ga.adversarial_training import adversarial_training
from gfm_audit.robustness.ga.attack import ga_attack_stage
from gfm_audit.robustness.ga.clean_training import train_classifier_stage
from gfm_audit.robustness.ga.splits import load_splits
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

GUE = DEMO / "gue_prom_300_all"
STOPS = ("TAA", "TAG", "TGA")
TRAINING = {"epochs": 6, "learning_rate": 1e-3, "batch_size": 64, "weight_decay": 0.01}


# --- independent reference checks (plain Python on strings, not the array code under test) -----------------
def hamming(a: str, b: str) -> int:
    return sum(x != y for x, y in zip(a, b, strict=True))


def gc(s: str) -> float:
    return (s.count("G") + s.count("C")) / len(s)


def motif_sites(s: str, motifs) -> set[tuple[int, str]]:
    rc = str.maketrans("ACGT", "TGCA")
    pats = {m for m in motifs} | {m.translate(rc)[::-1] for m in motifs}
    return {(i, p) for p in pats for i in range(len(s) - len(p) + 1) if s[i : i + len(p)] == p}


def in_frame_stops(s: str, frame: int) -> set[int]:
    return {i for i in range(frame, len(s) - 2, 3) if s[i : i + 3] in STOPS}


def assert_obeys(original: str, cand: str, c: constraints.Constraints) -> None:
    assert hamming(original, cand) <= c.max_edits
    assert abs(gc(cand) - gc(original)) <= c.gc_tolerance + 1e-9
    assert motif_sites(original, c.protected_motifs) <= motif_sites(cand, c.protected_motifs)
    if c.forbid_new_motifs:
        assert motif_sites(cand, c.protected_motifs) <= motif_sites(original, c.protected_motifs)
    if c.coding:
        assert in_frame_stops(cand, c.frame) <= in_frame_stops(original, c.frame)


def gc_lover(codes: np.ndarray) -> np.ndarray:
    """A real (if simple) classifier: P(class 1) rises with GC content and with A/T in the first half."""
    length = codes.shape[1]
    gcs = ((codes == 1) | (codes == 2)).mean(axis=1)
    at_front = ((codes[:, : length // 2] == 0) | (codes[:, : length // 2] == 3)).mean(axis=1)
    z = 12 * (gcs - 0.5) + 4 * (at_front - 0.5)
    p1 = 1 / (1 + np.exp(-z))
    return np.stack([1 - p1, p1], axis=1)


class Recorder:
    """Wraps a predict function and keeps every candidate it was asked to score."""

    def __init__(self, predict):
        self.predict, self.seen = predict, []

    def __call__(self, codes):
        self.seen.append(codes.copy())
        return self.predict(codes)


sequences = st.text(alphabet="ACGT", min_size=24, max_size=90)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seq=sequences,
    motif_insert=st.sampled_from(["TATAAA", "CCAAT", "GGGCGG", "TTTATA", ""]),
    max_edits=st.integers(1, 6),
    gc_tol=st.sampled_from([0.0, 0.02, 0.05, 0.2]),
    coding=st.booleans(),
    frame=st.integers(0, 2),
    forbid_new=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_every_scored_and_reported_candidate_obeys_every_constraint(
    seq, motif_insert, max_edits, gc_tol, coding, frame, forbid_new, seed
):
    original = seq[: len(seq) // 2] + motif_insert + seq[len(seq) // 2 :]
    c = constraints.Constraints(
        max_edits=max_edits,
        gc_tolerance=gc_tol,
        coding=coding,
        frame=frame,
        protected_motifs=("TATAAA", "CCAAT", "GGGCGG"),
        forbid_new_motifs=forbid_new,
    )
    codes = data.encode([original])
    label = np.array([int(gc_lover(codes)[0].argmax())])
    p_before = gc_lover(codes)[np.arange(1), label]
    protected = constraints.protected_mask([original], c.protected_motifs)
    if not constraints.any_single_substitution(codes, protected, c)[0]:
        return
    rec = Recorder(gc_lover)
    params = search.GAParams(population=12, generations=8, patience=3, delta=0.05)
    rng = np.random.default_rng(seed)
    ga = search.genetic_attack(
        rec, codes, label, p_true_before=p_before, protected=protected, constraints=c, params=params, rng=rng
    )
    ga = search.prune_edits(
        rec, ga, originals=codes, labels=label, protected=protected, constraints=c, delta=params.delta
    )
    rnd = search.random_attack(
        rec,
        codes,
        label,
        p_true_before=p_before,
        protected=protected,
        constraints=c,
        budgets=np.array([60]),
        batch=12,
        delta=params.delta,
        rng=rng,
    )
    for cand in data.decode(np.concatenate(rec.seen)) + data.decode(ga.adversarial) + data.decode(rnd.adversarial):
        assert_obeys(original, cand, c)
    assert rnd.queries[0] <= 60


@pytest.mark.parametrize("forbid_new", [False, True])
def test_is_valid_agrees_with_a_plain_string_check_on_random_candidates(forbid_new):
    rng = np.random.default_rng(3)
    original = "ATGTATAAACCAATGGGCGGTTACGATGCATGCAAGCTTGACGGTACCA"
    c = constraints.Constraints(max_edits=3, gc_tolerance=0.03, coding=True, frame=1, forbid_new_motifs=forbid_new)
    codes = data.encode([original])
    cands = np.repeat(codes[:, None, :], 400, axis=1)
    for i in range(400):
        pos = rng.choice(len(original), size=rng.integers(0, 5), replace=False)
        cands[0, i, pos] = rng.integers(0, 4, size=pos.size)
    got = constraints.is_valid(cands, codes, constraints.protected_mask([original], c.protected_motifs), constraints=c)[
        0
    ]
    expected = []
    for cand in data.decode(cands[0]):
        try:
            assert_obeys(original, cand, c)
            expected.append(True)
        except AssertionError:
            expected.append(False)
    assert got.tolist() == expected
    assert 0 < got.sum() < 400


def test_forbid_new_motifs_refuses_a_candidate_that_writes_a_protected_motif_on_either_strand():
    motifs = ("TATAAA", "CCAAT")
    original = "GATAAAGCCAATC"  # one substitution (G->T at 0) from TATAAA; CCAAT present and protected
    cands = data.encode(["TATAAAGCCAATC", "GATAAAGCCAATG"])[None]  # writes TATAAA; an edit outside any motif
    protected = constraints.protected_mask([original], motifs)
    on = constraints.Constraints(gc_tolerance=1.0, protected_motifs=motifs, forbid_new_motifs=True)
    off = constraints.Constraints(gc_tolerance=1.0, protected_motifs=motifs)
    codes = data.encode([original])
    assert constraints.is_valid(cands, codes, protected, constraints=off)[0].tolist() == [True, True]
    assert constraints.is_valid(cands, codes, protected, constraints=on)[0].tolist() == [False, True]
    # TTTATA, TATAAA's reverse complement, written by one substitution (C->A at 6), is refused as well.
    rc_original = data.encode(["CTTTATCC"])
    rc_cand = data.encode(["CTTTATAC"])[None]
    free = np.zeros(rc_original.shape, dtype=bool)
    assert constraints.is_valid(rc_cand, rc_original, free, constraints=off)[0, 0]
    assert not constraints.is_valid(rc_cand, rc_original, free, constraints=on)[0, 0]


def test_the_attack_block_turns_forbid_new_motifs_on_and_a_block_without_the_key_leaves_it_off():
    on, _ = attack.settings_from_config({**ATTACK, "forbid_new_motifs": True})
    off, _ = attack.settings_from_config(ATTACK)
    assert on.forbid_new_motifs and not off.forbid_new_motifs


def test_transitions_are_proposed_with_their_configured_weight():
    rng = np.random.default_rng(0)
    originals = np.repeat(np.arange(4, dtype=np.uint8), 25_000)
    new = constraints.propose_bases(originals, rng, transition_weight=3.0)
    assert (new != originals).all()
    share = constraints.is_transition(originals, new).mean()
    assert share == pytest.approx(3 / 5, abs=0.01)
    assert data.decode(constraints.propose_bases(data.encode(["AG"]), rng, 1e9))[0] == "GA"


@pytest.mark.parametrize(
    ("probs", "label", "before", "expected", "why"),
    [
        ([0.3, 0.7], 0, 0.9, True, "flipped and dropped 0.6"),
        ([0.45, 0.55], 0, 0.55, False, "flipped but dropped only 0.10 < delta"),
        ([0.7, 0.3], 0, 0.95, False, "dropped 0.25 but still predicted correctly"),
        ([0.4, 0.35, 0.25], 0, 0.9, False, "three classes: the true class is still the arg max"),
        ([0.3, 0.45, 0.25], 0, 0.9, True, "three classes: arg max moved to class 1"),
        ([0.6, 0.4], 1, 0.8, True, "label 1: p_true 0.8 -> 0.4"),
        ([0.5, 0.3, 0.2], 1, 0.5, True, "drop of exactly delta counts"),
    ],
)
def test_success_needs_a_label_flip_and_a_true_class_drop_of_delta(probs, label, before, expected, why):
    # Through the scorer, as the searches do: it extracts p_true and the arg-max class from the probabilities.
    labels = np.array([label])
    p_true, pred = search._Scorer(lambda codes: np.array([probs]), labels, 1)(np.arange(1), np.zeros((1, 1, 4)))
    got = search.successful(p_true, pred, labels[:, None], p_true_before=np.array([[before]]), delta=0.2)
    assert bool(got[0, 0]) is expected, why


def test_an_unscored_candidate_is_never_a_success():
    assert not search.successful(
        np.array([np.inf]), np.array([-1]), np.array([0]), p_true_before=np.array([0.9]), delta=0.0
    )[0]


@pytest.mark.parametrize("real", [True, False])
def test_the_ga_the_random_baseline_and_pruning_all_decide_success_by_successful(monkeypatch, real):
    """Any edit flips this classifier, so every search succeeds, unless ``successful`` says otherwise."""
    codes = data.encode(["ACGTACGTACGTACGTACGT"] * 2)
    labels, p_before = np.zeros(2, dtype=np.int64), np.full(2, 0.5)
    c = constraints.Constraints(max_edits=4, gc_tolerance=1.0, protected_motifs=())
    protected = np.zeros(codes.shape, dtype=bool)

    def predict(x):  # the originals: 0.5 / 0.5 (class 0); anything edited: class 1
        return np.where((x != codes[:1]).any(axis=1)[:, None], [[0.2, 0.8]], [[0.5, 0.5]])

    if not real:
        monkeypatch.setattr(
            search, "successful", lambda p_true, *args, **kwargs: np.zeros(np.shape(p_true), dtype=bool)
        )
    params = search.GAParams(population=8, generations=3, patience=3, delta=0.1)
    rng = np.random.default_rng(0)
    ga = search.genetic_attack(
        predict, codes, labels, p_true_before=p_before, protected=protected, constraints=c, params=params, rng=rng
    )
    rnd = search.random_attack(
        predict,
        codes,
        labels,
        p_true_before=p_before,
        protected=protected,
        constraints=c,
        budgets=np.array([20, 20]),
        batch=4,
        delta=0.1,
        rng=rng,
    )
    assert ga.success.tolist() == rnd.success.tolist() == [real, real]
    three_edits = codes.copy()
    three_edits[:, :3] = (codes[:, :3] + 1) % 4
    found = search.AttackResult(three_edits, p_before.copy(), np.full(2, 0.2), np.ones(2, bool), np.ones(2, int))
    pruned = search.prune_edits(
        predict, found, originals=codes, labels=labels, protected=protected, constraints=c, delta=0.1
    )
    # Every single-edit reversion still flips the class, so the real test prunes down to one edit.
    assert (pruned.adversarial != codes).sum(axis=1).tolist() == ([1, 1] if real else [3, 3])


def _subset_csv(src: Path, dst: Path, rows: list[int], edit=None) -> Path:
    with open(src, newline="") as fh:
        table = list(csv.DictReader(fh))
    with open(dst, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["sequence", "label"])
        writer.writeheader()
        for i in rows:
            row = dict(table[i])
            if edit:
                row = edit(i, row)
            writer.writerow(row)
    return dst


@pytest.fixture(scope="module")
def trained_cnn(tmp_path_factory):
    """A CNN trained on 3,000 real GUE prom_300_all dev rows (about 75% test accuracy); 400 real test rows."""
    tmp = tmp_path_factory.mktemp("cnn")
    train_csv = _subset_csv(GUE / "dev.csv", tmp / "train.csv", list(range(3000)))
    test_csv = _subset_csv(GUE / "test.csv", tmp / "test.csv", list(range(400, 800)))
    spec = {
        "kind": "cnn",
        "num_labels": 2,
        "channels": 32,
        "kernel": 9,
        "batch_size": 512,
        "seed": 0,
        "training": TRAINING,
    }
    train_classifier_stage(
        "cnn",
        spec,
        train_csv=str(train_csv),
        test_csv=str(test_csv),
        non_acgt="skip",
        base_folder=None,
        out_dir=tmp / "clf",
    )
    return spec, tmp


ATTACK = {
    "n_sequences": 60,
    "max_edits": 5,
    "gc_tolerance": 0.05,
    "protected_motifs": ["TATAAA", "CCAAT", "GGGCGG"],
    "coding": False,
    "frame": 0,
    "transition_weight": 2.0,
    "delta": 0.2,
    "population": 30,
    "generations": 40,
    "crossover": 0.9,
    "mutation": 0.3,
    "tournament": 3,
    "elitism": 2,
    "patience": 8,
    "seed": 0,
}


def test_ga_beats_the_random_baseline_on_real_promoters_with_the_same_queries(trained_cnn):
    spec, tmp = trained_cnn
    out = tmp / "beats"
    out.mkdir()
    ga_attack_stage(
        "cnn",
        spec,
        folder=str(tmp / "clf"),
        test_csv=str(tmp / "test.csv"),
        non_acgt="skip",
        attack=ATTACK,
        adversarial_tsv=out / "adv.tsv",
        summary_tsv=out / "sum.tsv",
    )
    import pandas as pd

    summary = pd.read_csv(out / "sum.tsv", sep="\t").set_index("attack")
    adv = pd.read_csv(out / "adv.tsv", sep="\t")
    assert list(adv.columns) == attack.ADVERSARIAL_COLUMNS
    assert list(summary.reset_index().columns) == attack.SUMMARY_COLUMNS
    assert summary.loc["ga", "asr"] > summary.loc["random", "asr"] + 0.1
    # The baseline got (about) the GA's queries: its budget excludes only the pruning step's queries.
    assert summary.loc["random", "mean_queries"] <= summary.loc["ga", "mean_queries"] + 1
    # ASR by budget is non-decreasing and ends at the headline ASR.
    curve = [summary.loc[f"ga_k{k}", "asr"] for k in range(1, 6)]
    assert curve == sorted(curve) and curve[-1] == summary.loc["ga", "asr"]
    won = adv[adv.success]
    assert ((won.p_true_before - won.p_true_after) >= 0.2 - 1e-6).all() and (won.p_true_after < 0.5).all()
    c = constraints.Constraints(max_edits=5)
    for row in adv.itertuples():
        assert_obeys(row.original, row.adversarial, c)
        assert row.edits == hamming(row.original, row.adversarial)
        tr = sum(
            1
            for a, b in zip(row.original, row.adversarial, strict=True)
            if a != b and {a, b} in ({"A", "G"}, {"C", "T"})
        )
        assert row.n_transitions == tr


def test_only_correctly_classified_sequences_are_attacked(trained_cnn):
    spec, tmp = trained_cnn
    clf = classifiers.load_classifier("cnn", tmp / "clf", spec)
    test = data.read_labelled_csv(tmp / "test.csv").subset(range(80))
    pred = clf.predict_proba(data.encode(test.sequences)).argmax(axis=1)
    c, p = attack.settings_from_config({**ATTACK, "generations": 2})
    run = attack.attack_sequences(clf, test, constraints=c, params=p, seed=0, baseline=False)
    assert run.attacked.ids == [i for i, ok in zip(test.ids, pred == test.labels, strict=True) if ok]
    assert len(run.attacked) < len(test)


def test_the_same_seed_gives_byte_identical_tables_and_another_seed_differs(trained_cnn):
    spec, tmp = trained_cnn
    small = {**ATTACK, "n_sequences": 25, "generations": 15}
    outputs = []
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        out = tmp / f"det-{name}"
        out.mkdir()
        ga_attack_stage(
            "cnn",
            spec,
            folder=str(tmp / "clf"),
            test_csv=str(tmp / "test.csv"),
            non_acgt="skip",
            attack={**small, "seed": seed},
            adversarial_tsv=out / "adv.tsv",
            summary_tsv=out / "sum.tsv",
        )
        outputs.append((out / "adv.tsv").read_bytes() + (out / "sum.tsv").read_bytes())
    assert outputs[0] == outputs[1]
    assert outputs[0] != outputs[2]


def test_adversarial_training_never_trains_on_a_test_sequence(trained_cnn, tmp_path):
    spec, tmp = trained_cnn
    # Plant a test sequence in the training file: load_splits must drop it.
    test_rows = list(csv.DictReader(open(tmp / "test.csv")))
    planted = _subset_csv(
        GUE / "dev.csv", tmp_path / "train.csv", list(range(300)), edit=lambda i, r: test_rows[5] if i == 7 else r
    )
    train, test = load_splits(str(planted), str(tmp / "test.csv"), "skip")
    assert len(train) == 299 and test_rows[5]["sequence"] not in train.sequences
    clf = classifiers.load_classifier("cnn", tmp / "clf", spec)
    fitted: list[np.ndarray] = []
    real_fit = clf.fit
    clf.fit = lambda codes, labels, training, seed: (
        fitted.append(codes.copy()),
        real_fit(codes, labels, training=training, seed=seed),
    )[1]
    c, p = attack.settings_from_config({**ATTACK, "generations": 10})
    progress, cost = adversarial_training(
        clf,
        train,
        test,
        constraints=c,
        params=p,
        settings={"iterations": 2, "train_sample": 60, "holdout": 40, "epochs": 1, "learning_rate": 5e-4, "seed": 0},
        training=TRAINING,
    )
    assert len(fitted) == 2
    test_set = set(test.sequences)
    trained_on = {s for codes in fitted for s in data.decode(codes)}
    assert not trained_on & test_set
    # Adversarial sequences (not in the clean training set) were added, and the table counts them.
    added = trained_on - set(train.sequences)
    assert len(added) == progress.n_adversarial.iloc[-1] > 0
    assert progress.iteration.tolist() == [0, 1, 2]
    assert (progress.robust_accuracy <= progress.clean_accuracy.max() + 0.2).all()


# --- bad inputs ---------------------------------------------------------------------------------------
def test_non_acgt_rows_are_skipped_with_a_count_or_refused(tmp_path):
    bad = _subset_csv(
        GUE / "test.csv",
        tmp_path / "t.csv",
        list(range(10)),
        edit=lambda i, r: {**r, "sequence": "N" + r["sequence"][1:]} if i in (2, 5) else r,
    )
    skipped = data.read_labelled_csv(bad, "skip")
    assert len(skipped) == 8 and skipped.skipped_non_acgt == 2
    assert "t:3" not in skipped.ids and "t:4" in skipped.ids
    with pytest.raises(InputError, match=r"t\.csv row 3: sequence has non-ACGT character\(s\) N; .*non_acgt: skip"):
        data.read_labelled_csv(bad, "refuse")
    iupac = _subset_csv(
        GUE / "test.csv",
        tmp_path / "u.csv",
        [0],
        edit=lambda i, r: {**r, "sequence": r["sequence"][:10] + "R" + r["sequence"][11:]},
    )
    with pytest.raises(InputError, match="non-ACGT character"):
        data.read_labelled_csv(iupac, "refuse")


def test_a_label_outside_the_classifiers_classes_is_refused(trained_cnn, tmp_path):
    spec, tmp = trained_cnn
    bad = _subset_csv(
        GUE / "test.csv", tmp_path / "t.csv", list(range(10)), edit=lambda i, r: {**r, "label": "2"} if i == 4 else r
    )
    message = r"t\.csv row 5: label 2 is outside the classes of classifier 'cnn' \(0\.\.1\)"
    with pytest.raises(InputError, match=message):
        ga_attack_stage(
            "cnn",
            spec,
            folder=str(tmp / "clf"),
            test_csv=str(bad),
            non_acgt="skip",
            attack=ATTACK,
            adversarial_tsv=tmp_path / "a.tsv",
            summary_tsv=tmp_path / "s.tsv",
        )
    assert not list(tmp_path.glob("*.tsv"))


def test_a_sequence_of_another_length_is_refused_by_a_fixed_length_classifier(trained_cnn, tmp_path):
    spec, tmp = trained_cnn
    bad = _subset_csv(
        GUE / "test.csv",
        tmp_path / "t.csv",
        list(range(10)),
        edit=lambda i, r: {**r, "sequence": r["sequence"][:299]} if i == 6 else r,
    )
    with pytest.raises(InputError, match=r"t\.csv row 7: sequence is 299 bp but classifier 'cnn' takes exactly 300 bp"):
        ga_attack_stage(
            "cnn",
            spec,
            folder=str(tmp / "clf"),
            test_csv=str(bad),
            non_acgt="skip",
            attack=ATTACK,
            adversarial_tsv=tmp_path / "a.tsv",
            summary_tsv=tmp_path / "s.tsv",
        )
    assert not list(tmp_path.glob("*.tsv"))


def test_mixed_lengths_in_training_data_are_refused_before_training(tmp_path):
    bad = _subset_csv(
        GUE / "dev.csv",
        tmp_path / "train.csv",
        list(range(10)),
        edit=lambda i, r: {**r, "sequence": r["sequence"][:250]} if i == 3 else r,
    )
    test_csv = _subset_csv(GUE / "test.csv", tmp_path / "test.csv", list(range(5)))
    spec = {"kind": "cnn", "seed": 0, "training": TRAINING}
    with pytest.raises(InputError, match=r"train\.csv row 4: sequence is 250 bp, but row 1 is 300 bp"):
        train_classifier_stage(
            "cnn",
            spec,
            train_csv=str(bad),
            test_csv=str(test_csv),
            non_acgt="skip",
            base_folder=None,
            out_dir=tmp_path / "clf",
        )
    assert not (tmp_path / "clf").exists()


def test_constraints_that_make_success_impossible_are_reported_not_looped(trained_cnn, tmp_path):
    spec, tmp = trained_cnn
    impossible = {**ATTACK, "protected_motifs": ["A", "C", "G", "T"]}
    with pytest.raises(InputError, match=r"allow no substitution in any of the \d+ sequences .* relax them"):
        ga_attack_stage(
            "cnn",
            spec,
            folder=str(tmp / "clf"),
            test_csv=str(tmp / "test.csv"),
            non_acgt="skip",
            attack=impossible,
            adversarial_tsv=tmp_path / "a.tsv",
            summary_tsv=tmp_path / "s.tsv",
        )
    assert not list(tmp_path.glob("*.tsv"))
    # GC tolerance 0 still allows A<->T and C<->G swaps: not impossible, and every result keeps GC exactly.
    c = constraints.Constraints(max_edits=2, gc_tolerance=0.0)
    codes = data.encode(["ACGTACGTTTGACCA"])
    assert constraints.any_single_substitution(codes, np.zeros_like(codes, dtype=bool), c).all()


# --- Hugging Face classifiers: a GFM with a new head, and a user's checkpoint -----------------------------
def test_gfm_head_trains_only_the_head_and_reloads_through_the_huggingface_path(tmp_path):
    import torch
    from gfm_audit.char_lm import save_char_causal_lm

    base = save_char_causal_lm(tmp_path / "gfm", hidden=32, layers=1, heads=2, max_positions=400, weights_seed=0)
    spec = {
        "kind": "gfm_head",
        "model": "gfm",
        "num_labels": 2,
        "batch_size": 32,
        "seed": 0,
        "training": {**TRAINING, "epochs": 1, "batch_size": 16},
    }
    clf = classifiers.new_classifier("head", spec, base_folder=str(base), length=300, seed=0)
    before = {n: p.detach().clone() for n, p in clf.model.named_parameters()}
    trainable = {n for n, p in clf.model.named_parameters() if p.requires_grad}
    assert trainable and all(not n.startswith("transformer.") for n in trainable)
    test = data.read_labelled_csv(GUE / "test.csv").subset(range(64))
    codes = data.encode(test.sequences)
    clf.fit(codes, test.labels, training=spec["training"], seed=0)
    after = dict(clf.model.named_parameters())
    for name, value in before.items():
        changed = not torch.equal(value, after[name].detach())
        assert changed == (name in trainable), name
    classifiers.save_classifier(clf, [0.0], tmp_path / "saved")
    reloaded = classifiers.load_classifier("head", tmp_path / "saved", {"batch_size": 7})
    assert isinstance(reloaded, classifiers.HFClassifier)
    np.testing.assert_allclose(reloaded.predict_proba(codes[:20]), clf.predict_proba(codes[:20]), atol=1e-5)
    # Micro-batch size does not change the answer (padding is masked).
    np.testing.assert_allclose(reloaded.predict_proba(codes[:20]).sum(axis=1), 1.0, atol=1e-6)


def test_a_users_masked_lm_classifier_folder_is_attacked_as_is(tmp_path):
    _save_masked_classifier(tmp_path / "user")
    clf = classifiers.load_classifier("user", tmp_path / "user", {})
    test = data.read_labelled_csv(GUE / "test.csv").subset(range(30))
    c, p = attack.settings_from_config({**ATTACK, "generations": 3, "population": 8, "delta": 0.01})
    run = attack.attack_sequences(clf, test, constraints=c, params=p, seed=0)
    table = attack.adversarial_table(run)
    assert len(table) == len(run.attacked) > 0
    assert (table.queries > 1).all()
    for row in table.itertuples():
        assert_obeys(row.original, row.adversarial, c)
    assert re.fullmatch(r"test:\d+", table.seq_id.iloc[0])


# --- a training or test file with one class, a CSV with a byte-order mark ------------------------------
def _rows_with_label(src: Path, dst: Path, label: str, n: int) -> Path:
    with open(src, newline="") as fh:
        rows = [i for i, r in enumerate(csv.DictReader(fh)) if r["label"] == label][:n]
    return _subset_csv(src, dst, rows)


@pytest.mark.parametrize("one_class", ["train", "test"])
def test_a_training_or_test_file_with_one_class_stops_naming_the_file_and_its_label(tmp_path, one_class):
    files = {
        "train": _subset_csv(GUE / "dev.csv", tmp_path / "train.csv", list(range(40))),
        "test": _subset_csv(GUE / "test.csv", tmp_path / "test.csv", list(range(20))),
    }
    src = GUE / ("dev.csv" if one_class == "train" else "test.csv")
    files[one_class] = _rows_with_label(src, tmp_path / f"{one_class}.csv", "1", 30)
    spec = {"kind": "cnn", "seed": 0, "training": {**TRAINING, "epochs": 1}}
    with pytest.raises(InputError) as err:
        train_classifier_stage(
            "cnn",
            spec,
            train_csv=str(files["train"]),
            test_csv=str(files["test"]),
            non_acgt="skip",
            base_folder=None,
            out_dir=tmp_path / "clf",
        )
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{files[one_class]}: every one of its 30 rows has label 1;")
    assert "both classes" in message
    assert not (tmp_path / "clf").exists()


def test_a_csv_with_a_utf8_byte_order_mark_reads_like_one_without(tmp_path):
    plain = _subset_csv(GUE / "test.csv", tmp_path / "plain.csv", list(range(10)))
    with_bom = tmp_path / "bom.csv"
    with_bom.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    got, expected = data.read_labelled_csv(with_bom), data.read_labelled_csv(plain)
    assert got.sequences == expected.sequences and got.labels.tolist() == expected.labels.tolist()


def test_a_csv_that_is_not_utf8_text_stops_naming_the_file(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("sequence,label\nACGT,0\n# caf\u00e9\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"latin1\.csv: not UTF-8 text .*save it as UTF-8"):
        data.read_labelled_csv(path)


# --- a user's checkpoint that pickles code, or that has no classification head ---------------------------
def _save_masked_classifier(folder: Path) -> Path:
    """A tiny ESM sequence classifier with the character tokenizer, as a user would save one."""
    import torch
    from gfm_audit.char_lm import char_tokenizer
    from transformers import EsmConfig, EsmForSequenceClassification

    tok = char_tokenizer()
    config = EsmConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=400,
        position_embedding_type="rotary",
        pad_token_id=tok.pad_token_id,
        mask_token_id=tok.mask_token_id,
        num_labels=2,
        architectures=["EsmForSequenceClassification"],
    )
    torch.manual_seed(0)
    EsmForSequenceClassification(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


class _MakesADirectory:
    """Unpickling this runs os.mkdir: the code a pickled checkpoint can carry."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        import os

        return (os.mkdir, (self.path,))


def test_a_huggingface_classifier_whose_weights_pickle_code_is_refused_in_one_line_without_running_it(tmp_path):
    import torch
    from safetensors.torch import load_file

    folder = _save_masked_classifier(tmp_path / "user")
    state = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    ran = tmp_path / "the pickled code ran"
    torch.save({**state, "payload": _MakesADirectory(ran)}, folder / "pytorch_model.bin")
    with pytest.raises(InputError) as err:
        classifiers.load_classifier("user", folder, {})
    message = str(err.value)
    assert "\n" not in message and "weights_only" not in message
    owner = "classifier 'user' (robustness.ga.classifiers.user)"
    assert message.startswith(f"{owner}: {folder / 'pytorch_model.bin'} is not a plain state dict")
    assert "pickles the Python object" in message and "not loaded" in message
    assert "model.safetensors" in message and "torch.save(model.state_dict(), path)" in message
    assert not ran.exists()
    # The same weights as a plain state dict load.
    torch.save(state, folder / "pytorch_model.bin")
    assert classifiers.load_classifier("user", folder, {}).num_labels == 2


@pytest.mark.parametrize("checkpoint", ["causal LM", "classifier without its head"])
def test_a_huggingface_classifier_without_a_classification_head_names_the_head_and_the_classifier_key(
    tmp_path, checkpoint
):
    from gfm_audit.char_lm import save_char_causal_lm
    from safetensors.torch import load_file, save_file

    if checkpoint == "causal LM":
        folder = save_char_causal_lm(tmp_path / "user", hidden=16, layers=1, heads=2, max_positions=400, weights_seed=0)
        head = "score.weight"
    else:
        folder = _save_masked_classifier(tmp_path / "user")
        state = load_file(folder / "model.safetensors")
        save_file({k: v for k, v in state.items() if k.startswith("esm.")}, folder / "model.safetensors")
        head = "classifier.dense.bias, classifier.dense.weight, classifier.out_proj.bias and 1 more"
    with pytest.raises(InputError) as err:
        classifiers.load_classifier("user", folder, {})
    message = str(err.value)
    assert "\n" not in message and "allow_missing_weights" not in message
    assert message.startswith(f"classifier 'user' (robustness.ga.classifiers.user): {folder} has no trained")
    assert f"lack {head})" in message
    assert "robustness.ga.classifiers.user.kind: gfm_head" in message
