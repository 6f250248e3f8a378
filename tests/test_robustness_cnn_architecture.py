"""The CNN's ``architecture`` option: the deep CNN trains, saves and reloads to the same predictions, and the basic
CNN keeps the layer layout (state-dict keys and shapes) and saved JSON of files written before the option."""

import json

import numpy as np
import pytest
from gfm_audit.errors import InputError
from gfm_audit.robustness.ga.classifiers import CLASSIFIER_FILE, CNNClassifier
from gfm_audit.robustness.ga.data import encode


def _data(n=48, length=40):
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGT"), length)) for _ in range(n)]
    return encode(seqs), np.array([s.count("CG") >= 2 for s in seqs], dtype=np.int64)


def test_deep_cnn_trains_saves_and_reloads_to_the_same_predictions(tmp_path):
    codes, labels = _data()
    clf = CNNClassifier("deep", 40, channels=8, kernel=5, architecture="deep", seed=0)
    losses = clf.fit(codes, labels, training=dict(epochs=5, learning_rate=0.01, batch_size=8, weight_decay=0.0), seed=0)
    assert losses[-1] < losses[0]
    clf.save(tmp_path)
    assert json.loads((tmp_path / CLASSIFIER_FILE).read_text())["architecture"] == "deep"
    again = CNNClassifier.load("deep", tmp_path)
    np.testing.assert_array_equal(again.predict_proba(codes), clf.predict_proba(codes))
    # Three convolutions and two dense layers: what makes it "deep" rather than a renamed basic CNN.
    kinds = [type(m).__name__ for m in again.model]
    assert kinds.count("Conv1d") == 3 and kinds.count("Linear") == 2


def test_basic_cnn_keeps_the_layout_and_json_of_files_written_before_the_option(tmp_path):
    clf = CNNClassifier("basic", 300, channels=64, kernel=9, seed=0)
    shapes = {k: tuple(v.shape) for k, v in clf.model.state_dict().items()}
    assert shapes == {
        "0.weight": (64, 4, 9),
        "0.bias": (64,),
        "3.weight": (64, 64, 9),
        "3.bias": (64,),
        "8.weight": (2, 64 * 18),
        "8.bias": (2,),
    }
    clf.save(tmp_path)
    assert json.loads((tmp_path / CLASSIFIER_FILE).read_text()) == {
        "kind": "cnn",
        "length": 300,
        "num_labels": 2,
        "channels": 64,
        "kernel": 9,
    }


def test_an_unknown_architecture_or_a_too_short_input_stops_in_one_line():
    with pytest.raises(InputError, match="architecture 'resnet' is not one of basic, deep"):
        CNNClassifier("x", 300, architecture="resnet")
    with pytest.raises(InputError, match="at least 16 bp, got 15"):
        CNNClassifier("x", 15, architecture="deep")
