"""The train and test splits of one classifier, read from their CSVs and checked against it."""

from __future__ import annotations

from .classifiers import Classifier
from .data import (
    LabelledSequences,
    check_labels,
    check_length,
    check_two_classes,
    read_labelled_csv,
    same_length,
    without_sequences_of,
)


def load_splits(train_csv: str, test_csv: str, non_acgt: str) -> tuple[LabelledSequences, LabelledSequences]:
    """Both splits, with training rows that repeat a test sequence dropped (no test sequence is ever trained on),
    each holding both classes."""
    test = read_labelled_csv(test_csv, non_acgt)
    train = without_sequences_of(read_labelled_csv(train_csv, non_acgt), test)
    check_two_classes(train)
    check_two_classes(test)
    return train, test


def check_fits(clf: Classifier, *splits: LabelledSequences) -> None:
    """Stop when a split's sequences or labels do not fit ``clf`` (length, one length throughout, label range)."""
    for split in splits:
        check_length(split, clf.fixed_length, clf.name)
        same_length(split)
        check_labels(split, clf.num_labels, clf.name)
