"""The adversarial-training gain tested pair by pair: each defended model against the undefended one on the same
held-out sequences (McNemar's exact test).

Disjoint 95% Wilson intervals, the tables' rule for "a gain", compare two robust accuracies as if they came from
two samples; here both models are attacked on the same held-out sequences, so the comparison is paired: of the
sequences on which the two models disagree at budget j, b are robust under the undefended model only and c under
the defended one only, and under "no difference" each of the b + c is equally likely to fall either way
(McNemar, Psychometrika 1947; the test Dietterich, Neural Computation 1998, recommends for two classifiers on one
test set). Exact two-sided p = min(1, 2 P(X <= min(b, c))), X ~ Binomial(b + c, 1/2). "Helps (paired)": c > b,
p < 0.05 and clean accuracy down by at most 2 points (the benchmark's rule).

Reads the per-sequence tables bench_adversarial_training.py writes beside its TSVs (``*_sequences.tsv``: per model
and held-out sequence, the largest budget it is robust at) and the TSVs for clean accuracy, and fills a page block.
Run: ``.venv/bin/python benchmarks/adversarial_paired.py --tsv RESULTS.tsv ... [--seeds S ...] [--task tf_0]
[--budgets 5 2] --block NAME``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from adversarial_seeds import sign_test_p  # noqa: E402
from bench_adversarial_training import clean_kept, sequences_path, write_page  # noqa: E402

ALPHA = 0.05


def mcnemar_exact_p(b: int, c: int) -> float:
    """McNemar's exact two-sided test (McNemar 1947): p = min(1, 2 P(X <= min(b, c))) for X ~ Binomial(b + c, 1/2);
    ``b`` and ``c`` are the discordant pairs. No discordant pair: p = 1."""
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must not be negative: b={b}, c={c}")
    n = b + c
    # P(X <= m) = P(X >= n - m) at probability 1/2: the sign test's upper tail.
    return min(1.0, 2 * sign_test_p(n - min(b, c), n))


def paired(sequences: pd.DataFrame, results: pd.DataFrame, task: str, budget: int) -> pd.DataFrame:
    """Per defended model of ``task``: the discordant counts against the undefended model at ``budget``, the exact
    p, the clean change (from the results TSV) and whether the model helps by the paired rule."""
    seqs = sequences[sequences.task == task]
    wide = seqs.pivot(index="seq_id", columns="variant", values="robust_up_to") >= budget
    if "undefended" not in wide:
        raise SystemExit(f"task {task}: the per-sequence table has no undefended model to compare with")
    strict = results[(results.task == task) & (results.criterion == "strict")]
    clean = strict.groupby("variant").clean_accuracy.first()
    rows = []
    for variant in [v for v in dict.fromkeys(seqs.variant) if v != "undefended"]:
        base, model = wide["undefended"], wide[variant]
        b, c = int((base & ~model).sum()), int((model & ~base).sum())
        p = mcnemar_exact_p(b, c)
        change = float(clean[variant] - clean["undefended"])
        rows.append(
            dict(
                variant=variant,
                n=len(wide),
                gain=(c - b) / len(wide),
                undefended_only=b,
                defended_only=c,
                p=p,
                clean_change=change,
                helps=bool(c > b and p < ALPHA and clean_kept(change)),
            )
        )
    return pd.DataFrame(rows)


def render(
    tables: list[pd.DataFrame], sequences: list[pd.DataFrame], labels: list[int | str], task: str, budgets
) -> str:
    """One line per seed, model and budget: gain, discordant pairs, exact p, clean change, helps (paired)."""
    head = (
        "| seed | model | budget | gain | robust under undefended only / defended only | McNemar p | clean change "
        "| helps (paired) |\n|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for label, results, seqs in zip(labels, tables, sequences, strict=True):
        for budget in budgets:
            for r in paired(seqs, results, task, budget).itertuples():
                lines.append(
                    f"| {label} | {r.variant} | {budget} | {r.gain:+.3f} | {r.undefended_only} / {r.defended_only} "
                    f"| {r.p:.2g} | {r.clean_change:+.3f} | {'yes' if r.helps else 'no'} |\n"
                )
    return f"Task {task}, strict criterion, paired on each seed's held-out sequences.\n\n{head}{''.join(lines)}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tsv", type=Path, nargs="+", required=True, help="results TSVs, one per seed")
    parser.add_argument("--seeds", type=int, nargs="+", help="the seed of each TSV (default 0, 1, ...)")
    parser.add_argument("--task", default="tf_0")
    parser.add_argument("--budgets", type=int, nargs="+", default=[5])
    parser.add_argument("--page", type=Path, default=REPO / "docs/benchmarks/adversarial-training.md")
    parser.add_argument("--block", required=True)
    args = parser.parse_args(argv)
    labels = args.seeds if args.seeds is not None else list(range(len(args.tsv)))
    if len(labels) != len(args.tsv):
        raise SystemExit(f"--seeds names {len(labels)} seeds for {len(args.tsv)} TSVs: give one seed per TSV")
    missing = [str(sequences_path(p)) for p in args.tsv if not sequences_path(p).exists()]
    if missing:
        raise SystemExit(
            f"{missing[0]}: no per-sequence table beside the TSV; run bench_adversarial_training.py again to write it"
        )
    tables = [pd.read_csv(p, sep="\t") for p in args.tsv]
    sequences = [pd.read_csv(sequences_path(p), sep="\t") for p in args.tsv]
    write_page(args.page, render(tables, sequences, labels, args.task, args.budgets), args.block)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
