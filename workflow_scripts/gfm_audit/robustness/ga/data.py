"""Labelled sequence CSVs (GUE layout: ``sequence,label``) and their integer encoding."""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import InputError

log = logging.getLogger(__name__)

BASES = "ACGT"
_CODE = np.full(256, 255, dtype=np.uint8)
for _i, _b in enumerate(BASES):
    _CODE[ord(_b)] = _i
    _CODE[ord(_b.lower())] = _i


@dataclass(frozen=True)
class LabelledSequences:
    """Rows of one CSV: ids ``<file stem>:<row>`` (1-based data rows), sequences, integer labels."""

    path: str
    ids: list[str]
    sequences: list[str]
    labels: np.ndarray
    skipped_non_acgt: int = 0

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, rows: np.ndarray | list[int]) -> LabelledSequences:
        rows = list(rows)
        return LabelledSequences(
            self.path, [self.ids[i] for i in rows], [self.sequences[i] for i in rows], self.labels[rows]
        )


def read_labelled_csv(path: str | os.PathLike, non_acgt: str = "skip") -> LabelledSequences:
    """Read ``sequence,label`` rows; upper-case the sequences.

    ``non_acgt``: ``skip`` drops rows with N or IUPAC codes (counted and
    logged), ``refuse`` stops at the first one. Perturbing an N has no
    meaning, and the classifiers see only A/C/G/T.
    """
    path = str(path)
    if not Path(path).is_file():
        raise InputError(f"sequence file {path} does not exist")
    try:
        return _read_rows(path, non_acgt)
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: not UTF-8 text (it has the byte {exc.object[exc.start]:#04x}); save it as UTF-8"
        ) from None


def _read_rows(path: str, non_acgt: str) -> LabelledSequences:
    ids, seqs, labels, skipped = [], [], [], 0
    stem = Path(path).stem
    # utf-8-sig: a byte-order mark (Excel's "CSV UTF-8") would otherwise stick to the first column's name.
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = {"sequence", "label"} - set(reader.fieldnames or [])
        if missing:
            raise InputError(
                f"{path}: missing column(s) {', '.join(sorted(missing))}; a sequence CSV needs a header "
                "with 'sequence' and 'label' (the GUE layout)"
            )
        for row_number, row in enumerate(reader, start=1):
            seq = (row["sequence"] or "").strip().upper()
            try:
                label = int(row["label"])
            except (TypeError, ValueError):
                raise InputError(
                    f"{path} row {row_number}: label {row['label']!r} is not an integer class index"
                ) from None
            if not seq:
                raise InputError(f"{path} row {row_number}: empty sequence")
            bad = set(seq) - set(BASES)
            if bad:
                if non_acgt == "refuse":
                    raise InputError(
                        f"{path} row {row_number}: sequence has non-ACGT character(s) {''.join(sorted(bad))}; "
                        "remove the row, or set robustness.ga.non_acgt: skip to drop such rows"
                    )
                skipped += 1
                continue
            ids.append(f"{stem}:{row_number}")
            seqs.append(seq)
            labels.append(label)
    if skipped:
        log.warning("%s: skipped %d row(s) with non-ACGT characters (non_acgt: skip)", path, skipped)
    if not ids:
        raise InputError(f"{path}: no usable rows (every row is empty or has non-ACGT characters)")
    return LabelledSequences(path, ids, seqs, np.asarray(labels, dtype=np.int64), skipped)


def check_two_classes(data: LabelledSequences) -> None:
    """A file of one class trains a constant classifier and scores it as if it had learnt something."""
    classes = np.unique(data.labels)
    if classes.size < 2:
        raise InputError(
            f"{data.path}: every one of its {len(data)} rows has label {int(classes[0])}; training and scoring a "
            "classifier need rows of both classes (of every class, for more than two); add rows of the other class"
        )


def check_labels(data: LabelledSequences, num_labels: int, classifier: str) -> None:
    """Every label must be a class of the classifier: 0 .. num_labels-1."""
    bad = np.flatnonzero((data.labels < 0) | (data.labels >= num_labels))
    if bad.size:
        i = int(bad[0])
        raise InputError(
            f"{data.path} row {data.ids[i].rsplit(':', 1)[1]}: label {int(data.labels[i])} is outside the "
            f"classes of classifier '{classifier}' (0..{num_labels - 1}); fix the label or the classifier's num_labels"
        )


def check_length(data: LabelledSequences, length: int | None, classifier: str) -> None:
    """A fixed-length classifier (the CNN) takes sequences of exactly its length; others take any length."""
    if length is None:
        return
    for seq_id, seq in zip(data.ids, data.sequences, strict=True):
        if len(seq) != length:
            raise InputError(
                f"{data.path} row {seq_id.rsplit(':', 1)[1]}: sequence is {len(seq)} bp but classifier "
                f"'{classifier}' takes exactly {length} bp; trim or pad the sequences to one length"
            )


def same_length(data: LabelledSequences) -> int:
    """The one sequence length of a file, or a clear error when lengths are mixed."""
    first = len(data.sequences[0])
    for seq_id, seq in zip(data.ids, data.sequences, strict=True):
        if len(seq) != first:
            raise InputError(
                f"{data.path} row {seq_id.rsplit(':', 1)[1]}: sequence is {len(seq)} bp, but row "
                f"{data.ids[0].rsplit(':', 1)[1]} is {first} bp; the GA attack needs sequences of one length per file"
            )
    return first


def without_sequences_of(train: LabelledSequences, test: LabelledSequences) -> LabelledSequences:
    """Drop training rows whose sequence is also in the test split (GUE dev/test share a few)."""
    test_seqs = set(test.sequences)
    keep = [i for i, s in enumerate(train.sequences) if s not in test_seqs]
    dropped = len(train) - len(keep)
    if dropped:
        log.warning("%s: dropped %d row(s) whose sequence is also in %s", train.path, dropped, test.path)
    return train.subset(keep)


def encode(sequences: list[str]) -> np.ndarray:
    """(N, L) uint8 codes of equal-length ACGT sequences."""
    raw = np.frombuffer("".join(sequences).encode("ascii"), dtype=np.uint8)
    return _CODE[raw].reshape(len(sequences), -1)


def decode(codes: np.ndarray) -> list[str]:
    table = np.frombuffer(BASES.encode(), dtype=np.uint8)
    return [bytes(table[row]).decode("ascii") for row in np.atleast_2d(codes)]
