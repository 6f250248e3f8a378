"""VAE poisoning of test samples towards their FIMBA endpoints, and how every classifier labels them (vae.tsv)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import joblib
import numpy as np
import pandas as pd

from ...outputs import atomic_outputs, write_tsv
from .attack import log_endpoints, resolve_endpoints
from .classifiers import Counted
from .data import make_split
from .vae import poison, similarity, train_vae

VAE_COLUMNS = ["model", "n_samples", "ttg_seconds", "mse", "ssim", "cosine", "accuracy", "flip_rate"]


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
    log_endpoints(f"VAE poisoning ({names[0]})", variant, ends, status=status, errors=int((pred != y).sum()))
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
