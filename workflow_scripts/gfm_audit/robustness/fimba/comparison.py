"""FIMBA beside the standard evasion attacks of the Adversarial Robustness Toolbox, at matched L2 budgets.

The FIMBA paper (its comparison section) sets FIMBA against ZOO, a decision-based boundary attack, FGSM and
Auto-PGD. Those attacks come from ART (Nicolae et al. 2018), not re-implemented:

- ``zoo``: zeroth-order optimisation (Chen et al. 2017), black box, from predicted probabilities;
- ``hopskipjump``: decision-based boundary attack (Chen, Jordan & Wainwright 2020), black box, from labels;
- ``fgsm``: fast gradient method (Goodfellow et al. 2015), one L2 step of size eps, white box;
- ``auto_pgd``: Auto-PGD (Croce & Hein 2020), step-size-free projected gradient descent in the L2 ball, white box.

White-box attacks need gradients, so they run on the torch classifiers only (cnn, resnet, vit).

Budgets are L2 distances taken from FIMBA itself: at each m, the budget b_m is the largest L2 distance FIMBA
moves any of the compared test samples, ``b_m = max_i ||x'_i - x_i||_2``. FIMBA is therefore within its budget
by construction; FGSM and Auto-PGD get ``eps = b_m``; ZOO and HopSkipJump look for minimal perturbations and are
projected onto the L2 ball of radius b_m (``x + delta * min(1, b_m / ||delta||_2)``). The number of features
changed is reported, not matched: ART's attacks move every feature while FIMBA moves m of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import joblib
import numpy as np
import pandas as pd

from ...outputs import atomic_outputs, write_tsv
from .attack import METHODS, VARIANTS, as_matrix, perturb, resolve_endpoints
from .classifiers import TorchTabular
from .data import make_split

log = logging.getLogger(__name__)

ATTACKS = ("zoo", "hopskipjump", "fgsm", "auto_pgd")
WHITE_BOX = ("fgsm", "auto_pgd")
COLUMNS = [
    "model",
    "attack",
    "m",
    "budget",
    "accuracy",
    "flip_rate",
    "queries",
    "l2",
    "linf",
    "n_features_changed",
    "l2_max",
]
# A feature counts as changed when it moved by more than float32 rounding of values in [-1, 1].
CHANGED = 1e-6


def project_l2(X: np.ndarray, X_adv: np.ndarray, budget: float) -> np.ndarray:
    """Each row of ``X_adv`` pulled back onto the L2 ball of radius ``budget`` around its row of ``X``."""
    delta = X_adv - X
    norm = np.linalg.norm(delta, axis=1, keepdims=True)
    scale = np.minimum(1.0, budget / np.where(norm > 0, norm, 1.0))
    return X + delta * scale


def distances(X: np.ndarray, X_adv: np.ndarray) -> dict[str, np.ndarray]:
    """Per row: L2 and L-infinity norms of the perturbation and the number of features it changes."""
    delta = X_adv - X
    return {
        "l2": np.linalg.norm(delta, axis=1),
        "linf": np.abs(delta).max(axis=1) if delta.shape[1] else np.zeros(len(X)),
        "n_changed": (np.abs(delta) > CHANGED).sum(axis=1),
    }


class CountedArray:
    """Counts the samples a black-box prediction function is asked about (the attack's queries)."""

    def __init__(self, predict_proba: Callable[[np.ndarray], np.ndarray]):
        self.predict_proba, self.queries = predict_proba, 0

    def __call__(self, X: np.ndarray) -> np.ndarray:
        self.queries += len(X)
        return np.asarray(self.predict_proba(np.asarray(X, dtype=np.float64)), dtype=np.float32)


def clip_range(X: np.ndarray) -> tuple[float, float]:
    """Feature bounds for ART: the scaled range [-1, 1], widened to the test values (the test split is scaled
    with the training split's range, so it can leave [-1, 1])."""
    return float(min(-1.0, X.min())), float(max(1.0, X.max()))


def _black_box(clf, X: np.ndarray):
    from art.estimators.classification import BlackBoxClassifier

    counter = CountedArray(clf.predict_proba)
    return BlackBoxClassifier(counter, (X.shape[1],), 2, clip_values=clip_range(X)), counter


def _white_box(clf: TorchTabular, X: np.ndarray):
    """ART's PyTorchClassifier over the network, and a counter of the samples it passes forward."""
    import torch
    from art.estimators.classification import PyTorchClassifier

    counter = {"samples": 0}

    def count(_module, inputs, _output):
        counter["samples"] += len(inputs[0])

    # ART runs an nn.Sequential layer by layer (to expose activations), bypassing the container's own hooks.
    first = next(iter(clf.net.children())) if isinstance(clf.net, torch.nn.Sequential) else clf.net
    handle = first.register_forward_hook(count)
    art_clf = PyTorchClassifier(
        clf.net.float().eval(),
        torch.nn.CrossEntropyLoss(),
        (X.shape[1],),
        2,
        clip_values=clip_range(X),
        device_type="cpu",
    )
    return art_clf, counter, handle


def hopskipjump_starts(clf, X: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """Per row of X, the nearest (L2) row of ``pool`` that the classifier puts in another class, or NaN.

    HopSkipJump needs an adversarial starting point; ART draws one from an unseeded generator, which would make
    the table differ from run to run. The nearest sample of the other predicted class is a deterministic start.
    """
    from scipy.spatial import cKDTree

    pred, pool_pred = clf.predict_proba(X).argmax(axis=1), clf.predict_proba(pool).argmax(axis=1)
    starts = np.full(X.shape, np.nan)
    for c in np.unique(pred):
        other = pool[pool_pred != c]
        rows = np.flatnonzero(pred == c)
        if len(other):
            _, nearest = cKDTree(other).query(X[rows], k=1)
            starts[rows] = other[nearest]
    return starts


def unbounded_black_box(
    attack: str, clf, X: np.ndarray, *, settings: Mapping[str, Any], seed: int, pool: np.ndarray | None = None
):
    """ZOO or HopSkipJump run once without a budget (they search for small perturbations); returns the
    adversarial rows (float64) and the queries they took. HopSkipJump starts from the nearest row of ``pool``
    (default: X) of another predicted class; a row with none stays unchanged."""
    from art.attacks.evasion import HopSkipJump, ZooAttack

    # ART draws ZOO's coordinates and HopSkipJump's directions from NumPy's legacy global generator.
    np.random.seed(seed)  # noqa: NPY002
    box, counter = _black_box(clf, X)
    if attack == "zoo":
        cfg = settings["zoo"]
        art_attack = ZooAttack(
            box,
            max_iter=cfg["max_iter"],
            learning_rate=cfg["learning_rate"],
            initial_const=cfg["initial_const"],
            nb_parallel=min(cfg["nb_parallel"], X.shape[1]),
            use_resize=False,
            use_importance=False,
            verbose=False,
        )
        adv = art_attack.generate(X.astype(np.float32))
        return np.asarray(adv, dtype=np.float64), counter.queries
    cfg = settings["hopskipjump"]
    pool = X if pool is None else pool
    starts = hopskipjump_starts(clf, X, pool)
    counter.queries += len(X) + len(pool)  # the predictions that chose the starts
    has = ~np.isnan(starts).any(axis=1)
    adv = X.copy()
    if has.any():
        art_attack = HopSkipJump(
            box,
            norm=2,
            max_iter=cfg["max_iter"],
            max_eval=cfg["max_eval"],
            init_eval=cfg["init_eval"],
            verbose=False,
        )
        found = art_attack.generate(X[has].astype(np.float32), x_adv_init=starts[has].astype(np.float32))
        adv[has] = np.asarray(found, dtype=np.float64)
    return adv, counter.queries


def white_box(attack: str, clf: TorchTabular, X: np.ndarray, *, budget: float, settings: Mapping[str, Any], seed: int):
    """FGSM or Auto-PGD in the L2 ball of radius ``budget``; returns the adversarial rows and the samples the
    network was run on (forward passes, each with its backward for the gradient)."""
    import torch
    from art.attacks.evasion import AutoProjectedGradientDescent, FastGradientMethod

    np.random.seed(seed)  # noqa: NPY002 (Auto-PGD's random start comes from NumPy's legacy global generator)
    torch.manual_seed(seed)
    art_clf, counter, handle = _white_box(clf, X)
    try:
        if attack == "fgsm":
            art_attack = FastGradientMethod(art_clf, norm=2, eps=budget, eps_step=budget)
        else:
            art_attack = AutoProjectedGradientDescent(
                art_clf,
                norm=2,
                eps=budget,
                eps_step=2 * budget,
                max_iter=settings["auto_pgd"]["max_iter"],
                nb_random_init=1,
                loss_type="cross_entropy",
                verbose=False,
            )
        counter["samples"] = 0
        adv = art_attack.generate(X.astype(np.float32))
    finally:
        handle.remove()
    # ART works in float32: its projection can land a rounding error outside the ball, which the budget forbids.
    return project_l2(X, np.asarray(adv, dtype=np.float64), budget), counter["samples"]


def fimba_rows(
    X: np.ndarray, pred: np.ndarray, y: np.ndarray, *, importance: np.ndarray, settings: Mapping[str, Any], seed: int
) -> dict[int, np.ndarray]:
    """FIMBA's attacked rows at every m, on the first variant that has endpoints (as in curve.tsv)."""
    for variant in settings["variants"]:
        ends, status = resolve_endpoints(
            X, pred, y, variant=variant, p=settings["p"], no_endpoints=settings.get("no_endpoints", "report")
        )
        if status != "no_endpoints":
            break
    else:
        return {}
    E = as_matrix(X, ends)
    v_index, k = VARIANTS.index(variant), METHODS.index("fimba")
    return {
        m: perturb(
            "fimba",
            X,
            E,
            importance=importance,
            m=m,
            n_points=settings["n_points"],
            position=settings["position"],
            rng=np.random.default_rng([seed, v_index, m_index, k]),
        )
        for m_index, m in enumerate(settings["top_m"])
    }


def _row(model: str, attack: str, *, m: int, budget: float, X, X_adv, y, clean, new, queries: int) -> dict:
    d = distances(X, X_adv)
    return dict(
        model=model,
        attack=attack,
        m=m,
        budget=budget,
        accuracy=float((new == y).mean()),
        flip_rate=float((new != clean).mean()),
        queries=int(queries),
        l2=float(d["l2"].mean()),
        linf=float(d["linf"].mean()),
        n_features_changed=float(d["n_changed"].mean()),
        l2_max=float(d["l2"].max()),
    )


def comparison_rows(
    model: str,
    clf,
    *,
    X: np.ndarray,
    y: np.ndarray,
    pool_pred: np.ndarray,
    pool_X: np.ndarray,
    pool_y: np.ndarray,
    importance: np.ndarray,
    shap_queries: int,
    settings: Mapping[str, Any],
    attacks: Sequence[str],
    seed: int,
) -> list[dict]:
    """Rows of comparison.tsv for one classifier on the compared samples ``X`` (a subset of the test split):
    the clean model, then FIMBA and every configured attack at each FIMBA budget.

    ``pool_*`` is the whole test split, where FIMBA looks for its endpoints (as in curve.tsv); the compared
    samples are its first rows in the order given, so their FIMBA rows are those of the full attack.
    """
    n = len(X)
    clean = clf.predict_proba(X).argmax(axis=1)
    rows = [_row(model, "clean", m=0, budget=0.0, X=X, X_adv=X, y=y, clean=clean, new=clean, queries=n)]
    attacked = fimba_rows(pool_X, pool_pred, pool_y, importance=importance, settings=settings, seed=seed)
    if not attacked:
        log.warning("%s: FIMBA has no endpoint in any variant, so there is no budget to compare at", model)
        return rows
    cmp = comparison_settings(settings)
    unbounded = {
        a: unbounded_black_box(a, clf, X, settings=cmp, seed=seed, pool=pool_X)
        for a in attacks
        if a in ("zoo", "hopskipjump")
    }
    for m, fimba_all in attacked.items():
        fimba_adv = fimba_all[:n]
        budget = float(distances(X, fimba_adv)["l2"].max())
        # FIMBA's queries: SHAP, the predictions of the test split that pick endpoints, the attacked samples.
        queries = shap_queries + len(pool_X) + n
        new = clf.predict_proba(fimba_adv).argmax(axis=1)
        rows.append(
            _row(model, "fimba", m=m, budget=budget, X=X, X_adv=fimba_adv, y=y, clean=clean, new=new, queries=queries)
        )
        for attack in attacks:
            if attack in unbounded:
                adv, queries = unbounded[attack]
                adv = project_l2(X, adv, budget)
            elif attack in WHITE_BOX:
                if not isinstance(clf, TorchTabular):
                    continue
                adv, queries = white_box(attack, clf, X, budget=budget, settings=cmp, seed=seed)
            else:
                raise ValueError(attack)
            new = clf.predict_proba(adv).argmax(axis=1)
            rows.append(
                _row(model, attack, m=m, budget=budget, X=X, X_adv=adv, y=y, clean=clean, new=new, queries=queries)
            )
    return rows


def comparison_settings(settings: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``comparison`` block of the FIMBA settings, with its defaults."""
    return settings.get("comparison", {})


def comparison_stage(model: str, settings: Mapping[str, Any], *, model_file: str, curve_tsv: str, out_tsv: str) -> None:
    """FIMBA beside ART's ZOO, HopSkipJump, FGSM and Auto-PGD at FIMBA's L2 budgets, on the first
    ``comparison.samples`` test samples of one trained classifier."""
    cmp = settings["comparison"]
    split = make_split(settings)
    saved = joblib.load(model_file)
    clf, importance = saved["model"], saved["importance"]
    curve = pd.read_csv(curve_tsv, sep="\t")
    clean_queries = int(curve.loc[curve["method"] == "clean", "queries"].iloc[0])
    X, y = split.X_test, split.y_test
    n = min(cmp["samples"], len(X))
    pred = clf.predict_proba(X).argmax(axis=1)
    rows = comparison_rows(
        model,
        clf,
        X=X[:n],
        y=y[:n],
        pool_pred=pred,
        pool_X=X,
        pool_y=y,
        importance=importance,
        shap_queries=clean_queries - len(X),
        settings=settings,
        attacks=cmp["attacks"],
        seed=settings["seed"],
    )
    with atomic_outputs(out_tsv) as (tmp,):
        write_tsv(pd.DataFrame(rows, columns=COLUMNS), tmp)


def comparison_table_stage(parts: list[str], out_tsv: str) -> None:
    """comparison.tsv of every model: their tables one after the other."""
    table = pd.concat([pd.read_csv(p, sep="\t") for p in parts], ignore_index=True)
    with atomic_outputs(out_tsv) as (tmp,):
        write_tsv(table[COLUMNS], tmp)
