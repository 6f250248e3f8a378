"""The study's table (one row per grid point and attack) and its figures (AUC against one grid key).

Every number is read from the points' metrics.tsv (rule evaluate_attacks: AUC with its bootstrap CI, TPR at low
FPR, the empirical epsilon lower bound); nothing is recomputed here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ...errors import InputError


def summary_table(points: Sequence[Mapping[str, Any]], metrics_paths: Sequence[str]) -> pd.DataFrame:
    """One row per (point, attack): ``point``, the point's grid values, then every column of its metrics.tsv.

    ``points`` are ``{"name": ..., "values": {grid key: value}}`` in grid order; ``metrics_paths`` the points'
    metrics.tsv in the same order. Rows keep the points' order, and within a point the attacks' order.
    """
    if len(points) != len(metrics_paths):
        raise ValueError(f"{len(points)} points but {len(metrics_paths)} metrics tables")
    frames = []
    for point, path in zip(points, metrics_paths, strict=True):
        metrics = pd.read_csv(path, sep="\t", keep_default_na=False, na_values=[""])
        if "attack" not in metrics or "auc" not in metrics:
            raise InputError(f"{path} has no attack and auc columns; re-run evaluate_attacks for point {point['name']}")
        head = pd.DataFrame({"point": [point["name"]] * len(metrics)})
        for key, value in point["values"].items():
            head[key] = value
        frames.append(pd.concat([head, metrics.reset_index(drop=True)], axis=1))
    return pd.concat(frames, ignore_index=True)


def auc_figure(table: pd.DataFrame, key: str, path: str | os.PathLike) -> None:
    """AUC (with its CI as error bars) against grid key ``key``, one line per attack; one panel per combination of
    the other grid keys. Without ``key`` in the grid the figure says so (the rule's output exists either way).

    The neighbourhood attack's variants on one probability or on SNP sites only are left to the table: each is a
    slice of its attack (headline.auc_kind), and a line each would bury the attacks."""
    from ...headline import auc_kind
    from ...plotting import plt, save_figure

    grid = [c for c in table.columns[1 : table.columns.get_loc("attack")]]
    if key not in grid:
        fig, ax = plt.subplots(figsize=(5, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, f"{key} is not varied in this study", ha="center", va="center")
        save_figure(fig, path)
        return
    others = [k for k in grid if k != key]
    table = table[table.attack.map(auc_kind) == "auc"]
    panels = list(table.groupby(others, sort=False)) if others else [((), table)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6), squeeze=False, sharey=True)
    for ax, (label, panel) in zip(axes[0], panels, strict=True):
        label = label if isinstance(label, tuple) else (label,)
        for attack, rows in panel.groupby("attack", sort=False):
            rows = rows.sort_values(key)
            auc = rows.auc.astype(float)
            err = [auc - rows.auc_low.astype(float), rows.auc_high.astype(float) - auc]
            ax.errorbar(rows[key], auc, yerr=err, marker="o", capsize=2, label=attack)
        ax.axhline(0.5, color="grey", lw=0.8, ls=":")
        ax.set_xlabel(key)
        if key in ("epochs", "duplication") and table[key].max() / max(table[key].min(), 1) >= 8:
            ax.set_xscale("log", base=2)
        ax.set_title(", ".join(f"{k} {v}" for k, v in zip(others, label, strict=True)) or f"AUC against {key}")
    axes[0][0].set_ylabel("AUC (CI)")
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    save_figure(fig, path)
