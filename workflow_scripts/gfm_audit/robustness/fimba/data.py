"""Expression matrices (.h5ad or CSV) as a binary task, split and scaled.

Scaling: min-max to [-1, 1], fitted on the training split only (features
constant on train map to 0). Split: stratified, seeded (scikit-learn).
Samples without a label stop the run, or are left out with
``missing_labels: drop``; they are never put in either class.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...errors import InputError

log = logging.getLogger(__name__)

MISSING_LABEL_POLICIES = ("stop", "drop")
# What a missing value turns into once something upstream has made the column text (str(np.nan), str(None),
# str(pd.NA)), and the usual spellings pandas already reads as missing in a CSV, so that .h5ad and CSV agree.
_MISSING_TEXT = frozenset({"", "nan", "none", "<na>", "na", "n/a", "null"})


@dataclass(frozen=True)
class Matrix:
    path: str
    X: np.ndarray  # (n, genes) float64
    y: np.ndarray  # (n,) int 0/1
    genes: list[str]
    sample_ids: list[str]


def missing_labels(values: pd.Series) -> np.ndarray:
    """True where a sample has no label: NaN/None/NA, an empty cell, or such a value written out as text."""
    text = values.astype(str).str.strip().str.lower()
    return (values.isna() | text.isin(_MISSING_TEXT)).to_numpy()


def _drop_missing_labels(
    labels: pd.Series, ids: list[str], path: str, label: str, policy: str, csv: bool
) -> np.ndarray:
    """The rows to keep; stops (InputError) on missing labels unless the policy is ``drop``."""
    if policy not in MISSING_LABEL_POLICIES:
        raise InputError(f"robustness.fimba.missing_labels is '{policy}'; set it to stop or drop")
    missing = missing_labels(labels)
    n = int(missing.sum())
    if not n:
        return np.ones(len(labels), bool)
    if n == len(labels):
        raise InputError(f"{path}: no sample has a value in label '{label}'; check robustness.fimba.label")
    first = [ids[i] for i in np.flatnonzero(missing)[:5]]
    named = f"{'data row' if csv else 'obs name'}(s) {', '.join(first)}{', ...' if n > len(first) else ''}"
    if policy == "stop":
        # Counting them as the negative class (the old behaviour) silently mislabels real positives.
        raise InputError(
            f"{path}: {n} of {len(labels)} sample(s) have no value in label '{label}' (empty cell, "
            f"NaN or None), first {named}; fill them in, or set robustness.fimba.missing_labels: "
            "drop to leave those samples out"
        )
    log.warning(
        "%s: dropped %d of %d sample(s) with no value in label '%s' (robustness.fimba.missing_labels: drop), first %s",
        path,
        n,
        len(labels),
        label,
        named,
    )
    return ~missing


def _integral_numbers(values: pd.Series) -> pd.Series:
    """A numeric column whose values are whole numbers as integers, so 0/1 read as '0'/'1' and not '0.0'/'1.0'
    (a column with an empty cell is read as float even once that row is dropped)."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        as_float = values.astype(np.float64)
        if (as_float == np.round(as_float)).all():
            return as_float.astype(np.int64)
    return values


def _binary_labels(values: pd.Series, positive: Sequence[str] | None, where: str) -> np.ndarray:
    if positive:
        known = set(values.astype(str))
        missing = [p for p in positive if p not in known]
        if missing:
            raise InputError(
                f"{where}: positive class value(s) {', '.join(missing)} never occur; "
                f"values are: {', '.join(sorted(known)[:12])}"
            )
        y = values.astype(str).isin(list(positive)).to_numpy().astype(np.int64)
    else:
        uniq = sorted(set(values.astype(str)))
        if not set(uniq) <= {"0", "1"}:
            raise InputError(
                f"{where}: labels must be 0/1, or set robustness.fimba.positive to the value(s) of "
                f"the positive class (values: {', '.join(uniq[:12])})"
            )
        y = values.astype(str).astype(int).to_numpy()
    if len(set(y.tolist())) < 2:
        raise InputError(
            f"{where}: the label has one class only ({int(y[0])}: {len(y)} samples); "
            "a classifier needs both; check the label key and positive values"
        )
    return y


def read_matrix(
    path: str, *, label: str, positive: Sequence[str] | None = None, layer: str = "X", missing_labels: str = "stop"
) -> Matrix:
    """An .h5ad (label from ``obs[label]``; ``layer`` X or raw) or a CSV (samples x genes + a label column).

    Samples without a label stop with an InputError (``missing_labels`` ``stop``) or are left out (``drop``).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"expression file {path} does not exist")
    if p.suffix == ".h5ad":
        import anndata
        import scipy.sparse

        try:
            adata = anndata.read_h5ad(path)
        except (OSError, KeyError, ValueError) as exc:
            raise InputError(f"{path}: not a readable .h5ad file ({str(exc).splitlines()[0]})") from None
        if label not in adata.obs:
            raise InputError(
                f"{path}: obs has no key '{label}' (robustness.fimba.label); obs keys are: "
                f"{', '.join(map(str, adata.obs.columns))}"
            )
        source = adata.raw if layer == "raw" else adata
        if source is None:
            raise InputError(f"{path}: has no .raw matrix; set robustness.fimba.layer: X")
        matrix = source.X.toarray() if scipy.sparse.issparse(source.X) else np.asarray(source.X)
        X, genes, ids, labels = (
            matrix.astype(np.float64),
            list(map(str, source.var_names)),
            list(adata.obs_names),
            adata.obs[label],
        )
    else:
        table = pd.read_csv(path)
        if label not in table.columns:
            raise InputError(f"{path}: no column '{label}' (robustness.fimba.label)")
        labels = table.pop(label)
        ids = [str(i) for i in range(1, len(table) + 1)]
        non_numeric = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
        if non_numeric:
            raise InputError(
                f"{path}: column '{non_numeric[0]}' is not numeric; every column but the label "
                "must be a gene's expression"
            )
        X, genes = table.to_numpy(dtype=np.float64), [str(c) for c in table.columns]
    labels = pd.Series(labels).reset_index(drop=True)
    keep = _drop_missing_labels(labels, ids, str(path), label, missing_labels, csv=p.suffix != ".h5ad")
    if not keep.all():
        X, ids, labels = X[keep], [i for i, k in zip(ids, keep, strict=True) if k], labels[keep].reset_index(drop=True)
    labels = _integral_numbers(labels)
    bad = ~np.isfinite(X)
    if bad.any():
        row, col = map(int, np.argwhere(bad)[0])
        raise InputError(
            f"{path}: {int(bad.sum())} NaN/inf value(s), first at sample {ids[row]}, gene "
            f"{genes[col]}; impute or drop them before the audit"
        )
    y = _binary_labels(labels, positive, f"{path} label '{label}'")
    return Matrix(str(path), X, y, genes, ids)


def check_same_genes(train: Matrix, test: Matrix) -> None:
    if train.genes != test.genes:
        only_train = [g for g in train.genes if g not in set(test.genes)]
        only_test = [g for g in test.genes if g not in set(train.genes)]
        detail = (
            f"{len(only_train)} gene(s) only in {train.path} (e.g. {', '.join(only_train[:3])}), "
            f"{len(only_test)} only in {test.path} (e.g. {', '.join(only_test[:3])})"
            if only_train or only_test
            else "same genes in another order"
        )
        raise InputError(
            f"gene names differ between {train.path} and {test.path}: {detail}; "
            "give both files the same genes in the same order"
        )


@dataclass(frozen=True)
class Split:
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    genes: list[str]
    low: np.ndarray  # per-gene train minimum
    high: np.ndarray  # per-gene train maximum


def scale(X: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Min-max to [-1, 1] with the training split's per-gene range; constant genes go to 0."""
    span = high - low
    safe = np.where(span > 0, span, 1.0)
    return np.where(span > 0, 2.0 * (X - low) / safe - 1.0, 0.0)


def check_some_gene_varies(X_train: np.ndarray, path: str, layer: str) -> None:
    """Stop when every gene is constant on the training samples: scaling maps them all to 0, so every sample is the
    same point, the classifier answers one class and FIMBA finds no endpoint (a table of no_endpoints rows)."""
    if X_train.shape[1] and (X_train.max(axis=0) > X_train.min(axis=0)).any():
        return
    genes = f"all {X_train.shape[1]} genes are constant" if X_train.shape[1] else "the matrix has no gene columns"
    where = f" (in .{layer}; robustness.fimba.layer picks X or raw)" if path.endswith(".h5ad") else ""
    raise InputError(
        f"{path}: no gene varies across the {len(X_train)} training samples ({genes}), so no classifier can tell "
        f"them apart; check that the file holds expression values{where}"
    )


def make_split(settings: Mapping[str, Any]) -> Split:
    """Read, label, split (or take the given test file), and scale with the training split's range."""
    from sklearn.model_selection import train_test_split

    missing = settings.get("missing_labels", "stop")
    data = read_matrix(
        settings["data"],
        label=settings["label"],
        positive=settings.get("positive"),
        layer=settings["layer"],
        missing_labels=missing,
    )
    if settings.get("test_data"):
        test = read_matrix(
            settings["test_data"],
            label=settings["label"],
            positive=settings.get("positive"),
            layer=settings["layer"],
            missing_labels=missing,
        )
        check_same_genes(data, test)
        X_tr, y_tr, X_te, y_te = data.X, data.y, test.X, test.y
    else:
        X_tr, X_te, y_tr, y_te = train_test_split(
            data.X, data.y, test_size=settings["test_fraction"], stratify=data.y, random_state=settings["seed"]
        )
    check_some_gene_varies(X_tr, data.path, settings["layer"])
    low, high = X_tr.min(axis=0), X_tr.max(axis=0)
    log.info(
        "train %d samples (%d positive), test %d (%d positive), %d genes",
        len(y_tr),
        y_tr.sum(),
        len(y_te),
        y_te.sum(),
        X_tr.shape[1],
    )
    return Split(scale(X_tr, low, high), y_tr, scale(X_te, low, high), y_te, data.genes, low, high)
