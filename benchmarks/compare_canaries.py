"""The demo's membership verdict with and without its canaries, side by side from one invocation.

Runs the demo's privacy and memorisation audit (config/demo.yaml without its robustness block, as
.ci/demo_check.sh does) twice, in two fresh folders: as configured, and with ``memorisation.canaries.n: 0``.
Prints, per attack, each run's AUC with its 95% bootstrap interval, the difference, and whether the two intervals
overlap; writes the same table as TSV.

The bootstrap resamples windows, not training: an attack that leans on the two reference models also moves with
any change of their training, canaries or not. So the audit also runs without canaries under ``--seeds`` other
values of ``membership.seed`` (another member split and another training of every model: another draw of the same
experiment), and gives each attack's range of AUCs over those draws. The verdict on an attack is the report's: it
finds leakage when its AUC's 95% interval lies above 0.5; the canaries change it when the draws without canaries
all agree on it and the run with canaries does not. Exit status 1 when the canaries change a verdict, or when
an attack's two intervals do not overlap, its change with canaries is larger than its range over the draws, and
larger than the demo check's tolerance for that AUC (``gfm_audit.headline``: what another CPU's rounding may move
it by); changes within that tolerance are printed, not failed.

Run: .venv/bin/python benchmarks/compare_canaries.py [--out benchmarks/canaries_verdict.tsv] [--seeds 2]
[--keep DIR [--reuse]] (the demo's privacy part 2 + seeds times: 12-15 minutes each on 2 cores).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml
from gfm_audit.headline import TOLERANCE, auc_kind

REPO = Path(__file__).resolve().parents[1]
# The shared run helper sits beside this script (also when a test loads it by path).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo_runs import run_workflow  # noqa: E402


def privacy_config(canaries: bool, seed_offset: int = 0) -> dict:
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config.pop("robustness")
    if not canaries:
        config["memorisation"]["canaries"]["n"] = 0
    config["membership"]["seed"] += seed_offset
    return config


def run(folder: Path, config: dict, reuse: bool = False) -> pd.DataFrame:
    metrics = folder / "results" / "attacks" / config["target"] / "metrics.tsv"
    if reuse and metrics.is_file():
        return pd.read_csv(metrics, sep="\t").set_index("attack")
    run_workflow(folder, config)
    target = config["target"]
    return pd.read_csv(folder / "results" / "attacks" / target / "metrics.tsv", sep="\t").set_index("attack")


def side_by_side(with_canaries: pd.DataFrame, without: pd.DataFrame, draws: list[pd.DataFrame]) -> pd.DataFrame:
    """Per attack: both runs' AUC and interval, their difference, whether the intervals overlap, and the range of
    the AUC without canaries over ``draws`` (the run without canaries and the other seeds' runs)."""
    rows = []
    for attack in with_canaries.index.intersection(without.index):
        a, b = with_canaries.loc[attack], without.loc[attack]
        aucs = [d.loc[attack].auc for d in draws if attack in d.index]
        leaking_draws = sum(bool(d.loc[attack].auc_low > 0.5) for d in draws if attack in d.index)
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
                "auc_draws_min": min(aucs),
                "auc_draws_max": max(aucs),
                "within_draws": bool(abs(a.auc - b.auc) <= max(aucs) - min(aucs)),
                "leaks_with": bool(a.auc_low > 0.5),
                "leaks_without": bool(b.auc_low > 0.5),
                "draws_leaking": f"{leaking_draws}/{len(aucs)}",
                # A verdict the draws without canaries do not agree on is not one the canaries can change.
                "verdict_changed": bool(a.auc_low > 0.5) != bool(b.auc_low > 0.5) and leaking_draws in (0, len(aucs)),
            }
        )
    return pd.DataFrame(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "canaries_verdict.tsv"))
    parser.add_argument("--keep", help="run in this folder (kept) instead of a temporary one")
    parser.add_argument("--reuse", action="store_true", help="with --keep: read runs already finished there")
    parser.add_argument("--seeds", type=int, default=2, help="other membership seeds run without canaries")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.keep or tmp)
        with_canaries = run(base / "with_canaries", privacy_config(True), args.reuse)
        without = run(base / "without_canaries", privacy_config(False), args.reuse)
        draws = [without] + [
            run(base / f"without_canaries_seed+{k}", privacy_config(False, k), args.reuse)
            for k in range(1, args.seeds + 1)
        ]
    table = side_by_side(with_canaries, without, draws)
    table.to_csv(args.out, sep="\t", index=False, float_format="%.4f")
    print(f"| attack | with canaries | without | difference | intervals overlap | without, {len(draws)} draws |")
    print("|---|---|---|---|---|---|")
    for r in table.itertuples(index=False):
        print(
            f"| {r.attack} | {r.auc_with:.3f} [{r.low_with:.3f}, {r.high_with:.3f}] | "
            f"{r.auc_without:.3f} [{r.low_without:.3f}, {r.high_without:.3f}] | {r.difference:+.3f} | "
            f"{'yes' if r.intervals_overlap else 'NO'} | {r.auc_draws_min:.3f}-{r.auc_draws_max:.3f} |"
        )
    moved = table[~table.intervals_overlap & ~table.within_draws]
    tolerance = moved.attack.map(lambda attack: TOLERANCE[auc_kind(attack)])
    for r, tol in zip(moved.itertuples(index=False), tolerance, strict=True):
        print(
            f"moved beyond its interval and its range over the draws: {r.attack} ({r.difference:+.4f}; tolerance {tol})"
        )
    moved = moved[moved.difference.abs() > tolerance]
    changed = table[table.verdict_changed]
    for r in changed.itertuples(index=False):
        print(f"verdict changed by the canaries: {r.attack}")
    return 1 if len(moved) or len(changed) else 0


if __name__ == "__main__":
    sys.exit(main())
