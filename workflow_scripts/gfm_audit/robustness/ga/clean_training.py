"""Clean training: fit a new classifier on its training split and save it (the model the attacks run against;
adversarial_training.py then trains a copy of it on adversarial sequences)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from .classifiers import accuracy, new_classifier, save_classifier
from .data import encode, same_length
from .splits import check_fits, load_splits

log = logging.getLogger(__name__)


def train_classifier_stage(
    name: str,
    spec: Mapping[str, Any],
    *,
    train_csv: str,
    test_csv: str,
    non_acgt: str,
    base_folder: str | None,
    out_dir: str | os.PathLike,
) -> None:
    """Train a new classifier on the training split, log its clean test accuracy and save it in ``out_dir``."""
    train, test = load_splits(train_csv, test_csv, non_acgt)
    length = same_length(train)
    clf = new_classifier(name, spec, base_folder=base_folder, length=length, seed=spec["seed"])
    check_fits(clf, train, test)
    losses = clf.fit(encode(train.sequences), train.labels, training=spec["training"], seed=spec["seed"])
    log.info("classifier %s: clean test accuracy %.4f", name, accuracy(clf, encode(test.sequences), test.labels))
    save_classifier(clf, losses, out_dir)
