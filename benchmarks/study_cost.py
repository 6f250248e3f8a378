"""The cost of a finished study, per grid point, from its rules' benchmark files (no run of its own).

Reads <run>/results/benchmarks/study/<point>/<rule>/...tsv (Snakemake's benchmark: files of rules/study.smk) and
writes one row per point: training, scoring (score_shard + window_features) and attack (run + evaluate) time, wall
seconds and CPU seconds summed over the point's jobs, with epochs x duplication (the member passes each model
makes) and the training CPU seconds per pass side by side; then a total row with the run's wall time and load
average when given.

    .venv/bin/python benchmarks/study_cost.py study --config config/study.yaml --wall-seconds 1234 --load "9.8"

`make study` runs in study/; --wall-seconds is its measured wall time (date before and after). The points are
the config's grid, in its order; a point the run has not finished has complete False and the jobs it did finish
(a run stopped early is recorded as far as it went).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pandas as pd

STAGES = {
    "train": ("train_model",),
    "score": ("score_shard", "window_features"),
    "attack": ("run_attacks", "evaluate_attacks"),
}


def point_cost(folder: Path) -> dict:
    """Wall and CPU seconds of one point's jobs by stage (each job's benchmark file, its one row)."""
    row = {}
    for stage, rules in STAGES.items():
        wall = cpu = 0.0
        jobs = 0
        for rule in rules:
            for path in sorted((folder / rule).rglob("*.tsv")):
                table = pd.read_csv(path, sep="\t")
                wall += float(table.s.iloc[-1])
                cpu += float(table.cpu_time.iloc[-1])
                jobs += 1
        row |= {f"{stage}_s": round(wall, 1), f"{stage}_cpu_s": round(cpu, 1), f"{stage}_jobs": jobs}
    return row


def passes(point: str) -> int:
    """epochs x duplication from a point's name (a key not in the grid counts 1)."""
    values = dict(re.findall(r"(epochs|dup)-(\d+)", point))
    return int(values.get("epochs", 1)) * int(values.get("dup", 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the study's run folder (make study: study/)")
    parser.add_argument("--config", type=Path, default=Path("config/study.yaml"), help="the study's config")
    parser.add_argument("--wall-seconds", type=float, help="the whole run's measured wall time")
    parser.add_argument("--load", default="", help="load average while it ran (the machine is shared)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/study_cost.tsv"))
    args = parser.parse_args()
    import yaml
    from gfm_audit.config import validate_config
    from gfm_audit.privacy.study.grid import expand_grid

    points = expand_grid(validate_config(yaml.safe_load(args.config.read_text())))
    root = args.run / "results/benchmarks/study"
    rows = []
    for p in points:
        done = (args.run / f"results/study/{p.name}/attacks/{p.target}/metrics.tsv").is_file()
        row = {"point": p.name, "complete": done, "passes": passes(p.name), **point_cost(root / p.name)}
        row["train_cpu_s_per_pass"] = round(row["train_cpu_s"] / row["passes"], 2)
        rows.append(row)
    table = pd.DataFrame(rows)
    total = {c: table[c].sum() for c in table.columns if c.endswith(("_s", "_jobs"))}
    total |= {"point": "all", "complete": bool(table.complete.all()), "passes": int(table.passes.sum())}
    total["train_cpu_s_per_pass"] = round(total["train_cpu_s"] / total["passes"], 2)
    table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
    table["run_wall_s"] = ""
    table["load_average"] = ""
    if args.wall_seconds is not None:
        table.loc[table.point == "all", "run_wall_s"] = round(args.wall_seconds)
        table.loc[table.point == "all", "load_average"] = args.load
    table.to_csv(args.out, sep="\t", index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
