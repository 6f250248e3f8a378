"""Figures of the GA attack and of adversarial training."""

from __future__ import annotations

import os
import re

import pandas as pd

from ...plotting import plt, save_figure


def budget_curve(summary: pd.DataFrame, attack: str) -> pd.DataFrame:
    """Rows ``<attack>_k<j>`` as (budget j, asr), sorted by j."""
    rows = summary[summary.attack.str.fullmatch(rf"{attack}_k\d+")]
    budgets = rows.attack.map(lambda a: int(re.search(r"_k(\d+)$", a).group(1)))
    return pd.DataFrame({"budget": budgets, "asr": rows.asr}).sort_values("budget")


def asr_vs_budget_figure(summary: pd.DataFrame, path: str | os.PathLike) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for attack, style in (("ga", "o-"), ("random", "s--")):
        curve = budget_curve(summary, attack)
        ax.plot(curve.budget, 100 * curve.asr, style, label="GA" if attack == "ga" else "random substitutions")
    ax.set(
        xlabel="edit budget k (substitutions)",
        ylabel="attack success rate (%)",
        title="ASR vs edit budget (same constraints and queries)",
    )
    ax.set_ylim(bottom=0)
    ax.set_xticks(sorted(budget_curve(summary, "ga").budget))
    ax.legend()
    save_figure(fig, path)


def edits_histogram_figure(adversarial: pd.DataFrame, path: str | os.PathLike) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 4))
    won = adversarial[adversarial.success.astype(bool)]
    top = int(adversarial.edits.max()) if len(adversarial) else 1
    ax.hist(won.edits, bins=range(1, max(top, 1) + 2), align="left", rwidth=0.8, color="tab:red")
    ax.set(
        xlabel="substitutions in the successful adversarial sequence",
        ylabel="sequences",
        title=f"Edits of successful GA attacks (n = {len(won)})",
    )
    save_figure(fig, path)


def progress_figure(progress: pd.DataFrame, path: str | os.PathLike, cost: pd.DataFrame | None = None) -> None:
    """Clean and robust accuracy and the GA's ASR per iteration; with ``cost``, the robust accuracy's 95% interval."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.plot(progress.iteration, 100 * progress.clean_accuracy, "o-", label="clean test accuracy")
    if cost is not None and len(cost):
        below = 100 * (cost.robust_accuracy - cost.robust_ci_low)
        above = 100 * (cost.robust_ci_high - cost.robust_accuracy)
        ax.errorbar(
            cost.iteration,
            100 * cost.robust_accuracy,
            yerr=[below, above],
            fmt="s-",
            capsize=3,
            label="robust accuracy (held-out set, 95% Wilson interval)",
        )
    else:
        ax.plot(progress.iteration, 100 * progress.robust_accuracy, "s-", label="robust accuracy (held-out set)")
    ax.plot(progress.iteration, 100 * progress.asr, "^--", label="GA success rate (held-out set)")
    ax.set(xlabel="adversarial-training iteration", ylabel="%", title="Adversarial training")
    ax.set_xticks(progress.iteration)
    ax.legend(fontsize=8)
    save_figure(fig, path)


ATTACK_STYLES = {
    "ga": ("o-", "GA"),
    "random": ("s--", "random substitutions"),
    "greedy": ("^-", "greedy (TextFooler-style)"),
    "lm_proposal": ("v-", "LM proposals (BERT-Attack-style)"),
    "pgd": ("D-", "PGD on one-hot input"),
}


def comparison_figure(comparison: pd.DataFrame, path: str | os.PathLike) -> None:
    """ASR against the edit budget, one line per attack of ``comparison.tsv``."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for attack, rows in comparison.groupby("attack", sort=False):
        style, label = ATTACK_STYLES.get(attack, (".-", attack))
        rows = rows.sort_values("budget")
        ax.plot(rows.budget, 100 * rows.asr, style, label=label)
    n = int(comparison.n_attacked.max()) if len(comparison) else 0
    ax.set(
        xlabel="edit budget k (substitutions)",
        ylabel="attack success rate (%)",
        title=f"Attacks under the same constraints (n = {n})",
    )
    ax.set_ylim(bottom=0)
    if len(comparison):
        ax.set_xticks(sorted(comparison.budget.unique()))
    ax.legend(fontsize=8)
    save_figure(fig, path)


# What the empirical curve is: the standard robust accuracy, not "not flipped under the GA's success rule".
EMPIRICAL_LABEL = (
    "empirical robust accuracy (base classifier): correct and\n"
    "no misclassification found within k edits (GA; HotFlip if one-hot)"
)


def certified_accuracy_figure(accuracy: pd.DataFrame, path: str | os.PathLike) -> None:
    """certified_accuracy.tsv: the smoothed classifier's certified accuracy against the radius beside the base
    classifier's empirical robust accuracy against the budget (standard criterion), both with their 95% Wilson
    intervals."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for column, low, high, style, label in (
        ("certified_accuracy", "certified_ci_low", "certified_ci_high", "o-", "certified (smoothed classifier)"),
        ("robust_accuracy", "robust_ci_low", "robust_ci_high", "s--", EMPIRICAL_LABEL),
    ):
        # Clipped at 0: the Wilson bound of 0 of n can sit a rounding error above 0.
        below = 100 * (accuracy[column] - accuracy[low]).clip(lower=0)
        above = 100 * (accuracy[high] - accuracy[column]).clip(lower=0)
        ax.errorbar(accuracy.budget, 100 * accuracy[column], yerr=[below, above], fmt=style, capsize=3, label=label)
    n = int(accuracy.n_sequences.max()) if len(accuracy) else 0
    ax.set(
        xlabel="substitutions (certified radius / attack edit budget)",
        ylabel="accuracy (%)",
        title=f"Certified vs empirical robust accuracy (n = {n})",
    )
    ax.set_ylim(0, 100)
    ax.set_xticks(list(accuracy.budget))
    # Below the axes: the two-line empirical label would cover the curves inside them.
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    save_figure(fig, path)
