"""The adversarial-training target across seeds: per variant measured at every seed, the gain and clean change at
each seed and their means.

Reads the strict rows of one TSV per seed written by bench_adversarial_training.py (default: seed 0's
benchmarks/adversarial_training.tsv, then _seed1.tsv to _seed4.tsv) and fills the page's
``adversarial-training-seeds`` block. Per seed, gain = robust accuracy at the largest budget (or ``--budget``)
minus the undefended model's of that seed (each seed has its own CNN initialisation, batch order and held-out
sample), clean change likewise; the target (+0.2 with disjoint 95% Wilson intervals, clean accuracy down by at most
2 points) and whether the model helps (a gain of any size with disjoint intervals, clean accuracy likewise kept: the
second task's condition) are judged per seed, as on the other tables. Across seeds, the number of seeds with a gain
above zero and the one-sided sign test of it (:func:`sign_test_p`), and the means' Student-t intervals over the
seeds (:func:`mean_with_interval`), say whether the gain is systematic even where one seed's 300 held-out sequences
cannot separate it. A model not run at some seed shows n/a there; its means are
over the seeds it ran at; models run at one seed only are left out. Run: .venv/bin/python
benchmarks/adversarial_seeds.py [--task prom_300_all] [--tsv SEED0 SEED1 ...] (in seed order) [--seeds 0 1 ...]
(the seeds the TSVs were run at, when not 0, 1, ...) [--budget B] [--block NAME] (another page block, e.g. for the
deep CNN's TSVs:
``--tsv benchmarks/adversarial_training_deep_seed{0..4}.tsv --block adversarial-training-deep-seeds``).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd
from scipy import stats

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_adversarial_training import helps, target_met, write_page  # noqa: E402

DEFAULT_TSVS = [
    "benchmarks/adversarial_training.tsv",
    "benchmarks/adversarial_training_seed1.tsv",
    "benchmarks/adversarial_training_seed2.tsv",
    "benchmarks/adversarial_training_seed3.tsv",
    "benchmarks/adversarial_training_seed4.tsv",
]
BLOCK = "adversarial-training-seeds"


def sign_test_p(positive: int, n: int) -> float:
    """One-sided sign test (Dixon and Mood, JASA 1946): P(X >= positive) for X ~ Binomial(n, 1/2), the chance that
    ``positive`` or more of ``n`` independent seeds show a gain above zero when gains above and below zero are
    equally likely. Seeds with a gain of exactly zero are left out of ``n`` beforehand, as the test prescribes.
    With five seeds the smallest p is 1/32."""
    if not 0 <= positive <= n:
        raise ValueError(f"positive={positive} is not between 0 and n={n}")
    return sum(math.comb(n, k) for k in range(positive, n + 1)) / 2**n


def per_seed(table: pd.DataFrame, task: str, budget: int | None = None) -> pd.DataFrame:
    """One row per variant of ``task``: gain and clean change at ``budget`` (default the largest) against that
    TSV's undefended model, whether the intervals are disjoint, whether the target is met and whether it helps."""
    strict = table[(table.task == task) & (table.criterion == "strict") & ~table.variant.str.startswith("inner_asr")]
    top = strict[strict.budget == (strict.budget.max() if budget is None else budget)].set_index("variant")
    base = top.loc["undefended"]
    out = pd.DataFrame(
        {
            "gain": top.robust_accuracy - base.robust_accuracy,
            "clean_change": top.clean_accuracy - base.clean_accuracy,
            "disjoint": top.ci_low > base.ci_high,
            "robust": top.robust_accuracy,
            "base_robust": base.robust_accuracy,
        }
    ).drop(index="undefended")
    out["met"] = [target_met(*r) for r in zip(out.disjoint, out.gain, out.clean_change, strict=True)]
    out["helps"] = [helps(*r) for r in zip(out.disjoint, out.gain, out.clean_change, strict=True)]
    return out


def mean_with_interval(values: list[float]) -> str:
    """The mean over seeds with its 95% Student-t interval, mean +- t(0.975, n-1) * s / sqrt(n) (s: the sample
    standard deviation; Student, 1908), as ``+0.200 [-0.435, +0.835]``: each seed is one independent draw of the
    initialisation, batch order and held-out sample, so the interval carries the seed-to-seed spread that one seed's
    Wilson interval cannot. With one seed, the mean alone."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return f"{mean:+.3f}"
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return f"{mean:+.3f} [{mean - half:+.3f}, {mean + half:+.3f}]"


def render(
    tables: list[pd.DataFrame], task: str, budget: int | None = None, seed_labels: list[int] | None = None
) -> str:
    """The across-seeds table; ``seed_labels`` names the seed each table was run at (default 0, 1, ...)."""
    labels = list(range(len(tables))) if seed_labels is None else seed_labels
    seeds = [per_seed(t, task, budget) for t in tables]
    # Every model run at two seeds or more, in the order of their first appearance.
    names = list(dict.fromkeys(v for s in seeds for v in s.index))
    common = [v for v in names if sum(v in s.index for s in seeds) >= 2]
    head = (
        "| model | "
        + " | ".join(f"seed {i}: gain / clean change (robust acc.)" for i in labels)
        + " | mean gain [95% t-interval over seeds] | mean clean change [same] | target met at | helps at "
        + "| gain above 0 at (sign test) |\n"
        + "|---|"
        + "---|" * (len(seeds) + 5)
        + "\n"
    )
    # The undefended models' own robust accuracy: the gain is measured from it, and it differs from seed to seed.
    base = [s.base_robust.iloc[0] if len(s) else float("nan") for s in seeds]
    lines = ["| undefended | " + " | ".join(f"({b:.3f})" for b in base) + " | | | | | |\n"]
    for variant in common:
        cells = " | ".join(
            f"{s.loc[variant].gain:+.3f}{'' if s.loc[variant].disjoint else ' (CIs overlap)'} / "
            f"{s.loc[variant].clean_change:+.3f} ({s.loc[variant].robust:.3f})"
            if variant in s.index
            else "n/a"
            for s in seeds
        )
        rows = [s.loc[variant] for s in seeds if variant in s.index]
        mean_gain = mean_with_interval([r.gain for r in rows])
        mean_clean = mean_with_interval([r.clean_change for r in rows])
        met = sum(bool(r.met) for r in rows)
        helped = sum(bool(r.helps) for r in rows)
        signed = [r.gain for r in rows if abs(r.gain) > 1e-9]  # 1e-9: the TSV's four decimals; zero is a tie
        above = sum(g > 0 for g in signed)
        sign = f"{above} of {len(signed)} seeds (p = {sign_test_p(above, len(signed)):.3f})"
        lines.append(
            f"| {variant} | {cells} | {mean_gain} | {mean_clean} | {met} of {len(rows)} seeds "
            f"| {helped} of {len(rows)} seeds | {sign} |\n"
        )
    shown = int(tables[0].budget.max()) if budget is None else budget
    return f"Task {task}, budget {shown}, strict criterion.\n\n{head}{''.join(lines)}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tsv", nargs="+", default=[str(REPO / p) for p in DEFAULT_TSVS], help="one per seed")
    parser.add_argument("--task", default="prom_300_all")
    parser.add_argument("--page", default=str(REPO / "docs/benchmarks/adversarial-training.md"))
    parser.add_argument("--seeds", type=int, nargs="+", help="the seed of each TSV, in order (default 0, 1, ...)")
    parser.add_argument("--budget", type=int, help="the budget the gains are read at (default: the largest)")
    parser.add_argument("--block", default=BLOCK, help="the page block to fill")
    args = parser.parse_args(argv)
    if args.seeds is not None and len(args.seeds) != len(args.tsv):
        raise SystemExit(f"--seeds names {len(args.seeds)} seeds for {len(args.tsv)} TSVs: give one seed per TSV")
    tables = [pd.read_csv(p, sep="\t") for p in args.tsv]
    common = sorted(set.intersection(*(set(t.budget.astype(int)) for t in tables)))
    if args.budget is not None and args.budget not in common:
        raise SystemExit(f"--budget {args.budget}: not measured in every TSV; choose one of {common}")
    write_page(Path(args.page), render(tables, args.task, args.budget, args.seeds), args.block)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
