"""FIMBA figures: accuracy / FP / FN against m, power spectra, and the comparison with ART's attacks."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ...plotting import plt, save_figure

STYLES = {"fimba": "o-", "random_features": "s--", "shap_uniform": "^:", "brute_force": "x-."}


def curve_figure(curve: pd.DataFrame, path: str | os.PathLike) -> None:
    """One row per endpoint variant; columns accuracy, FP, FN; FIMBA and the three ablations on each panel."""
    clean = curve[curve.method == "clean"].iloc[0]
    variants = [v for v in curve.variant.unique() if v != "none"]
    fig, axes = plt.subplots(len(variants), 3, figsize=(13, 3.6 * len(variants)), squeeze=False)
    for row, variant in zip(axes, variants, strict=True):
        sub = curve[curve.variant == variant]
        statuses = set(sub.status) if "status" in sub else set()
        # The empty (not tried) lines must not pass for an attack that changed nothing.
        note = (
            "\nno endpoints: fimba, random_features not tried"
            if "no_endpoints" in statuses
            else "\nfimba, random_features: tp_tn endpoints"
            if "fallback_tp_tn" in statuses
            else ""
        )
        for ax, metric in zip(row, ("accuracy", "fp", "fn"), strict=True):
            for method, style in STYLES.items():
                line = sub[sub.method == method].sort_values("m")
                ax.plot(line.m, line[metric], style, label=method, lw=1.2)
            ax.axhline(clean[metric], color="k", lw=0.8, ls=":", label="clean")
            ax.set(xscale="log", xlabel="m (features perturbed)", ylabel=metric, title=f"{variant}: {metric}{note}")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"FIMBA vs ablations: {clean.model}")
    save_figure(fig, path)


def spectra_figure(spectra: dict[str, np.ndarray], model: str, path: str | os.PathLike) -> None:
    names = [n for n in ("original", "fimba", "brute_force") if n in spectra]
    lo = min(float(spectra[n].min()) for n in names)
    hi = max(float(spectra[n].max()) for n in names)
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.8), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        ax.imshow(spectra[name], aspect="auto", vmin=lo, vmax=hi, cmap="magma")
        ax.set(title=f"{name}", xlabel="gene frequency", ylabel="sample frequency")
    fig.suptitle(f"log power spectra of the test matrix: {model} (first variant, largest m)")
    save_figure(fig, path)


COMPARISON_STYLES = {"fimba": "o-", "zoo": "s--", "hopskipjump": "^:", "fgsm": "x-.", "auto_pgd": "d-"}


def comparison_figure(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Accuracy of one classifier against the L2 budget (FIMBA's distance at each m), one line per attack."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    clean = table[table.attack == "clean"]
    for attack, style in COMPARISON_STYLES.items():
        line = table[table.attack == attack].sort_values("budget")
        if len(line):
            ax.plot(line.budget, line.accuracy, style, label=attack, lw=1.2)
    if len(clean):
        ax.axhline(clean.accuracy.iloc[0], color="k", lw=0.8, ls=":", label="clean")
    ax.set(xlabel="L2 budget (FIMBA's largest distance at m)", ylabel="accuracy", ylim=(-0.02, 1.02))
    ax.legend(fontsize=7)
    ax.set_title(f"FIMBA vs ART attacks: {table.model.iloc[0]}" if len(table) else "no comparison rows")
    save_figure(fig, path)
