"""The defence rows of the GenoArmory-style table (results/robustness/defence_table.tsv) and their one-sentence
verdict in the report.

One row per classifier and adversarial-training scheme run (``adversarial_training.scheme`` and ``compare``),
each measured on the same fixed held-out sample before the defence (iteration 0) and after it (the last
iteration):

- the GA's attack success rate (its published rule: label flip and true-class probability down by ``delta``)
  over the correctly classified held-out sequences (so the denominators can differ), as GenoArmory reports it;
- robust accuracy at every edit budget j = 1..max_edits under the standard criterion (:mod:`.robust_accuracy`:
  correct and no attack within j edits makes the prediction wrong) over the whole held-out sample, and clean
  accuracy on the test split.

Every proportion has its 95% Wilson score interval (Wilson, JASA 1927). verdict, on robust accuracy at the
attack's budget: ``helped`` when the interval after lies wholly above the interval before, ``hurt`` when wholly
below, ``unclear`` when they overlap (disjoint 95% intervals are a conservative test: overlap does not prove "no
effect"), ``not trained`` with no iteration. Robust accuracy, not the success rate, decides: a defended model
that is only less confident has smaller probability drops, so fewer GA successes, without being more robust.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import pandas as pd

from ...outputs import atomic_outputs, write_tsv
from .adversarial_training import wilson_interval

COLUMNS = [
    "classifier",
    "defence",
    "iterations",
    "n_holdout",
    "max_edits",
    "n_attacked_before",
    "asr_before",
    "asr_before_low",
    "asr_before_high",
    "n_attacked_after",
    "asr_after",
    "asr_after_low",
    "asr_after_high",
    "clean_before",
    "clean_after",
    "robust_before",
    "robust_before_low",
    "robust_before_high",
    "robust_after",
    "robust_after_low",
    "robust_after_high",
    "verdict",
]
"""The fixed columns; then ``robust_k<j>_before``, ``robust_k<j>_after`` (each with ``_low``, ``_high``) for
j = 1..max_edits; robust_before / robust_after repeat the largest budget's."""


def _rate(k: int, n: int) -> tuple[float, float, float]:
    low, high = wilson_interval(k, n)
    return (k / n if n else float("nan")), low, high


def _asr(row: pd.Series) -> tuple[float, float, float, int]:
    n = int(row.n_attacked)
    k = round(float(row.asr) * n) if n else 0
    return (*_rate(k, n), n)


def _budgets(cost: pd.DataFrame) -> list[int]:
    return sorted(int(c.removeprefix("n_robust_k")) for c in cost.columns if c.startswith("n_robust_k"))


def _verdict(iterations: int, before: tuple[float, float, float], after: tuple[float, float, float]) -> str:
    if iterations == 0:
        return "not trained"
    if after[1] > before[2]:
        return "helped"
    if after[2] < before[1]:
        return "hurt"
    return "unclear"


def defence_row(classifier: str, progress: pd.DataFrame, cost: pd.DataFrame) -> dict:
    """The row of one scheme run on one classifier, from its progress.tsv and cost.tsv."""
    first, last = progress.iloc[0], progress.iloc[-1]
    start, final = cost.iloc[0], cost.iloc[-1]
    before, b_low, b_high, n_before = _asr(first)
    after, a_low, a_high, n_after = _asr(last)
    iterations = int(last.iteration)
    n = int(final.n_holdout)
    budgets = _budgets(cost)
    by_budget = {}
    for j in budgets:
        for when, row in (("before", start), ("after", final)):
            value, low, high = _rate(int(row[f"n_robust_k{j}"]), n)
            by_budget.update(
                {f"robust_k{j}_{when}": value, f"robust_k{j}_{when}_low": low, f"robust_k{j}_{when}_high": high}
            )
    top = budgets[-1]
    robust_before = tuple(by_budget[f"robust_k{top}_before{s}"] for s in ("", "_low", "_high"))
    robust_after = tuple(by_budget[f"robust_k{top}_after{s}"] for s in ("", "_low", "_high"))
    return {
        "classifier": classifier,
        "defence": str(cost.scheme.iloc[0]),
        "iterations": iterations,
        "n_holdout": n,
        "max_edits": top,
        "n_attacked_before": n_before,
        "asr_before": before,
        "asr_before_low": b_low,
        "asr_before_high": b_high,
        "n_attacked_after": n_after,
        "asr_after": after,
        "asr_after_low": a_low,
        "asr_after_high": a_high,
        "clean_before": float(first.clean_accuracy),
        "clean_after": float(last.clean_accuracy),
        "robust_before": robust_before[0],
        "robust_before_low": robust_before[1],
        "robust_before_high": robust_before[2],
        "robust_after": robust_after[0],
        "robust_after_low": robust_after[1],
        "robust_after_high": robust_after[2],
        "verdict": _verdict(iterations, robust_before, robust_after),
        **by_budget,
    }


def defence_table(runs: Sequence[tuple[str, str, str]]) -> pd.DataFrame:
    """``runs``: (classifier, progress.tsv, cost.tsv) of every scheme run, in table order."""
    rows = [
        defence_row(name, pd.read_csv(progress, sep="\t"), pd.read_csv(cost, sep="\t")) for name, progress, cost in runs
    ]
    budgets = max((r["max_edits"] for r in rows), default=0)
    extra = [
        f"robust_k{j}_{when}{s}"
        for j in range(1, budgets + 1)
        for when in ("before", "after")
        for s in ("", "_low", "_high")
    ]
    return pd.DataFrame(rows, columns=COLUMNS + extra)


def interval_text(value: float, low: float, high: float) -> str:
    """A proportion with its interval, two decimals: ``0.39 [0.34, 0.45]`` (the report's and the docs' form)."""
    return f"{value:.2f} [{low:.2f}, {high:.2f}]"


CLEAN_LOSS_LIMIT = 0.02
"""The clean-accuracy loss beyond which a robustness gain is not counted as a working defence: the bound of the
target in docs/robustness-ga.md (+0.2 robust accuracy, clean accuracy within 2 points). A gain bought with a
worse classifier is not one a user can deploy, so the sentence counts the runs that helped beyond it."""


def clean_loss_exceeded(table: pd.DataFrame) -> pd.Series:
    """Whether each run lost more than :data:`CLEAN_LOSS_LIMIT` of clean accuracy (before minus after)."""
    # Clean accuracies are fractions k/n: their difference is exact to far below 1e-9, so a loss of exactly 2 points
    # (0.90 - 0.88 = 0.0200000000000000018 in floats) stays within the bound.
    return (table.clean_before - table.clean_after) > CLEAN_LOSS_LIMIT + 1e-9


def defences_sentence(table: pd.DataFrame) -> str:
    """One sentence: did the defences raise robust accuracy at the attack's budget, with each run's intervals and
    clean accuracy, and how many of the runs that helped paid for it with more than 2 points of clean accuracy."""
    trained = table[table.verdict != "not trained"]
    if trained.empty:
        return "No defence was trained (every scheme run has 0 iterations), so none can be said to have helped."
    clauses = [
        f"{r.defence} on {html.escape(str(r.classifier))} "
        f"{interval_text(r.robust_before, r.robust_before_low, r.robust_before_high)} &rarr; "
        f"{interval_text(r.robust_after, r.robust_after_low, r.robust_after_high)} ({r.verdict}; clean accuracy "
        f"{r.clean_before:.3f} &rarr; {r.clean_after:.3f})"
        for r in trained.itertuples()
    ]
    helped = trained.verdict == "helped"
    costly = int((helped & clean_loss_exceeded(trained)).sum())
    cost = (
        f", {costly} of those {int(helped.sum())} at a cost of more than {CLEAN_LOSS_LIMIT * 100:g} points of clean "
        "accuracy"
        if helped.any()
        else ""
    )
    budgets = sorted({int(b) for b in trained.max_edits})
    budget = " / ".join(str(b) for b in budgets)
    return (
        f"The defences raised robust accuracy at {budget} edits (correct and not made wrong by any attack found "
        f"within that budget) beyond the overlap of the 95% Wilson intervals in {int(helped.sum())} of "
        f"{len(trained)} runs{cost} (robust accuracy on the held-out sample before &rarr; after: "
        f"{'; '.join(clauses)})."
    )


def _by_budget_html(table: pd.DataFrame) -> str:
    """Robust accuracy at every budget and clean accuracy, before &rarr; after, one row per run."""
    from ...report.elements import html_table

    budgets = range(1, int(table.max_edits.max()) + 1)
    rows = []
    for r in table.to_dict("records"):
        row = {
            "classifier": r["classifier"],
            "defence": r["defence"],
            "clean": f"{r['clean_before']:.3f} \u2192 {r['clean_after']:.3f}",
        }
        for j in budgets:
            if f"robust_k{j}_before" not in r or pd.isna(r[f"robust_k{j}_before"]):
                row[f"budget {j}"] = "n/a"
                continue
            b = interval_text(r[f"robust_k{j}_before"], r[f"robust_k{j}_before_low"], r[f"robust_k{j}_before_high"])
            a = interval_text(r[f"robust_k{j}_after"], r[f"robust_k{j}_after_low"], r[f"robust_k{j}_after_high"])
            row[f"budget {j}"] = f"{b} \u2192 {a}"
        rows.append(row)
    return html_table(pd.DataFrame(rows))


def defence_table_html(table: pd.DataFrame) -> str:
    from ...report.elements import html_table

    if table.empty:
        return ""
    return (
        "<h4>Defence rows: GA success and robust accuracy before / after each defence</h4>"
        f"<p>{defences_sentence(table)}</p>"
        "<p>Each defence is trained on the training split and measured on the same fixed held-out sample of the "
        "test split (never trained on) before (iteration 0) and after its last iteration. ASR: the GA's success "
        "rule (label flip and true-class probability down by delta) over the correctly classified sequences of "
        "that sample, as GenoArmory reports it. Robust accuracy: over the whole sample, a sequence counts when it "
        "is correct and no attack within the budget makes the prediction wrong (a flip with a small probability "
        "drop counts as broken). verdict, on robust accuracy at the attack's budget: helped / hurt when the two "
        "95% intervals are disjoint; unclear when they overlap (a conservative test).</p>"
        + html_table(table[COLUMNS])
        + "<h4>Robust accuracy by edit budget and clean accuracy, before &rarr; after (95% Wilson intervals)</h4>"
        + _by_budget_html(table)
    )


def defence_table_stage(runs: Sequence[tuple[str, str, str]], *, out_tsv: str) -> None:
    """results/robustness/defence_table.tsv."""
    with atomic_outputs(out_tsv) as (tmp,):
        write_tsv(defence_table(runs), tmp)
