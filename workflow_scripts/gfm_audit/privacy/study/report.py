"""The study's HTML page (results/study/report.html): its grid, its table (grid point x attack), the AUC figures,
and one sentence reading the curve, each generated from results/study/summary.tsv (rule study_summary).

Nothing here recomputes a metric: every number is a cell of summary.tsv, which copies the points' metrics.tsv.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ...report.elements import html_image, html_table
from ..metrics import TOO_FEW

# The attack the sentence reads: the plain loss (Yeom et al. 2018), present in every default run; else the table's
# first attack that is not a neighbourhood variant.
CURVE_ATTACK = "loss"

# The metrics columns the page shows, in this order, with their headings; the rest stay in summary.tsv.
SHOWN = {
    "tpr_at_fpr_0.01": "TPR at FPR ≤ 0.01",
    "tpr_at_fpr_0.001": "TPR at FPR ≤ 0.001",
    "eps_lower_bound": "empirical ε ≥",
    "n_members": "members",
    "n_nonmembers": "non-members",
}


def member_passes(config: Mapping[str, Any]) -> int:
    """How many times training sees each member: epochs x duplication (membership.training.duplication; in
    membership.mode genome membership.genome.duplication), from a point's config."""
    membership = config.get("membership", {})
    block = membership.get("genome", {}) if membership.get("mode") == "genome" else membership.get("training", {})
    return int(membership.get("training", {}).get("epochs", 1)) * int(block.get("duplication", 1))


def grid_table(points: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per point: its name, grid values, target, seed and member passes (``points`` as the rule's params)."""
    rows = [
        {
            "point": p["name"],
            **p["values"],
            "target": p["target"],
            "seed": p["seed"],
            "member passes (epochs × duplication)": p["passes"],
        }
        for p in points
    ]
    return pd.DataFrame(rows)


def _number(value: Any, digits: int = 3) -> str:
    """A metric cell as text: a number to ``digits`` places, the too-few marker in words, n/a when empty."""
    if value == TOO_FEW:
        return "too few non-members"
    number = pd.to_numeric(value, errors="coerce")
    if pd.isna(number):
        return "n/a"
    return f"{float(number):.{digits}f}"


def _auc(row: Mapping[str, Any]) -> str:
    """AUC with its 95% bootstrap interval, as the page and the sentence write it."""
    if pd.isna(pd.to_numeric(row["auc"], errors="coerce")):
        return "n/a"
    return f"{_number(row['auc'])} [{_number(row['auc_low'])}, {_number(row['auc_high'])}]"


def shown_table(table: pd.DataFrame) -> pd.DataFrame:
    """summary.tsv as the page shows it: point, grid values, attack, AUC [CI], TPR at low FPR, ε, counts."""
    grid = list(table.columns[1 : table.columns.get_loc("attack")])
    out = table[["point", *grid, "attack"]].copy()
    out["AUC [95% CI]"] = [_auc(r) for r in table.to_dict("records")]
    for column, heading in SHOWN.items():
        if column in table:
            digits = 0 if column.startswith("n_") else (2 if column == "eps_lower_bound" else 3)
            out[heading] = [_number(v, digits) for v in table[column]]
    return out.astype(str)


def _passes(n: int) -> str:
    return f"{n} pass" if n == 1 else f"{n} passes"


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


def curve_sentence(table: pd.DataFrame, passes: Mapping[str, int]) -> str:
    """One plain sentence reading the curve: the loss attack's AUC (with its interval) at the smallest and at the
    largest member exposure (``passes``: point name -> epochs x duplication), each point there named; whether the
    two intervals overlap when one point stands at each end. Without a change in exposure across the grid, the
    points with the lowest and the highest AUC instead."""
    from ...headline import auc_kind

    attacks = [a for a in dict.fromkeys(table.attack) if auc_kind(a) == "auc"]
    if not attacks:
        return "No attack was evaluated at any point."
    attack = CURVE_ATTACK if CURVE_ATTACK in attacks else attacks[0]
    rows = table[table.attack == attack].copy()
    rows["passes"] = rows.point.map(passes)
    rows["auc_value"] = pd.to_numeric(rows.auc, errors="coerce")
    name = html.escape(attack.upper() if attack == CURVE_ATTACK else attack)

    def at(part: pd.DataFrame) -> str:
        return ", ".join(f"{_auc(r)} ({html.escape(r['point'])})" for r in part.to_dict("records"))

    low, high = int(rows.passes.min()), int(rows.passes.max())
    if low == high:
        rows = rows.dropna(subset=["auc_value"]).sort_values("auc_value", kind="stable")
        if rows.empty:
            return f"The {name} attack's AUC could not be evaluated at any point."
        return (
            f"Every point sees each member {_times(low)} (the grid varies neither epochs nor "
            f"duplication); the {name} attack's AUC [95% CI] is lowest at {at(rows.head(1))} and highest at "
            f"{at(rows.tail(1))}."
        )
    first, last = rows[rows.passes == low], rows[rows.passes == high]
    sentence = (
        f"The {name} attack's AUC [95% CI] is {at(first)} at the smallest training exposure ({_passes(low)} over "
        f"each member) and {at(last)} at the largest ({_passes(high)})"
    )
    if len(first) == 1 and len(last) == 1 and not first.auc_value.isna().any() and not last.auc_value.isna().any():
        a, b = first.iloc[0], last.iloc[0]
        apart = float(a.auc_high) < float(b.auc_low) or float(b.auc_high) < float(a.auc_low)
        sentence += (
            ": the intervals do not overlap."
            if apart
            else ": the intervals overlap, so this grid shows no clear change."
        )
    else:
        sentence += "."
    return sentence


def study_section(
    table_path: str | os.PathLike,
    *,
    points: Sequence[Mapping[str, Any]],
    figures: Mapping[str, str | os.PathLike],
    cost: pd.DataFrame | None = None,
) -> str:
    """The study's section: the sentence, the grid, the figures (``figures``: grid key -> PNG), the table and,
    when given, each point's cost (``cost``: a run table by point)."""
    table = pd.read_csv(table_path, sep="\t", keep_default_na=False, na_values=[""])
    passes = {p["name"]: int(p["passes"]) for p in points}
    parts = [
        "<h2>Study: membership leakage across training settings</h2>",
        f"<div class='verdict'>{curve_sentence(table, passes)}</div>",
        f"<h3>Grid ({len(points)} points)</h3>",
        "<p>Each point is a full privacy audit under <code>results/study/&lt;point&gt;/</code>; the windows and "
        "neighbors are shared. Member passes: how many times training sees each member window.</p>",
        html_table(grid_table(points)),
        "<h3>AUC against the grid</h3>",
        "<p>AUC with its 95% bootstrap interval, one line per attack (the neighbourhood attack's per-probability "
        "and SNP-site variants are in the table only), one panel per combination of the other grid keys.</p>",
    ]
    parts += [html_image(path, f"AUC against {key}") for key, path in figures.items()]
    parts += [
        "<h3>Every point and attack</h3>",
        "<p>From <code>results/study/summary.tsv</code>, which has every column of the points' "
        "<code>metrics.tsv</code> (balanced accuracy, the <code>_strict</code> TPRs, RMIA's population).</p>",
        html_table(shown_table(table)),
    ]
    if cost is not None and not cost.empty:
        parts += [
            "<h3>Cost per point</h3><p>From the points' benchmark records "
            "(<code>results/benchmarks/study/&lt;point&gt;/</code>): jobs, wall-clock time and the largest "
            "resident memory of one job.</p>",
            html_table(cost, digits=1),
        ]
    return "\n".join(parts)
