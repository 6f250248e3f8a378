"""One classifier's FIMBA run: train it, explain it with black-box SHAP, sweep m for FIMBA and its ablations,
and measure the spectral detection at the largest m (curve.tsv, detection.tsv, spectra.npz, model.joblib)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import joblib
import numpy as np
import pandas as pd

from ...outputs import atomic_outputs, write_tsv
from .attack import curve_rows, shap_importance, top_features
from .classifiers import Counted, make_classifier
from .data import make_split
from .detection import DETECTION_COLUMNS, detection_rows

log = logging.getLogger(__name__)

CURVE_COLUMNS = ["model", "variant", "method", "m", "accuracy", "fp", "fn", "flip_rate", "queries", "status"]


def _check_m(settings: Mapping[str, Any], n_features: int) -> None:
    top_features(np.zeros(n_features), max(settings["top_m"]))


def fimba_model_stage(
    model: str,
    settings: Mapping[str, Any],
    *,
    threads: int,
    curve_tsv: str,
    detection_tsv: str,
    spectra_npz: str,
    model_file: str,
) -> None:
    """Train one classifier, explain it, run FIMBA and ablations over m, and the spectral detection."""
    split = make_split(settings)
    _check_m(settings, split.X_train.shape[1])
    seed = settings["seed"]
    clf = make_classifier(model, seed, threads).fit(split.X_train, split.y_train)
    box = Counted(clf)
    rng = np.random.default_rng(seed)
    explain = split.X_train[np.sort(rng.choice(len(split.X_train), settings["shap_samples"], replace=False))]
    background = split.X_train[np.sort(rng.choice(len(split.X_train), settings["shap_background"], replace=False))]
    importance = shap_importance(box.predict_proba, explain, background, seed=seed)
    shap_queries = box.queries
    log.info(
        "%s: SHAP took %d queries; top genes %s",
        model,
        shap_queries,
        ", ".join(split.genes[i] for i in top_features(importance, min(5, importance.size))),
    )
    X, y = split.X_test, split.y_test
    rows = curve_rows(
        model,
        box,
        X=X,
        y=y,
        importance=importance,
        ms=settings["top_m"],
        p=settings["p"],
        n_points=settings["n_points"],
        position=settings["position"],
        seed=seed,
        shap_queries=shap_queries,
        variants=settings["variants"],
        no_endpoints=settings.get("no_endpoints", "report"),
    )
    det, spectra = detection_rows(model, box, X=X, y=y, importance=importance, settings=settings)
    curve = pd.DataFrame(rows, columns=CURVE_COLUMNS)
    # Nullable integers: counts stay integers in the file while no_endpoints rows leave them empty.
    curve = curve.astype({"fp": "Int64", "fn": "Int64", "queries": "Int64"})
    with atomic_outputs(curve_tsv, detection_tsv, spectra_npz, model_file) as (c_tmp, d_tmp, s_tmp, m_tmp):
        write_tsv(curve, c_tmp)
        write_tsv(pd.DataFrame(det, columns=DETECTION_COLUMNS), d_tmp)
        with open(s_tmp, "wb") as fh:
            np.savez_compressed(fh, **spectra)
        with open(m_tmp, "wb") as fh:
            joblib.dump({"model": clf, "importance": importance}, fh)
