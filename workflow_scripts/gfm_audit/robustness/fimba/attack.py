"""FIMBA: feature-importance black-box attack on tabular (expression) classifiers, and its ablations.

1. Black-box SHAP importance (permutation explainer on ``predict_proba``) on
   a small sample; the global top-m features by mean |SHAP|.
2. For each attacked sample (predicted class c) the nearest endpoint under the
   Minkowski-p distance (KD-tree): a misclassified sample predicted 1-c
   (``fp_fn``, the main variant) or a correctly classified sample of class
   1-c (``tp_tn``).
3. The top-m features move along the line to the endpoint:
   x'_j = x_j + t (e_j - x_j), t = position / (n_points - 1); other features are unchanged.

Ablations under the same settings: ``random_features`` (random m features,
same interpolation), ``shap_uniform`` (SHAP features, uniform random values in
the scaling range [-1, 1]) and ``brute_force`` (random features, random values).

A variant can have no endpoint at all: ``fp_fn`` on a classifier that makes no
error on the test set. Its interpolating rows (``fimba``, ``random_features``)
are then marked ``no_endpoints`` and left empty, or, with
``no_endpoints: fall_back_to_tp_tn``, run towards the ``tp_tn`` endpoints and
marked ``fallback_tp_tn``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from scipy.spatial import cKDTree

from ...errors import InputError

VARIANTS = ("fp_fn", "tp_tn")
METHODS = ("fimba", "random_features", "shap_uniform", "brute_force")
INTERPOLATING = ("fimba", "random_features")  # the methods that need an endpoint
NO_ENDPOINT_POLICIES = ("report", "fall_back_to_tp_tn")
STATUSES = ("ok", "no_endpoints", "fallback_tp_tn")

log = logging.getLogger(__name__)


def shap_importance(predict_proba, explain: np.ndarray, background: np.ndarray, *, seed: int) -> np.ndarray:
    """Mean |SHAP value| of P(class 1) per feature, by shap's model-agnostic permutation explainer."""
    import shap

    masker = shap.maskers.Independent(background, max_samples=len(background))
    explainer = shap.PermutationExplainer(lambda X: predict_proba(X)[:, 1], masker, seed=seed)
    values = explainer(explain, max_evals=2 * explain.shape[1] + 1, silent=True).values
    return np.abs(values).mean(axis=0)


def top_features(importance: np.ndarray, m: int) -> np.ndarray:
    """Indices of the m largest importances (ties by lower index)."""
    if m > importance.size:
        raise InputError(f"robustness.fimba.top_m: m = {m} is larger than the number of features ({importance.size})")
    return np.argsort(-importance, kind="stable")[:m]


def endpoint_pool(pred: np.ndarray, y: np.ndarray, *, target_class: int, variant: str) -> np.ndarray:
    """Candidates predicted ``target_class``: misclassified ones (fp_fn) or correctly classified ones (tp_tn)."""
    wrong = pred != y
    return np.flatnonzero((pred == target_class) & (wrong if variant == "fp_fn" else ~wrong))


def nearest_endpoints(X: np.ndarray, pred: np.ndarray, y: np.ndarray, *, variant: str, p: float) -> np.ndarray:
    """Per sample, the index (into X) of its endpoint under Minkowski-p, or -1 when the pool is empty."""
    out = np.full(len(X), -1, dtype=np.int64)
    for c in (0, 1):
        queries = np.flatnonzero(pred == c)
        pool = endpoint_pool(pred, y, target_class=1 - c, variant=variant)
        if queries.size and pool.size:
            _, nearest = cKDTree(X[pool]).query(X[queries], k=1, p=p)
            out[queries] = pool[nearest]
    return out


def resolve_endpoints(
    X: np.ndarray, pred: np.ndarray, y: np.ndarray, *, variant: str, p: float, no_endpoints: str = "report"
) -> tuple[np.ndarray, str]:
    """``nearest_endpoints`` of ``variant`` and a status: ``ok`` when some sample has one, else ``fallback_tp_tn``
    (fp_fn with ``no_endpoints`` fall_back_to_tp_tn, and tp_tn has some) or ``no_endpoints``."""
    if no_endpoints not in NO_ENDPOINT_POLICIES:
        raise InputError(f"robustness.fimba.no_endpoints is '{no_endpoints}'; set it to report or fall_back_to_tp_tn")
    ends = nearest_endpoints(X, pred, y, variant=variant, p=p)
    if (ends >= 0).any():
        return ends, "ok"
    if variant == "fp_fn" and no_endpoints == "fall_back_to_tp_tn":
        ends = nearest_endpoints(X, pred, y, variant="tp_tn", p=p)
        if (ends >= 0).any():
            return ends, "fallback_tp_tn"
    return ends, "no_endpoints"


def as_matrix(X: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Each row's endpoint (a row of X) from ``nearest_endpoints``, or a NaN row where the sample has none."""
    return np.where((ends >= 0)[:, None], X[np.maximum(ends, 0)], np.nan)


def endpoint_matrix(X: np.ndarray, pred: np.ndarray, y: np.ndarray, *, variant: str, p: float) -> np.ndarray:
    """Each row's endpoint (a row of X), or a NaN row where the sample has none."""
    return as_matrix(X, nearest_endpoints(X, pred, y, variant=variant, p=p))


def row_status(method: str, endpoint_status: str) -> str:
    """The status of one curve/detection row: only the interpolating methods depend on the endpoints."""
    return endpoint_status if method in INTERPOLATING else "ok"


def interpolate(X: np.ndarray, E: np.ndarray, features: np.ndarray, *, n_points: int, position: int) -> np.ndarray:
    """Move ``features`` of each row of X to point ``position`` of ``n_points`` on the line to its row of E."""
    t = position / (n_points - 1)
    out = X.copy()
    out[:, features] = X[:, features] + t * (E[:, features] - X[:, features])
    return out


def perturb(
    method: str,
    X: np.ndarray,
    E: np.ndarray,
    *,
    importance: np.ndarray,
    m: int,
    n_points: int,
    position: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """The attacked matrix for one method; rows without an endpoint (all-NaN E rows) stay unchanged for
    the interpolating methods."""
    n_features = X.shape[1]
    shap_top = top_features(importance, m)
    random_top = np.sort(rng.choice(n_features, size=m, replace=False))
    if method in ("fimba", "random_features"):
        feats = shap_top if method == "fimba" else random_top
        has = ~np.isnan(E).any(axis=1)
        out = X.copy()
        out[has] = interpolate(X[has], E[has], feats, n_points=n_points, position=position)
        return out
    feats = shap_top if method == "shap_uniform" else random_top
    out = X.copy()
    out[:, feats] = rng.uniform(-1.0, 1.0, size=(len(X), m))
    return out


def confusion(y: np.ndarray, pred: np.ndarray) -> tuple[float, int, int]:
    """Accuracy, false positives, false negatives."""
    return float((pred == y).mean()), int(((pred == 1) & (y == 0)).sum()), int(((pred == 0) & (y == 1)).sum())


def curve_rows(
    model: str,
    black_box,
    *,
    X: np.ndarray,
    y: np.ndarray,
    importance: np.ndarray,
    ms: Sequence[int],
    p: float,
    n_points: int,
    position: int,
    seed: int,
    shap_queries: int,
    variants: Sequence[str] = VARIANTS,
    no_endpoints: str = "report",
) -> list[dict]:
    """Rows of curve.tsv for one model: the clean model, then every (variant, method, m).

    An interpolating row of a variant without endpoints has status ``no_endpoints`` and empty metrics: the
    attack was not tried, and an unchanged test set would otherwise read as one that resisted it.
    """
    pred = black_box.predict(X)
    acc, fp, fn = confusion(y, pred)
    rows = [
        dict(
            model=model,
            variant="none",
            method="clean",
            m=0,
            accuracy=acc,
            fp=fp,
            fn=fn,
            flip_rate=0.0,
            queries=shap_queries + len(X),
            status="ok",
        )
    ]
    for variant in variants:
        v_index = VARIANTS.index(variant)
        ends, endpoint_status = resolve_endpoints(X, pred, y, variant=variant, p=p, no_endpoints=no_endpoints)
        E = as_matrix(X, ends)
        for m_index, m in enumerate(ms):
            for k, method in enumerate(METHODS):
                status = row_status(method, endpoint_status)
                if status == "no_endpoints":
                    rows.append(
                        dict(
                            model=model,
                            variant=variant,
                            method=method,
                            m=m,
                            accuracy=None,
                            fp=None,
                            fn=None,
                            flip_rate=None,
                            queries=None,
                            status=status,
                        )
                    )
                    continue
                rng = np.random.default_rng([seed, v_index, m_index, k])
                attacked = perturb(
                    method, X, E, importance=importance, m=m, n_points=n_points, position=position, rng=rng
                )
                new = black_box.predict(attacked)
                acc, fp, fn = confusion(y, new)
                # Queries: the SHAP step (for SHAP-guided methods), the clean and the attacked predictions.
                queries = shap_queries * (method in ("fimba", "shap_uniform")) + 2 * len(X)
                rows.append(
                    dict(
                        model=model,
                        variant=variant,
                        method=method,
                        m=m,
                        accuracy=acc,
                        fp=fp,
                        fn=fn,
                        flip_rate=float((new != pred).mean()),
                        queries=queries,
                        status=status,
                    )
                )
    return rows


def log_endpoints(who: str, variant: str, ends: np.ndarray, *, status: str, errors: int) -> None:
    """Say when a variant's attack could not be tried, fell back, or reaches only some test samples."""
    if status == "no_endpoints":
        hint = (
            "; set robustness.fimba.no_endpoints: fall_back_to_tp_tn to move towards tp_tn endpoints instead"
            if variant == "fp_fn"
            else ""
        )
        log.warning(
            "%s: %s has no endpoint for any of the %d test samples (%d misclassified), so FIMBA and "
            "random_features were not tried for it (status no_endpoints)%s",
            who,
            variant,
            len(ends),
            errors,
            hint,
        )
    elif status == "fallback_tp_tn":
        log.warning(
            "%s: fp_fn has no endpoint for any of the %d test samples (%d misclassified); FIMBA and "
            "random_features move towards the tp_tn endpoints instead (robustness.fimba.no_endpoints: "
            "fall_back_to_tp_tn; status fallback_tp_tn)",
            who,
            len(ends),
            errors,
        )
    elif (ends < 0).any():
        log.info(
            "%s: %s: %d of %d test samples have an endpoint; the others stay unchanged under FIMBA and random_features",
            who,
            variant,
            int((ends >= 0).sum()),
            len(ends),
        )
