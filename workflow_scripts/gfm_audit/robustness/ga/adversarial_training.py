"""Iterative adversarial training (Madry et al., ICLR 2018, with the GA as the inner attack).

Each iteration attacks the current model on a fresh seeded sample of the
*training* split, adds the successful adversarial sequences with their true
labels to the training set, and fine-tunes (only the head when the encoder is
frozen). After every iteration the model is measured on the clean test split
and on a fixed held-out attack set drawn from the test split, which is never
trained on. The earlier GA study this attack follows made adversarial
examples from the test set and then trained and evaluated on that same set;
here the splits never meet.

robust accuracy = held-out sequences classified correctly and not flipped by the GA / held-out sequences.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .attack import attack_sequences, sample_rows
from .classifiers import Classifier, accuracy
from .constraints import Constraints
from .data import LabelledSequences, encode
from .search import GAParams

log = logging.getLogger(__name__)

PROGRESS_COLUMNS = [
    "iteration",
    "train_size",
    "n_adversarial",
    "clean_accuracy",
    "robust_accuracy",
    "asr",
    "n_attacked",
]


def _holdout_metrics(clf, holdout, constraints, params, seed) -> tuple[float, float, int]:
    run = attack_sequences(clf, holdout, constraints=constraints, params=params, seed=seed, baseline=False, prune=False)
    flipped = int(run.ga.success.sum())
    n_attacked = len(run.attacked)
    robust = (n_attacked - flipped) / len(holdout)
    return robust, (flipped / n_attacked if n_attacked else float("nan")), n_attacked


def adversarial_training(
    clf: Classifier,
    train: LabelledSequences,
    test: LabelledSequences,
    *,
    constraints: Constraints,
    params: GAParams,
    settings: Mapping[str, Any],
    training: Mapping[str, Any],
) -> pd.DataFrame:
    """Run ``settings['iterations']`` rounds; returns the progress table (iteration 0 = before any)."""
    seed = settings["seed"]
    holdout = test.subset(sample_rows(len(test), settings["holdout"], seed))
    test_codes = encode(test.sequences)
    train_codes, train_labels = encode(train.sequences), train.labels
    adv_codes = np.zeros((0, train_codes.shape[1]), dtype=np.uint8)
    adv_labels = np.zeros(0, dtype=np.int64)
    fine_tune = {**training, "epochs": settings["epochs"], "learning_rate": settings["learning_rate"]}
    rows = []
    for iteration in range(settings["iterations"] + 1):
        if iteration:
            pick = sample_rows(len(train), settings["train_sample"], seed + iteration)
            run = attack_sequences(
                clf,
                train.subset(pick),
                constraints=constraints,
                params=params,
                seed=seed + iteration,
                baseline=False,
                prune=False,
            )
            won = run.ga.success
            adv_codes = np.concatenate([adv_codes, run.ga.adversarial[won]])
            adv_labels = np.concatenate([adv_labels, run.attacked.labels[won]])
            log.info(
                "iteration %d: %d adversarial training sequences from %d attacked",
                iteration,
                won.sum(),
                len(run.attacked),
            )
            clf.fit(
                np.concatenate([train_codes, adv_codes]),
                np.concatenate([train_labels, adv_labels]),
                training=fine_tune,
                seed=seed + iteration,
            )
        robust, asr, n_attacked = _holdout_metrics(clf, holdout, constraints, params, seed)
        rows.append(
            {
                "iteration": iteration,
                "train_size": len(train_codes) + len(adv_codes),
                "n_adversarial": len(adv_codes),
                "clean_accuracy": accuracy(clf, test_codes, test.labels),
                "robust_accuracy": robust,
                "asr": asr,
                "n_attacked": n_attacked,
            }
        )
        log.info("iteration %d: %s", iteration, rows[-1])
    return pd.DataFrame(rows, columns=PROGRESS_COLUMNS)
