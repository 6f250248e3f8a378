"""P6: the demo's attack metrics before and after a change of the data flow, from two finished runs.

Reads ``results/attacks/<model>/metrics.tsv`` and ``scores.tsv`` of two run folders (each the --directory of
a Snakemake run, or its results/ folder), pairs the attacks by name and prints, as Markdown, every attack's
AUC and TPR at FPR 0.1% and 1% side by side, the largest absolute difference over every numeric metric
column, and that over the per-window attack scores. Attacks present in only one run are listed. With
``--models``, also whether each trained model's weights are byte-identical in the two runs.

Exit status 1 when a metric differs by more than ``--tolerance`` (default 1e-5: metrics.tsv is written
with six significant digits) or an attack is missing from one run.

Make the two runs (see BENCHMARKS.md, P6), e.g. before = the commit before the sharded data flow:
  git worktree add --detach /tmp/old 9deb957^ && ln -s "$PWD/.venv" /tmp/old/.venv
  mkdir -p /tmp/run-old /tmp/run-new
  ln -s /tmp/old/resources /tmp/run-old/resources && ln -s "$PWD/resources" /tmp/run-new/resources
  (cd /tmp/old && PYTHONPATH=$PWD/workflow_scripts .venv/bin/snakemake --cores 2 --directory /tmp/run-old \
      --configfile "$OLDPWD/benchmarks/demo_privacy.yaml" results/attacks/demo_lm/metrics.tsv)
  PYTHONPATH=$PWD/workflow_scripts .venv/bin/snakemake --cores 2 --directory /tmp/run-new \
      --configfile benchmarks/demo_privacy.yaml results/attacks/demo_lm/metrics.tsv
Run: .venv/bin/python benchmarks/compare_demo_metrics.py /tmp/run-old /tmp/run-new --models demo_lm ref_0 ref_1
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import pandas as pd

SHOWN = ("auc", "tpr_at_fpr_0.001", "tpr_at_fpr_0.01")


def results_dir(run: Path) -> Path:
    """A run's results/ folder, given the run folder or the results/ folder itself."""
    return run / "results" if (run / "results").is_dir() else run


def read_metrics(run: Path, model: str) -> pd.DataFrame:
    path = results_dir(run) / "attacks" / model / "metrics.tsv"
    return pd.read_csv(path, sep="\t").set_index("attack")


def read_scores(run: Path, model: str) -> pd.DataFrame:
    path = results_dir(run) / "attacks" / model / "scores.tsv"
    return pd.read_csv(path, sep="\t", dtype={"window_id": str}).set_index("window_id").sort_index()


def max_abs_diff(a: pd.DataFrame, b: pd.DataFrame) -> float:
    """Largest |a - b| over the cells both tables have; a text cell (e.g. insufficient_nonmembers) must be equal.

    Empty in both counts as equal; a number in one and text or empty in the other is an infinite difference.
    """
    rows, columns = a.index.intersection(b.index), a.columns.intersection(b.columns)
    worst = 0.0
    for column in columns:
        x, y = a.loc[rows, column], b.loc[rows, column]
        xn, yn = pd.to_numeric(x, errors="coerce").to_numpy(float), pd.to_numeric(y, errors="coerce").to_numpy(float)
        if np.any(np.isnan(xn) != np.isnan(yn)):
            return float("inf")
        text = np.isnan(xn)
        if not x[text].fillna("").astype(str).equals(y[text].fillna("").astype(str)):
            return float("inf")
        if (~text).any():
            worst = max(worst, float(np.max(np.abs(xn[~text] - yn[~text]))))
    return worst


def cell(value: object) -> str:
    number = pd.to_numeric(value, errors="coerce")
    return f"{number:.6g}" if pd.notna(number) else str(value)


def weights_digest(run: Path, model: str) -> str | None:
    files = sorted((results_dir(run) / "models" / model).glob("*.safetensors"))
    if not files:
        return None
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.read_bytes())
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path, help="run folder (or its results/) of the earlier code")
    parser.add_argument("after", type=Path, help="run folder (or its results/) of the later code")
    parser.add_argument("--model", default="demo_lm", help="audited model (results/attacks/<model>/)")
    parser.add_argument("--models", nargs="*", default=[], help="trained models whose weights to compare")
    parser.add_argument("--tolerance", type=float, default=1e-5)
    args = parser.parse_args(argv)

    before, after = read_metrics(args.before, args.model), read_metrics(args.after, args.model)
    only_before = sorted(set(before.index) - set(after.index))
    only_after = sorted(set(after.index) - set(before.index))
    common = [a for a in before.index if a in after.index]

    print("| attack | " + " | ".join(f"{c} before | {c} after" for c in SHOWN) + " |")
    print("|---|" + "---|---|" * len(SHOWN))
    for attack in common:
        cells = " | ".join(f"{cell(before.at[attack, c])} | {cell(after.at[attack, c])}" for c in SHOWN)
        print(f"| {attack} | {cells} |")
    print()
    metric_diff = max_abs_diff(before.loc[common], after.loc[common])
    columns = list(before.columns.intersection(after.columns))
    print(f"attacks compared: {len(common)}; metric columns: {', '.join(columns)}")
    print(f"max |diff| over every metric: {metric_diff:.3g}")
    shown_diff = max_abs_diff(before.loc[common, list(SHOWN)], after.loc[common, list(SHOWN)])
    print(f"max |diff| over AUC and TPR at low FPR: {shown_diff:.3g}")
    scores_before, scores_after = read_scores(args.before, args.model), read_scores(args.after, args.model)
    same_windows = scores_before.index.equals(scores_after.index)
    print(
        f"per-window attack scores: same windows: {same_windows}; "
        f"max |diff|: {max_abs_diff(scores_before, scores_after):.3g}"
    )
    if only_before or only_after:
        print(f"attacks only before: {only_before or 'none'}; only after: {only_after or 'none'}")
    for model in args.models:
        a, b = weights_digest(args.before, model), weights_digest(args.after, model)
        print(f"trained model {model}: weights byte-identical: {a is not None and a == b}")
    return 0 if metric_diff <= args.tolerance and not only_before and not only_after else 1


if __name__ == "__main__":
    sys.exit(main())
