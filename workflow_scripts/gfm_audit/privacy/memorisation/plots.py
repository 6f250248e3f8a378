"""Figures of the memorisation stage (matplotlib, written as PNG)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ...plotting import plt, save_figure


def exposure_figure(exposure: pd.DataFrame, path: str | os.PathLike) -> None:
    """Exposure of every canary against its repeat count; never-inserted canaries at 0, the maximum dotted."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    repeats = sorted(exposure.repeats.unique())
    where = {r: i for i, r in enumerate(repeats)}
    jitter = np.random.default_rng(0).uniform(-0.12, 0.12, len(exposure))
    x = exposure.repeats.map(where).to_numpy() + jitter
    colours = np.where(exposure.group == "inserted", "tab:red", "tab:grey")
    ax.scatter(x, exposure.exposure, c=colours, s=22, alpha=0.8)
    means = exposure.groupby("repeats").exposure.mean()
    ax.plot([where[r] for r in means.index], means.to_numpy(), "k-", lw=1, label="mean")
    ax.axhline(exposure.log2_space.max(), color="k", ls=":", lw=0.8, label="log2 |R| (maximum)")
    ax.set_xticks(range(len(repeats)), ["never\ninserted" if r == 0 else f"{r}x" for r in repeats])
    ax.set(xlabel="times inserted into the target's training data", ylabel="exposure (bits)")
    ax.legend(fontsize=8)
    save_figure(fig, path)


def extraction_figure(extraction: pd.DataFrame, path: str | os.PathLike) -> None:
    """Exact-match and per-base accuracy against prefix length: model (solid) vs k-mer baseline (dashed)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    colours = {"member": "tab:red", "nonmember": "tab:blue"}
    # Canaries are continued from one prefix length at most; the baseline on them only repeats its 1/4 per base.
    windows = extraction.group.isin(list(colours))
    extraction = extraction[windows | (extraction.decoder == "model")]
    for ax, column, label in zip(
        axes, ("exact_match_rate", "per_base_accuracy"), ("exact-match rate", "per-base accuracy"), strict=True
    ):
        for (decoder, group, method), rows in extraction.groupby(["decoder", "group", "method"], sort=True):
            rows = rows.sort_values("prefix_length")
            style = "-" if decoder == "model" else "--"
            marker = "o" if "sampling" not in method else "^"
            ax.plot(
                rows.prefix_length,
                rows[column],
                style,
                marker=marker,
                color=colours.get(group, "tab:green" if group != "canary_reference" else "tab:grey"),
                label=f"{decoder}, {group}, {method}",
                lw=1.2,
            )
        ax.set(xlabel="prefix length (bases)", ylabel=label, ylim=(-0.02, 1.02))
    axes[1].legend(fontsize=6, loc="best")
    save_figure(fig, path)
