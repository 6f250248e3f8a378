"""The demo's membership verdict with and without its canaries, side by side from one invocation.

Runs the demo's privacy and memorisation audit (config/demo.yaml without its robustness block, as
.ci/demo_check.sh does) twice, in two fresh folders: as configured, and with ``memorisation.canaries.n: 0``.
Prints, per attack, each run's AUC with its 95% bootstrap interval, the difference, and whether the two intervals
overlap; writes the same table as TSV. Exit status 1 when two intervals do not overlap: planting canaries must not
change the verdict. (The bootstrap resamples windows, not training: an attack that leans on the two reference
models also moves with any change of their training, canaries or not.)

Run: .venv/bin/python benchmarks/compare_canaries.py [--out benchmarks/canaries_verdict.tsv] [--keep DIR [--reuse]]
(about twice the demo's privacy part: 2 x 12-15 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def privacy_config(canaries: bool) -> dict:
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config.pop("robustness")
    if not canaries:
        config["memorisation"]["canaries"]["n"] = 0
    return config


def run(folder: Path, config: dict, reuse: bool = False) -> pd.DataFrame:
    metrics = folder / "results" / "attacks" / config["target"] / "metrics.tsv"
    if reuse and metrics.is_file():
        return pd.read_csv(metrics, sep="\t").set_index("attack")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "resources").symlink_to(REPO / "resources")
    path = folder / "base.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    env = {**os.environ, "GFM_AUDIT_CONFIG": str(path)}
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(folder), "--cores", "2", "-q"]
    subprocess.run(cmd, env=env, check=True)
    target = config["target"]
    return pd.read_csv(folder / "results" / "attacks" / target / "metrics.tsv", sep="\t").set_index("attack")


def side_by_side(with_canaries: pd.DataFrame, without: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for attack in with_canaries.index.intersection(without.index):
        a, b = with_canaries.loc[attack], without.loc[attack]
        rows.append(
            {
                "attack": attack,
                "auc_with": a.auc,
                "low_with": a.auc_low,
                "high_with": a.auc_high,
                "auc_without": b.auc,
                "low_without": b.auc_low,
                "high_without": b.auc_high,
                "difference": a.auc - b.auc,
                "intervals_overlap": bool(a.auc_low <= b.auc_high and b.auc_low <= a.auc_high),
            }
        )
    return pd.DataFrame(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "canaries_verdict.tsv"))
    parser.add_argument("--keep", help="run in this folder (kept) instead of a temporary one")
    parser.add_argument("--reuse", action="store_true", help="with --keep: read runs already finished there")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.keep or tmp)
        with_canaries = run(base / "with_canaries", privacy_config(True), args.reuse)
        without = run(base / "without_canaries", privacy_config(False), args.reuse)
    table = side_by_side(with_canaries, without)
    table.to_csv(args.out, sep="\t", index=False, float_format="%.4f")
    print("| attack | with canaries | without | difference | intervals overlap |")
    print("|---|---|---|---|---|")
    for r in table.itertuples(index=False):
        print(
            f"| {r.attack} | {r.auc_with:.3f} [{r.low_with:.3f}, {r.high_with:.3f}] | "
            f"{r.auc_without:.3f} [{r.low_without:.3f}, {r.high_without:.3f}] | {r.difference:+.3f} | "
            f"{'yes' if r.intervals_overlap else 'NO'} |"
        )
    return 0 if table.intervals_overlap.all() else 1


if __name__ == "__main__":
    sys.exit(main())
