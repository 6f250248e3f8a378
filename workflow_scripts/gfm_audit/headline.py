"""The headline figures of a finished run, read from its results/ folder, and their check against a committed copy.

One row per figure: ``metric`` (a dotted name), ``value``, ``low`` / ``high`` (a 95% interval where the run has
one) and ``tolerance``, the largest change a re-run on another x86 CPU may show before the check fails.

The demo's copy is docs/demo-results.tsv; the README's demo summary (``render_summary``) and docs/demo.md's table
(``render_markdown``) are rendered from it, and a test keeps both blocks equal to their rendering, so no demo figure
is typed by hand. ``.ci/demo_check.sh``
re-runs the demo's privacy and memorisation audit and fails when a figure leaves its tolerance: a change that moves
them on purpose updates docs/demo-results.tsv in the same commit (``--write``).

    python -m gfm_audit.headline RESULTS --write docs/demo-results.tsv --readme README.md --readme docs/demo.md
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
# - exposure: 25 bits [6.2 under AVX2 on the AMD EPYC; 12.45 on an Intel Xeon with AMX, whose demo models differ
#   from the AMD's but are byte-identical from run to run; both the 4x canaries, whose rank is extrapolated from
#   the tail of 1,000 candidates; the 16x canaries sit at the 128-bit maximum on all]; a canary not memorised
#   at all reads 0-10 bits, so the 4x and 16x figures still catch a broken insertion;
# - extraction per-base accuracy: 0.08 [0.037]; 2 canaries x 32 bases per group;
# - GA ASR and FIMBA accuracy: 0.1, not measured across CPUs (CI runs the privacy part only); an ASR over the
#   31-40 attacked sequences moves by 0.03 per sequence.
TOLERANCE = {
    "auc": 0.03,
    "auc_variant": 0.1,
    "tpr": 0.3,
    "epsilon": 1.5,
    "bits": 25.0,
    "extraction": 0.08,
    "robustness": 0.1,
}


def _row(metric: str, value: float, kind: str, low: float = math.nan, high: float = math.nan) -> dict:
    return {"metric": metric, "value": float(value), "low": low, "high": high, "tolerance": TOLERANCE[kind]}


def auc_kind(attack: str) -> str:
    """The tolerance kind of an attack's AUC: a neighbourhood variant on one probability or on SNP sites only sees
    a fraction of the neighbours and moves more."""
    return "auc_variant" if re.search(r"_p0\.\d|_snpsites", attack) else "auc"


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
            kind = auc_kind(r["attack"])
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
    """The full demo table (docs/demo.md): each privacy attack's AUC with its interval, then exposures and the rest.

    The neighbourhood attack's per-probability and SNP-sites-only variants, TPRs, epsilon bounds and FIMBA's
    ablations (other than random genes) stay in the TSV, and in the check, but not in this table."""
    lines = ["| figure | value |", "|---|---|"]
    for r in table.itertuples(index=False):
        if r.metric.endswith((".tpr_at_fpr_0.01", ".eps_lower_bound")) or _variant(r.metric):
            continue
        if r.metric.startswith("robustness.fimba.") and not re.search(r"\.fp_fn\.(fimba|random_features)\.", r.metric):
            continue
        lines.append(f"| `{r.metric}` | {r.value:.3f}{_interval(r)} |")
    return "\n".join(lines) + "\n"


def _variant(metric: str) -> bool:
    return re.search(r"_p0\.\d|_snpsites", metric) is not None


def _interval(r) -> str:
    return "" if math.isnan(r.low) else f" [{r.low:.3f}, {r.high:.3f}]"


def render_summary(table: pd.DataFrame) -> str:
    """The README's demo summary: per audited model, each attack's AUC, TPR at 1% FPR and epsilon bound in one
    row; then one line each for canary exposure, extraction, the GA table and FIMBA."""
    figures = table.set_index("metric")
    lines: list[str] = []
    models = dict.fromkeys(m.split(".")[1] for m in table.metric if m.startswith("privacy."))
    for model in models:
        lines += [
            f"| attack on `{model}` | AUC [95% CI] | TPR at 1% FPR | empirical ε ≥ |",
            "|---|---|---|---|",
        ]
        for r in table[table.metric.str.match(rf"privacy\.{re.escape(model)}\.[^.]+\.auc$")].itertuples(index=False):
            if _variant(r.metric):
                continue
            base = r.metric.removesuffix(".auc")
            tpr = figures.value.get(f"{base}.tpr_at_fpr_0.01", math.nan)
            eps = figures.value.get(f"{base}.eps_lower_bound", math.nan)
            attack = base.split(".")[2]
            lines.append(f"| `{attack}` | {r.value:.3f}{_interval(r)} | {tpr:.2f} | {_number(eps, 2)} |")
        lines.append("")
    lines += _summary_lines(table)
    return "\n".join(lines).rstrip("\n") + "\n"


def _number(value: float, digits: int) -> str:
    return "" if math.isnan(value) else f"{value:.{digits}f}"


def _joined(table: pd.DataFrame, pattern: str, digits: int) -> str:
    """``name value`` pairs for the metrics matching ``pattern``, whose group 1 is the name."""
    pairs = []
    for r in table.itertuples(index=False):
        match = re.fullmatch(pattern, r.metric)
        if match:
            pairs.append(f"{match.group(1)} {r.value:.{digits}f}")
    return ", ".join(pairs)


def _summary_lines(table: pd.DataFrame) -> list[str]:
    lines = []
    for model in dict.fromkeys(m.split(".")[1] for m in table.metric if m.startswith("memorisation.")):
        exposure = _joined(table, rf"memorisation\.{re.escape(model)}\.exposure\.(.+)", 1)
        extraction = _joined(table, rf"memorisation\.{re.escape(model)}\.extraction\.(.+)\.per_base_accuracy", 2)
        if exposure:
            lines.append(f"- canary exposure of `{model}`, mean bits: {exposure}")
        if extraction:
            lines.append(f"- extraction from `{model}`, per-base accuracy of greedy suffixes: {extraction}")
    for classifier in dict.fromkeys(m.split(".")[2] for m in table.metric if m.startswith("robustness.ga.")):
        asr = _joined(table, rf"robustness\.ga\.{re.escape(classifier)}\.(.+)\.asr", 2)
        lines.append(f"- attack success rate at the full edit budget on `{classifier}`: {asr}")
    fimba = []
    for model in dict.fromkeys(m.split(".")[2] for m in table.metric if m.startswith("robustness.fimba.")):
        pattern = rf"robustness\.fimba\.{re.escape(model)}\.fp_fn\.(fimba|random_features)\.accuracy_at_m(\d+)"
        found = {}
        for r in table.itertuples(index=False):
            match = re.fullmatch(pattern, r.metric)
            if match:
                found[match.group(1)] = (r.value, match.group(2))
        if "fimba" in found:
            random_genes = found.get("random_features", (math.nan, ""))[0]
            fimba.append(f"{model} {found['fimba'][0]:.2f} / {_number(random_genes, 2)} (m = {found['fimba'][1]})")
    if fimba:
        lines.append(f"- accuracy after FIMBA / after moving as many random genes: {', '.join(fimba)}")
    return lines


BLOCK = re.compile(r"(<!-- demo-results:start([^>]*)-->\n)(.*?)(<!-- demo-results:end -->)", re.S)
FORMS = {"summary": render_summary, "table": render_markdown}


def _form(marker: str) -> str:
    """The rendering a block's start marker asks for: ``summary`` when it says so, else the full ``table``."""
    return "summary" if "summary" in marker.split() else "table"


def readme_block(readme: str) -> str:
    """The generated block of a Markdown file (between the demo-results markers)."""
    match = BLOCK.search(readme)
    if match is None:
        raise ValueError("no <!-- demo-results:start --> ... <!-- demo-results:end --> block")
    return match.group(3)


def rendered_block(readme: str, table: pd.DataFrame) -> str:
    """What the file's block must hold: the rendering its start marker names."""
    match = BLOCK.search(readme)
    if match is None:
        raise ValueError("no <!-- demo-results:start --> ... <!-- demo-results:end --> block")
    return FORMS[_form(match.group(2))](table)


def replace_readme_block(readme: str, table: pd.DataFrame) -> str:
    block = rendered_block(readme, table)  # raises when the markers are missing
    return BLOCK.sub(lambda m: m.group(1) + block + m.group(4), readme, count=1)


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
    parser.add_argument(
        "--readme",
        action="append",
        default=[],
        help="a Markdown file to rewrite the demo-results block of (with --write); repeat for several",
    )
    args = parser.parse_args(argv)
    table = headline(args.results)
    if table.empty:
        print(f"headline: no attack, memorisation or robustness table under {args.results}", file=sys.stderr)
        return 1
    if args.write:
        write_table(table, args.write)
        for name in args.readme:
            readme = Path(name)
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
