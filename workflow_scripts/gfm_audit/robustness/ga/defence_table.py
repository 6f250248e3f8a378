"""The defence rows of the GenoArmory-style table (results/robustness/defence_table.tsv) and their one-sentence
verdict in the report.

One row per classifier and adversarial-training scheme run (``adversarial_training.scheme`` and ``compare``): the
GA's attack success rate on the fixed held-out sample before the defence (iteration 0) and after it (the last
iteration), each with its 95% Wilson score interval (Wilson, JASA 1927) over the sequences attacked (the correctly
classified ones of the held-out sample, so the denominators can differ), and the clean and robust accuracy beside.

verdict: ``helped`` when the interval after lies wholly below the interval before, ``hurt`` when wholly above,
``unclear`` when they overlap (disjoint 95% intervals are a conservative test: overlap does not prove "no
effect"), ``not trained`` with no iteration.
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
    "robust_after",
    "robust_after_low",
    "robust_after_high",
    "verdict",
]


def _asr(row: pd.Series) -> tuple[float, float, float, int]:
    n = int(row.n_attacked)
    k = round(float(row.asr) * n) if n else 0
    low, high = wilson_interval(k, n)
    rate = k / n if n else float("nan")
    if n:  # at k = 0 or k = n the interval's end can miss the rate by float rounding (2.8e-17 at 0 of 12)
        low, high = min(low, rate), max(high, rate)
    return rate, low, high, n


def defence_row(classifier: str, progress: pd.DataFrame, cost: pd.DataFrame) -> dict:
    """The row of one scheme run on one classifier, from its progress.tsv and cost.tsv."""
    first, last = progress.iloc[0], progress.iloc[-1]
    before, b_low, b_high, n_before = _asr(first)
    after, a_low, a_high, n_after = _asr(last)
    iterations = int(last.iteration)
    if iterations == 0:
        verdict = "not trained"
    elif a_high < b_low:
        verdict = "helped"
    elif a_low > b_high:
        verdict = "hurt"
    else:
        verdict = "unclear"
    final = cost.iloc[-1]
    return {
        "classifier": classifier,
        "defence": str(cost.scheme.iloc[0]),
        "iterations": iterations,
        "n_holdout": int(final.n_holdout),
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
        "robust_before": float(cost.robust_accuracy.iloc[0]),
        "robust_after": float(final.robust_accuracy),
        "robust_after_low": float(final.robust_ci_low),
        "robust_after_high": float(final.robust_ci_high),
        "verdict": verdict,
    }


def defence_table(runs: Sequence[tuple[str, str, str]]) -> pd.DataFrame:
    """``runs``: (classifier, progress.tsv, cost.tsv) of every scheme run, in table order."""
    rows = [
        defence_row(name, pd.read_csv(progress, sep="\t"), pd.read_csv(cost, sep="\t")) for name, progress, cost in runs
    ]
    return pd.DataFrame(rows, columns=COLUMNS)


def _interval(value: float, low: float, high: float) -> str:
    return f"{value:.2f} [{low:.2f}, {high:.2f}]"


def defences_sentence(table: pd.DataFrame) -> str:
    """One sentence: did the defences lower the GA's success rate, with each run's intervals."""
    trained = table[table.verdict != "not trained"]
    if trained.empty:
        return "No defence was trained (every scheme run has 0 iterations), so none can be said to have helped."
    clauses = [
        f"{r.defence} on {html.escape(str(r.classifier))} "
        f"{_interval(r.asr_before, r.asr_before_low, r.asr_before_high)} &rarr; "
        f"{_interval(r.asr_after, r.asr_after_low, r.asr_after_high)} ({r.verdict})"
        for r in trained.itertuples()
    ]
    helped = int((trained.verdict == "helped").sum())
    return (
        f"The defences lowered the GA's success rate beyond the overlap of the 95% Wilson intervals in {helped} of "
        f"{len(trained)} runs (GA success rate on the held-out sample before &rarr; after: {'; '.join(clauses)})."
    )


def defence_table_html(table: pd.DataFrame) -> str:
    from ...report.elements import html_table

    if table.empty:
        return ""
    return (
        "<h4>Defence rows: GA success before / after each defence</h4>"
        f"<p>{defences_sentence(table)}</p>"
        "<p>Each defence is trained on the training split and measured on the same fixed held-out sample of the "
        "test split (never trained on) before (iteration 0) and after its last iteration; ASR over the correctly "
        "classified sequences of that sample, robust accuracy over the whole sample. helped / hurt: the two 95% "
        "intervals are disjoint; unclear: they overlap (a conservative test).</p>" + html_table(table)
    )


def defence_table_stage(runs: Sequence[tuple[str, str, str]], *, out_tsv: str) -> None:
    """results/robustness/defence_table.tsv."""
    with atomic_outputs(out_tsv) as (tmp,):
        write_tsv(defence_table(runs), tmp)
