"""What each FIMBA rule does: ``<rule>_rule(job)`` per rule, taking the rule's Snakemake job
(as in ``privacy/stages.py``), and the stages they run as plain functions, which the tests call."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import joblib
import numpy as np
import pandas as pd

from ...outputs import atomic_outputs, write_tsv
from ...rule_script import Job
from .attack import (
    METHODS,
    VARIANTS,
    as_matrix,
    curve_rows,
    perturb,
    resolve_endpoints,
    row_status,
    shap_importance,
    top_features,
)
from .classifiers import Counted, make_classifier
from .data import make_split
from .detection import power_spectrum, spectral_ssim
from .vae import poison, similarity, train_vae

log = logging.getLogger(__name__)

CURVE_COLUMNS = ["model", "variant", "method", "m", "accuracy", "fp", "fn", "flip_rate", "queries", "status"]
DETECTION_COLUMNS = ["model", "variant", "method", "m", "subset", "n_samples", "ssim", "status"]
VAE_COLUMNS = ["model", "n_samples", "ttg_seconds", "mse", "ssim", "cosine", "accuracy", "flip_rate"]


def _check_m(settings: Mapping[str, Any], n_features: int) -> None:
    top_features(np.zeros(n_features), max(settings["top_m"]))


def _log_endpoints(who: str, variant: str, ends: np.ndarray, status: str, errors: int) -> None:
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
    no_endpoints = settings.get("no_endpoints", "report")
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
        no_endpoints=no_endpoints,
    )
    # Detection at the largest m: FIMBA (and the brute-force ablation, the paper's "random perturbation").
    m = max(settings["top_m"])
    pred = box.predict(X)
    det, spectra = [], {"original": power_spectrum(X)}
    for variant in settings["variants"]:
        v_index = VARIANTS.index(variant)
        ends, endpoint_status = resolve_endpoints(
            X, pred, y, variant=variant, p=settings["p"], no_endpoints=no_endpoints
        )
        _log_endpoints(model, variant, ends, endpoint_status, int((pred != y).sum()))
        E = as_matrix(X, ends)
        for method in ("fimba", "brute_force"):
            status = row_status(method, endpoint_status)
            if status == "no_endpoints":
                # An SSIM of the unchanged matrix (1) would read as an attack that cannot be seen.
                det += [
                    dict(
                        model=model,
                        variant=variant,
                        method=method,
                        m=m,
                        subset=subset,
                        n_samples=0,
                        ssim=None,
                        status=status,
                    )
                    for subset in ("all", "fp", "fn")
                ]
                continue
            k = METHODS.index(method)
            m_index = list(settings["top_m"]).index(m)
            attacked = perturb(
                method,
                X,
                E,
                importance=importance,
                m=m,
                n_points=settings["n_points"],
                position=settings["position"],
                rng=np.random.default_rng([seed, v_index, m_index, k]),
            )
            new = box.predict(attacked)
            subsets = {"all": np.ones(len(y), bool), "fp": (new == 1) & (y == 0), "fn": (new == 0) & (y == 1)}
            for subset, rows_mask in subsets.items():
                det.append(
                    dict(
                        model=model,
                        variant=variant,
                        method=method,
                        m=m,
                        subset=subset,
                        n_samples=int(rows_mask.sum()),
                        ssim=spectral_ssim(X[rows_mask], attacked[rows_mask]),
                        status=status,
                    )
                )
            if variant == settings["variants"][0]:
                spectra[method] = power_spectrum(attacked)
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


def comparison_stage(model: str, settings: Mapping[str, Any], *, model_file: str, curve_tsv: str, out_tsv: str) -> None:
    """FIMBA beside ART's ZOO, HopSkipJump, FGSM and Auto-PGD at FIMBA's L2 budgets (comparison.py), on the
    first ``comparison.samples`` test samples of one trained classifier."""
    from .comparison import COLUMNS, comparison_rows

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


def merge_detection_stage(parts: list[str], out_tsv: str) -> None:
    table = pd.concat([pd.read_csv(p, sep="\t") for p in parts], ignore_index=True)
    with atomic_outputs(out_tsv) as (tmp,):
        write_tsv(table[DETECTION_COLUMNS], tmp)


def vae_stage(settings: Mapping[str, Any], models: Mapping[str, str], out_tsv: str) -> None:
    """Train the VAE on the training split; poison test samples towards their FIMBA endpoints (first variant)
    under the first model; report similarity and how every classifier labels the poisoned samples."""
    split = make_split(settings)
    vae_cfg = settings["vae"]
    names = list(models)
    first = Counted(joblib.load(models[names[0]])["model"])
    X, y = split.X_test, split.y_test
    pred, variant = first.predict(X), settings["variants"][0]
    ends, status = resolve_endpoints(
        X, pred, y, variant=variant, p=settings["p"], no_endpoints=settings.get("no_endpoints", "report")
    )
    _log_endpoints(f"VAE poisoning ({names[0]})", variant, ends, status, int((pred != y).sum()))
    usable = np.flatnonzero(ends >= 0)[: vae_cfg["n_samples"]]
    if not usable.size:
        # Nothing to poison towards: say so with n_samples 0 rather than fail on an empty matrix.
        with atomic_outputs(out_tsv) as (tmp,):
            write_tsv(pd.DataFrame([dict(model=name, n_samples=0) for name in names], columns=VAE_COLUMNS), tmp)
        return
    vae = train_vae(split.X_train, latent=vae_cfg["latent"], epochs=vae_cfg["epochs"], seed=settings["seed"])
    alpha = settings["position"] / (settings["n_points"] - 1)
    poisoned, ttg = poison(vae, X[usable], X[ends[usable]], alpha=alpha)
    sim = similarity(X[usable], poisoned)
    rows = []
    for name in names:
        box = Counted(joblib.load(models[name])["model"])
        new = box.predict(poisoned)
        rows.append(
            dict(
                model=name,
                n_samples=len(usable),
                ttg_seconds=ttg,
                **sim,
                accuracy=float((new == y[usable]).mean()),
                flip_rate=float((new != box.predict(X[usable])).mean()),
            )
        )
    with atomic_outputs(out_tsv) as (tmp,):
        write_tsv(pd.DataFrame(rows, columns=VAE_COLUMNS), tmp)


def fimba_model_rule(job: Job) -> None:
    """results/robustness/fimba/<model>/curve.tsv, detection.tsv, spectra.npz, model.joblib."""
    out = job.output
    fimba_model_stage(
        job.wildcards.fmodel,
        job.params.settings,
        threads=job.threads,
        curve_tsv=out.curve,
        detection_tsv=out.detection,
        spectra_npz=out.spectra,
        model_file=out.model,
    )


def fimba_detection_rule(job: Job) -> None:
    """results/robustness/fimba/detection.tsv: every model's detection table."""
    merge_detection_stage(list(job.input), job.output[0])


def fimba_comparison_rule(job: Job) -> None:
    """results/robustness/fimba/<model>/comparison.tsv."""
    from ...determinism import single_cpu_thread

    with single_cpu_thread():
        comparison_stage(
            job.wildcards.fmodel,
            job.params.settings,
            model_file=job.input.model,
            curve_tsv=job.input.curve,
            out_tsv=job.output[0],
        )


def fimba_comparison_table_rule(job: Job) -> None:
    """results/robustness/fimba/comparison.tsv: every model's comparison rows."""
    from .comparison import COLUMNS

    table = pd.concat([pd.read_csv(p, sep="\t") for p in job.input], ignore_index=True)
    with atomic_outputs(job.output[0]) as (tmp,):
        write_tsv(table[COLUMNS], tmp)


def fimba_vae_rule(job: Job) -> None:
    """results/robustness/fimba/vae.tsv."""
    models = dict(zip(job.params.names, job.input.models, strict=True))
    vae_stage(job.params.settings, models, job.output[0])


def plot_fimba_rule(job: Job) -> None:
    """The FIMBA figures of one model."""
    from . import plots  # here, not at the top: matplotlib is in the plotting rule's conda env only

    plots.curve_figure(pd.read_csv(job.input.curve, sep="\t"), job.output.curve)

    with np.load(job.input.spectra) as spectra:
        plots.spectra_figure(dict(spectra), job.wildcards.fmodel, job.output.spectra)


def plot_fimba_comparison_rule(job: Job) -> None:
    """Accuracy against the L2 budget, one line per attack, for one model."""
    from . import plots  # here, not at the top: matplotlib is in the plotting rule's conda env only

    plots.comparison_figure(pd.read_csv(job.input[0], sep="\t"), job.output[0])
