"""benchmarks/adversarial_fit.py: the CpG / G+C counts against hand counts, the robust rows on a small real CNN,
and the rendered table's training - held-out column."""

import importlib.util

import numpy as np
import pandas as pd
import pytest
from conftest import REPO
from gfm_audit.robustness.ga.classifiers import CNNClassifier
from gfm_audit.robustness.ga.constraints import Constraints
from gfm_audit.robustness.ga.data import LabelledSequences, encode

spec = importlib.util.spec_from_file_location("adversarial_fit", REPO / "benchmarks" / "adversarial_fit.py")
fit = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fit)


def test_cpg_and_gc_counts_match_hand_counts():
    codes = encode(["ACGCGT", "CGCGCG", "AATTAA", "GCGCAT"])
    # CpG = a C followed by a G: ACGCGT has CG at 1-2 and 3-4; CGCGCG three; none; GCGCAT one (positions 1-2).
    assert fit.cpg_count(codes).tolist() == [2, 3, 0, 1]
    assert fit.gc_count(codes).tolist() == [4, 6, 0, 4]


@pytest.fixture(scope="module")
def small_cnn_and_data():
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGT"), 32)) for _ in range(40)]
    labels = np.array([s.count("CG") >= 2 for s in seqs], dtype=np.int64)
    data = LabelledSequences("toy.csv", [f"s{i}" for i in range(40)], seqs, labels, 0)
    clf = CNNClassifier("toy", 32, seed=0, channels=8, kernel=3)
    clf.fit(encode(seqs), labels, training=dict(epochs=20, learning_rate=0.01, batch_size=8, weight_decay=0.0), seed=0)
    return clf, data


def test_robust_rows_never_exceed_clean_accuracy_and_never_rise_with_the_budget(small_cnn_and_data):
    clf, data = small_cnn_and_data
    constraints = Constraints(max_edits=3, gc_tolerance=1.0, protected_motifs=())
    rows = pd.DataFrame(fit.robust_rows(clf, data, constraints, seed=0, variant="m", sample="held out"))
    assert rows.budget.tolist() == [1, 2, 3]
    assert (rows.robust_accuracy <= rows.clean_accuracy + 1e-12).all()
    assert (np.diff(rows.robust_accuracy) <= 0).all()
    # Constraints are off but for 3 edits, and the label is a CpG count: 3 edits can move it, so some must flip.
    assert rows.robust_accuracy.iloc[-1] < rows.clean_accuracy.iloc[-1]


def test_edit_effects_count_the_broken_sequences_per_label(small_cnn_and_data):
    clf, data = small_cnn_and_data
    constraints = Constraints(max_edits=3, gc_tolerance=1.0, protected_motifs=())
    effects = pd.DataFrame(fit.edit_effects(clf, data, constraints, seed=0, variant="m"))
    rows = pd.DataFrame(fit.robust_rows(clf, data, constraints, seed=0, variant="m", sample="held out"))
    broken_at_full_budget = round((rows.clean_accuracy.iloc[-1] - rows.robust_accuracy.iloc[-1]) * len(data.labels))
    assert effects.broken.sum() == broken_at_full_budget
    assert sorted(effects.label) == [0, 1]
    assert (effects.cpg_up + effects.cpg_down <= effects.broken).all()


def test_render_reports_training_minus_held_out_at_the_full_budget():
    fit_rows = pd.DataFrame(
        [
            dict(seed=3, variant="m", sample=s, n=300, budget=b, clean_accuracy=c, robust_accuracy=r)
            for s, c, rs in (("training rows", 0.9, (0.8, 0.6)), ("held out", 0.85, (0.7, 0.5)))
            for b, r in zip((1, 2), rs, strict=True)
        ]
    )
    effects = pd.DataFrame(
        [
            dict(
                seed=3,
                variant="m",
                label=0,
                n_label=150,
                cpg_mean=19.0,
                broken=4,
                cpg_change_mean=-1.5,
                cpg_up=0,
                cpg_down=4,
                gc_change_mean=1.0,
            )
        ]
    )
    text = fit.render(fit_rows, effects)
    assert "| 3 | `m` | 0.600 (0.900) | 0.500 (0.850) | +0.100 |" in text
    assert "| 3 | `m` | 0 | 19.0 | 4 | 0 / 4 | -1.50 | +1.00 |" in text
