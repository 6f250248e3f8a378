"""Spectral detection of FIMBA (described in the FIMBA paper, absent from its code).

The data matrix (samples x genes) is read as an image; its power spectrum is
log(1 + |FFT2|^2), centred. The spectra of the original and the attacked matrix
are compared with SSIM (Wang et al., 2004; scikit-image). SSIM near 1 means
the attack leaves the spectrum as it was (hard to detect this way).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ...outputs import atomic_outputs, write_tsv
from .attack import METHODS, VARIANTS, as_matrix, log_endpoints, perturb, resolve_endpoints, row_status
from .classifiers import Counted

DETECTION_COLUMNS = ["model", "variant", "method", "m", "subset", "n_samples", "ssim", "status"]


def power_spectrum(X: np.ndarray) -> np.ndarray:
    return np.log1p(np.abs(np.fft.fftshift(np.fft.fft2(X))) ** 2)


def spectral_ssim(original: np.ndarray, attacked: np.ndarray) -> float:
    """SSIM of the two power spectra; NaN when the matrix is too small for a 3x3 window."""
    from skimage.metrics import structural_similarity

    if min(original.shape) < 3:
        return float("nan")
    a, b = power_spectrum(original), power_spectrum(attacked)
    win = min(7, min(original.shape) - (1 - min(original.shape) % 2))
    data_range = float(max(a.max(), b.max()) - min(a.min(), b.min())) or 1.0
    return float(structural_similarity(a, b, data_range=data_range, win_size=win))


def detection_rows(
    model: str,
    box: Counted,
    *,
    X: np.ndarray,
    y: np.ndarray,
    importance: np.ndarray,
    settings: Mapping[str, Any],
) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """Detection at the largest m: FIMBA (and the brute-force ablation, the paper's "random perturbation").

    Per variant and method, the SSIM of all test samples and of those the attack turned into FP or FN (rows of
    detection.tsv); the power spectra of the original and of the first variant's attacked matrices.
    """
    seed = settings["seed"]
    no_endpoints = settings.get("no_endpoints", "report")
    m = max(settings["top_m"])
    pred = box.predict(X)
    det, spectra = [], {"original": power_spectrum(X)}
    for variant in settings["variants"]:
        v_index = VARIANTS.index(variant)
        ends, endpoint_status = resolve_endpoints(
            X, pred, y, variant=variant, p=settings["p"], no_endpoints=no_endpoints
        )
        log_endpoints(model, variant, ends, status=endpoint_status, errors=int((pred != y).sum()))
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
    return det, spectra


def merge_detection_stage(parts: list[str], out_tsv: str) -> None:
    """detection.tsv of every model: their tables one after the other."""
    table = pd.concat([pd.read_csv(p, sep="\t") for p in parts], ignore_index=True)
    with atomic_outputs(out_tsv) as (tmp,):
        write_tsv(table[DETECTION_COLUMNS], tmp)
