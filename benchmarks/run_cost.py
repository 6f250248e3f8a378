"""The cost of a finished workflow run, per rule, from its benchmark files (no run of its own).

Reads <run>/results/benchmarks/**.tsv (Snakemake's ``benchmark:`` files, one per job) and writes one row per rule:
jobs, wall seconds and CPU seconds summed over its jobs, the largest resident memory of one job; then a total row
with the run's measured wall time and the load average during it, when given (jobs run two at a time on 2 cores,
so the rules' seconds add up to more than the wall time).

    .venv/bin/python benchmarks/run_cost.py demo-masked --wall-seconds 890 --load "4.3-5.6" \\
        --out benchmarks/demo_masked_cost.tsv

--wall-seconds is the run's measured wall time (``/usr/bin/time`` around the make target, or date before and after).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd


def rule_costs(run: Path) -> pd.DataFrame:
    """One row per rule of ``run``: jobs, wall s, CPU s (user + system) and the largest max_rss (MB) of one job."""
    root = run / "results" / "benchmarks"
    rows = []
    for path in sorted(root.rglob("*.tsv")):
        table = pd.read_csv(path, sep="\t")
        rule = path.relative_to(root).parts[0].removesuffix(".tsv")
        rows.append(
            dict(
                rule=rule,
                wall_s=float(table["s"].iloc[-1]),
                cpu_s=float(pd.to_numeric(table["cpu_time"], errors="coerce").fillna(0).iloc[-1]),
                max_rss_mb=float(pd.to_numeric(table["max_rss"], errors="coerce").fillna(0).iloc[-1]),
            )
        )
    if not rows:
        raise SystemExit(f"{root}: no benchmark files; give the folder a workflow ran in")
    frame = pd.DataFrame(rows)
    out = frame.groupby("rule", sort=True).agg(
        jobs=("wall_s", "size"), wall_s=("wall_s", "sum"), cpu_s=("cpu_s", "sum"), max_rss_mb=("max_rss_mb", "max")
    )
    return out.reset_index().round(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the folder the workflow ran in (holds results/benchmarks)")
    parser.add_argument("--wall-seconds", type=float, help="the run's measured wall time")
    parser.add_argument("--load", default="", help="load average during the run, as measured")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    table = rule_costs(args.run)
    total = dict(
        rule="total",
        jobs=int(table.jobs.sum()),
        wall_s=args.wall_seconds if args.wall_seconds is not None else float("nan"),
        cpu_s=round(float(table.cpu_s.sum()), 2),
        max_rss_mb=float(table.max_rss_mb.max()),
    )
    table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
    table["load"] = ["" for _ in range(len(table) - 1)] + [args.load]
    table.to_csv(args.out, sep="\t", index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
