"""Figures of the privacy audit (matplotlib, written as PNG)."""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from sklearn.metrics import roc_curve

from ..plotting import plt, save_figure


def headline_attacks(columns) -> list[str]:
    """Attack columns without the per-probability and SNP-site-only neighborhood variants."""
    skip = ("window_id", "member")
    return [c for c in columns if c not in skip and not re.search(r"_p[0-9.]+|_snpsites", c)]


def roc_figure(scores: pd.DataFrame, path: str | os.PathLike) -> None:
    """ROC on linear and log-log axes, every headline attack on one figure."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    for column in headline_attacks(scores.columns):
        ok = scores[column].notna()
        fpr, tpr, _ = roc_curve(scores.member[ok], scores[column][ok])
        for ax in axes:
            ax.plot(fpr, tpr, label=column, lw=1.2)
    lims = np.logspace(-4, 0, 50)
    axes[0].plot([0, 1], [0, 1], "k:", lw=0.8)
    axes[1].plot(lims, lims, "k:", lw=0.8)
    axes[1].set(xscale="log", yscale="log", xlim=(1e-3, 1), ylim=(1e-3, 1))
    for ax, title in zip(axes, ("ROC", "ROC, log-log (low FPR)"), strict=True):
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    axes[1].legend(fontsize=7, loc="lower right")
    save_figure(fig, path)


def histogram_figure(scores: pd.DataFrame, path: str | os.PathLike) -> None:
    """Member vs non-member score distributions, one panel per headline attack."""
    columns = headline_attacks(scores.columns)
    ncol = 3
    nrow = max(1, -(-len(columns) // ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 2.8 * nrow), squeeze=False)
    for ax, column in zip(axes.flat, columns, strict=False):
        values = scores[[column, "member"]].dropna()
        bins = np.histogram_bin_edges(values[column], bins=30)
        ax.hist(values[column][values.member == 0], bins=bins, alpha=0.6, label="non-members", color="tab:gray")
        ax.hist(values[column][values.member == 1], bins=bins, alpha=0.6, label="members", color="tab:red")
        ax.set_title(column, fontsize=9)
    for ax in list(axes.flat)[len(columns) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    save_figure(fig, path)


def neighbor_loss_figure(target_scores: pd.DataFrame, path: str | os.PathLike) -> None:
    """Per window, each SNP neighbor's loss (grey), their mean (blue), the original (red).

    The figure of the original HyenaDNA membership-inference benchmark, redrawn for comparison with it.
    """
    windows = target_scores[target_scores.kind == "window"].set_index("window_id")["loss"].sort_values()
    nbr = target_scores[target_scores.kind == "snp"]
    probs = sorted(nbr.prob.unique())
    fig, axes = plt.subplots(len(probs) or 1, 1, figsize=(11, 2.6 * max(len(probs), 1)), squeeze=False)
    x = {w: i for i, w in enumerate(windows.index)}
    for ax, p in zip(axes[:, 0], probs, strict=False):
        sub = nbr[nbr.prob == p]
        ax.scatter(sub.window_id.map(x), sub.loss, s=2, color="0.7", label="neighbor")
        mean = sub.groupby("window_id").loss.mean().reindex(windows.index)
        ax.plot(range(len(windows)), mean.to_numpy(), ".", ms=2.5, color="tab:blue", label="mean neighbor")
        ax.plot(range(len(windows)), windows.to_numpy(), ".", ms=2.5, color="tab:red", label="original")
        ax.set(title=f"SNP neighbors, p = {p:g}", ylabel="loss (nats/token)")
    axes[-1, 0].set_xlabel(f"{len(windows)} windows, sorted by their own loss")
    axes[0, 0].legend(fontsize=8, markerscale=3)
    save_figure(fig, path)


def read_snp_neighbor_losses(paths: Sequence[str | os.PathLike], *, max_windows: int = 2000) -> pd.DataFrame:
    """The loss of windows and their SNP neighbors from per-sequence feature shards (four columns, shard by shard).

    At most ``max_windows`` windows are kept: those with the smallest CRC-32 of their id (bottom-k sampling), so
    the figure's memory is one shard plus the sample whatever the genome's size, and every run draws the same
    windows. A scatter of millions of windows would show nothing more than a few thousand do.
    """
    columns = ["window_id", "kind", "prob", "loss"]
    kept = pd.DataFrame(columns=columns)
    for path in paths:
        part = pq.read_table(path, columns=columns, filters=[("kind", "in", ["window", "snp"])]).to_pandas()
        kept = pd.concat([kept, part], ignore_index=True) if len(kept) else part
        ids = kept.window_id.unique()
        if len(ids) > max_windows:
            chosen = [w for _, w in sorted((zlib.crc32(str(w).encode()), str(w)) for w in ids)[:max_windows]]
            kept = kept[kept.window_id.isin(chosen)].reset_index(drop=True)
    return kept


def token_profile(paths: Sequence[str | os.PathLike], membership: pd.DataFrame) -> pd.DataFrame:
    """Mean log p of the windows' i-th scored token, members vs non-members, from per-token shards.

    Each shard is read and added to running sums before the next, so memory is one shard's windows.
    """
    member = membership.set_index("window_id").target_member
    sums: dict[int, np.ndarray] = {0: np.zeros(0), 1: np.zeros(0)}
    counts: dict[int, np.ndarray] = {0: np.zeros(0), 1: np.zeros(0)}
    for path in paths:
        table = pq.read_table(path, columns=["window_id", "kind", "token_logprob"], filters=[("kind", "==", "window")])
        for window_id, values in zip(
            table.column("window_id").to_pylist(), table.column("token_logprob").to_pylist(), strict=True
        ):
            if window_id not in member.index:
                continue
            label = int(member[window_id])
            lp = np.asarray(values, dtype=np.float64)
            if len(lp) > len(sums[label]):
                sums[label] = np.pad(sums[label], (0, len(lp) - len(sums[label])))
                counts[label] = np.pad(counts[label], (0, len(lp) - len(counts[label])))
            sums[label][: len(lp)] += lp
            counts[label][: len(lp)] += 1
    width = max(len(sums[0]), len(sums[1]))
    out = {"position": np.arange(width)}
    for label, name in ((1, "members"), (0, "nonmembers")):
        s = np.pad(sums[label], (0, width - len(sums[label])))
        c = np.pad(counts[label], (0, width - len(counts[label])))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[name] = np.where(c > 0, s / np.maximum(c, 1), np.nan)
    return pd.DataFrame(out)


def token_profile_figure(profile: pd.DataFrame, path: str | os.PathLike) -> None:
    """Mean log p by token position for members and non-members (needs the per-token tables)."""
    fig, ax = plt.subplots(figsize=(9, 3.5))
    ax.plot(profile.position, profile.nonmembers, lw=0.8, color="tab:gray", label="non-members")
    ax.plot(profile.position, profile.members, lw=0.8, color="tab:red", label="members")
    ax.set(xlabel="scored token", ylabel="mean log p (nats)", title="Per-token log-likelihood along the window")
    ax.legend(fontsize=8)
    save_figure(fig, path)


def snp_site_figure(scores: pd.DataFrame, path: str | os.PathLike) -> None:
    """Neighbor loss difference on all tokens vs on SNP-site tokens only."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    if {"neighborhood_snp", "neighborhood_snp_snpsites"} <= set(scores.columns):
        for label, color, name in ((0, "tab:gray", "non-members"), (1, "tab:red", "members")):
            sub = scores[scores.member == label]
            ax.scatter(sub.neighborhood_snp, sub.neighborhood_snp_snpsites, s=6, alpha=0.6, color=color, label=name)
        ax.axhline(0, color="k", lw=0.5)
        ax.axvline(0, color="k", lw=0.5)
        ax.legend(fontsize=8)
    ax.set(
        xlabel="mean neighbor loss - loss, all tokens",
        ylabel="same, SNP-site tokens only",
        title="Where the neighbor signal comes from",
    )
    save_figure(fig, path)


def person_roc_figure(scores: pd.DataFrame, path: str | os.PathLike) -> None:
    """:func:`roc_figure` of the person-level scores (person_scores.tsv), one curve per attack that has one."""
    roc = scores.drop(columns=["n_sequences", "alt_tokens"]).rename(columns={"sample": "window_id"})
    # An attack with no score for members or for non-members (no alt alleles in few windows) has no ROC.
    roc = roc[[c for c in roc if c in ("window_id", "member") or roc.member[roc[c].notna()].nunique() == 2]]
    roc_figure(roc, path)


def windows_curve_figure(curve: pd.DataFrame, path: str | os.PathLike) -> None:
    """Person-level AUC against windows per person, one line per attack, a band of one sd over draws."""
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for attack, g in curve.groupby("attack", sort=False):
        g = g.sort_values("windows")
        ax.plot(g.windows, g.auc_mean, marker="o", label=attack, lw=1.2)
        ax.fill_between(g.windows, g.auc_mean - g.auc_sd, g.auc_mean + g.auc_sd, alpha=0.15)
    ax.axhline(0.5, color="k", ls=":", lw=0.8)
    ax.set(xscale="log", xlabel="windows per person", ylabel="person-level AUC", ylim=(0, 1))
    ax.legend(fontsize=7)
    save_figure(fig, path)


def genotype_accuracy_figure(summary: pd.DataFrame, path: str | os.PathLike) -> None:
    """Accuracy by AF bin: members, non-members, major-allele and AF-sampling baselines; one panel per truth."""
    truths = [t for t in ("alt", "ref") if t in set(summary.truth)] or ["alt"]
    fig, axes = plt.subplots(1, len(truths), figsize=(6 * len(truths), 4.5), squeeze=False)
    for ax, truth in zip(axes[0], truths, strict=True):
        part = summary[summary.truth == truth]
        bins = list(dict.fromkeys(part.af_bin))
        x = np.arange(len(bins))
        bars = [
            ("members", part[part.group == "member"], "accuracy_model"),
            ("non-members", part[part.group == "non-member"], "accuracy_model"),
            ("major allele", part[part.group == "non-member"], "accuracy_major_allele"),
            ("sample by AF", part[part.group == "non-member"], "accuracy_af_sampling"),
        ]
        for k, (label, rows, column) in enumerate(bars):
            values = rows.set_index("af_bin")[column].reindex(bins).to_numpy(float)
            ax.bar(x + (k - 1.5) * 0.2, values, width=0.2, label=label)
        ax.set_xticks(x, bins, fontsize=7)
        ax.set(
            xlabel="allele frequency of the site's ALT", ylabel="accuracy", ylim=(0, 1), title=f"true allele: {truth}"
        )
        ax.legend(fontsize=7)
    save_figure(fig, path)
