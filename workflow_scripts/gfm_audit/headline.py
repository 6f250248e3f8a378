"""The headline figures of a finished run, read from its results/ folder, and their check against a committed copy.

One row per figure: ``metric`` (a dotted name), ``value``, ``low`` / ``high`` (a 95% interval where the run has
one) and ``tolerance``, the largest change a re-run on another x86 CPU may show before the check fails.

The demo's copy is docs/demo-results.tsv; the README's demo figures are rendered from it (``render_markdown``) and
a test keeps the README's block equal to that rendering, so no demo figure is typed by hand. ``.ci/demo_check.sh``
re-runs the demo's privacy and memorisation audit and fails when a figure leaves its tolerance: a change that moves
them on purpose updates docs/demo-results.tsv in the same commit (``--write``).

    python -m gfm_audit.headline RESULTS --write docs/demo-results.tsv [--readme README.md]
    python -m gfm_audit.headline RESULTS --check docs/demo-results.tsv
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

import pandas as pd

COLUMNS = ("metric", "value", "low", "high", "tolerance")

# Why each tolerance is what it is. On one machine a re-run gives byte-identical tables (seeds in the config, one
# CPU thread in training). Another CPU's kernels round float32 differently, and training carries that into the
# weights like a small change of seed. Measured: the demo's privacy and memorisation run under
# ATEN_CPU_CAPABILITY=avx2 against the committed AVX-512 run on one AMD EPYC (largest |difference| per kind in
# brackets); each tolerance is about twice that, so rounding passes and a change of the science does not:
# - AUC of an attack: 0.03 [0.013; LOSS, zlib, min-k, RMIA, LiRA within 0.004], well inside the demo's 95%
#   bootstrap half-widths of the weaker attacks (0.02-0.05);
# - AUC of a neighbourhood variant on one probability or on SNP sites only: 0.1 [0.054]; each sees a third of the
#   neighbours or a few sites, and its interval is about +-0.05;
# - TPR at 1% FPR: 0.3 [0.15]; the threshold is set by the 2 most member-like of 200 non-members;
# - empirical epsilon lower bound: 1.5 [0.8]; a log of a ratio of counts of a few windows at low FPR;
# - exposure: 12 bits [6.2, the 4x canaries, whose rank is extrapolated from the tail of 1,000 candidates; the
#   16x canaries sit at the 128-bit maximum on both];
# - extraction per-base accuracy: 0.08 [0.037]; 2 canaries x 32 bases per group;
# - GA ASR and FIMBA accuracy: 0.1, not measured across CPUs (CI runs the privacy part only); an ASR over the
#   31-40 attacked sequences moves by 0.03 per sequence.
TOLERANCE = {
    "auc": 0.03,
    "auc_variant": 0.1,
    "tpr": 0.3,
    "epsilon": 1.5,
    "bits": 12.0,
    "extraction": 0.08,
    "robustness": 0.1,
}


def _row(metric: str, value: float, kind: str, low: float = math.nan, high: float = math.nan) -> dict:
    return {"metric": metric, "value": float(value), "low": low, "high": high, "tolerance": TOLERANCE[kind]}


def privacy_rows(results: Path) -> list[dict]:
    """AUC (with its bootstrap interval), TPR at 1% FPR and the empirical epsilon bound of each attack."""
    rows = []
    for path in sorted((results / "attacks").glob("*/metrics.tsv")):
        model = path.parent.name
        table = pd.read_csv(path, sep="\t")
        for r in table.to_dict("records"):
            base = f"privacy.{model}.{r['attack']}"
            if pd.isna(r["auc"]):
                continue
            kind = "auc_variant" if re.search(r"_p0\.\d|_snpsites", r["attack"]) else "auc"
            rows.append(_row(f"{base}.auc", r["auc"], kind, r["auc_low"], r["auc_high"]))
            rows.append(_row(f"{base}.tpr_at_fpr_0.01", r["tpr_at_fpr_0.01"], "tpr"))
            if not pd.isna(r["eps_lower_bound"]):
                rows.append(_row(f"{base}.eps_lower_bound", r["eps_lower_bound"], "epsilon"))
    return rows


def memorisation_rows(results: Path) -> list[dict]:
    """Mean exposure of the canaries by how often they were inserted; extraction's per-base accuracy."""
    rows = []
    for path in sorted((results / "memorisation").glob("*/exposure.tsv")):
        model = path.parent.name
        table = pd.read_csv(path, sep="\t")
        for (group, repeats), part in table.groupby(["group", "repeats"]):
            name = "never_inserted" if group != "inserted" else f"inserted_{int(repeats)}x"
            rows.append(_row(f"memorisation.{model}.exposure.{name}", part.exposure.mean(), "bits"))
    for path in sorted((results / "memorisation").glob("*/extraction.tsv")):
        model = path.parent.name
        table = pd.read_csv(path, sep="\t")
        greedy = table[table.decoder == "greedy"] if "greedy" in set(table.decoder) else table
        for group, part in greedy.groupby("group"):
            rows.append(
                _row(
                    f"memorisation.{model}.extraction.{group}.per_base_accuracy",
                    part.per_base_accuracy.mean(),
                    "extraction",
                )
            )
    return rows


def robustness_rows(results: Path) -> list[dict]:
    """GA table: ASR of each attack per classifier; FIMBA: accuracy at the largest number of moved genes."""
    rows = []
    table_path = results / "robustness" / "attack_table.tsv"
    if table_path.is_file():
        table = pd.read_csv(table_path, sep="\t")
        attacks = [c for c in table.columns if c not in ("classifier", "budget", "n_attacked", "model")]
        for r in table.to_dict("records"):
            for attack in attacks:
                if isinstance(r[attack], float) and not math.isnan(r[attack]):
                    rows.append(_row(f"robustness.ga.{r['classifier']}.{attack}.asr", r[attack], "robustness"))
    for path in sorted((results / "robustness" / "fimba").glob("*/curve.tsv")):
        curve = pd.read_csv(path, sep="\t").dropna(subset=["accuracy"])
        if curve.empty:
            continue
        top = curve[curve.m == curve.m.max()]
        for r in top.itertuples(index=False):
            name = f"robustness.fimba.{path.parent.name}.{r.variant}.{r.method}.accuracy_at_m{int(r.m)}"
            rows.append(_row(name, r.accuracy, "robustness"))
    return rows


def headline(results: str | Path) -> pd.DataFrame:
    """Every headline figure of the run whose results/ folder is ``results``."""
    results = Path(results)
    rows = privacy_rows(results) + memorisation_rows(results) + robustness_rows(results)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def compare(current: pd.DataFrame, committed: pd.DataFrame) -> list[str]:
    """One line per committed figure the current run lacks or moves by more than its tolerance."""
    now = current.set_index("metric").value
    problems = []
    for r in committed.itertuples(index=False):
        if r.metric not in now.index:
            problems.append(f"{r.metric}: missing from this run (committed {r.value:.4g})")
        elif not abs(now[r.metric] - r.value) <= r.tolerance:
            problems.append(
                f"{r.metric}: {now[r.metric]:.4g} against the committed {r.value:.4g} (tolerance {r.tolerance:g})"
            )
    return problems


def render_markdown(table: pd.DataFrame) -> str:
    """The README's demo table: each privacy attack's AUC with its interval, then exposures and the rest.

    The neighbourhood attack's per-probability and SNP-sites-only variants, TPRs, epsilon bounds and FIMBA's
    ablations (other than random genes) stay in the TSV, and in the check, but not in the README's table."""
    lines = ["| figure | value |", "|---|---|"]
    for r in table.itertuples(index=False):
        if r.metric.endswith((".tpr_at_fpr_0.01", ".eps_lower_bound")) or re.search(r"_p0\.\d|_snpsites", r.metric):
            continue
        if r.metric.startswith("robustness.fimba.") and not re.search(r"\.fp_fn\.(fimba|random_features)\.", r.metric):
            continue
        interval = "" if math.isnan(r.low) else f" [{r.low:.3f}, {r.high:.3f}]"
        lines.append(f"| `{r.metric}` | {r.value:.3f}{interval} |")
    return "\n".join(lines) + "\n"


BLOCK = re.compile(r"(<!-- demo-results:start[^>]*-->\n)(.*?)(<!-- demo-results:end -->)", re.S)


def readme_block(readme: str) -> str:
    """The generated block of the README (between the demo-results markers)."""
    match = BLOCK.search(readme)
    if match is None:
        raise ValueError("README has no <!-- demo-results:start --> ... <!-- demo-results:end --> block")
    return match.group(2)


def replace_readme_block(readme: str, table: pd.DataFrame) -> str:
    readme_block(readme)  # raises when the markers are missing
    return BLOCK.sub(lambda m: m.group(1) + render_markdown(table) + m.group(3), readme, count=1)


def read_table(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t")


def write_table(table: pd.DataFrame, path: str | Path) -> None:
    table.to_csv(path, sep="\t", index=False, float_format="%.6g", na_rep="")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gfm_audit.headline", description=__doc__.split("\n\n")[0])
    parser.add_argument("results", help="a finished run's results/ folder")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", metavar="TSV", help="write the figures to TSV (and the README block with --readme)")
    action.add_argument("--check", metavar="TSV", help="fail when a figure of TSV moved beyond its tolerance")
    parser.add_argument("--readme", help="README to rewrite the demo-results block of (with --write)")
    args = parser.parse_args(argv)
    table = headline(args.results)
    if table.empty:
        print(f"headline: no attack, memorisation or robustness table under {args.results}", file=sys.stderr)
        return 1
    if args.write:
        write_table(table, args.write)
        if args.readme:
            readme = Path(args.readme)
            readme.write_text(replace_readme_block(readme.read_text(), read_table(args.write)))
        print(f"headline: {len(table)} figures written to {args.write}")
        return 0
    committed = read_table(args.check)
    # Only the figures of the committed table that this run can have: the CI check runs the privacy and
    # memorisation part of the demo, not the robustness audits.
    sections = {m.split(".")[0] for m in table.metric}
    committed = committed[committed.metric.str.split(".").str[0].isin(sections)]
    problems = compare(table, committed)
    for line in problems:
        print(f"headline: {line}", file=sys.stderr)
    print(f"headline: {len(committed) - len(problems)} of {len(committed)} figures within their tolerance")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
