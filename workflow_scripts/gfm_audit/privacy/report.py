"""The privacy audit as one self-contained HTML page (figures embedded, readable offline)."""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ..outputs import atomic_outputs
from ..report_html import html_image
from ..report_html import html_table as report_table
from .metrics import TOO_FEW
from .neighbors import neighbor_summary

STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.verdict{padding:.8em 1em;border-left:5px solid;margin:1em 0}
.leaks{border-color:#c0392b;background:#fdf0ee}.clean{border-color:#27ae60;background:#eef9f1}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}
code.seq{font-size:.8em;word-break:break-all}mark{background:#f5b041;font-weight:bold}pre{background:#f7f7f7;padding:1em;overflow:auto}
"""

METRICS_NOTE = (
    "<p>TPR at FPR α (<code>tpr_at_fpr_α</code>) is the highest TPR over the thresholds with FPR ≤ α; the "
    "<code>_strict</code> columns take FPR &lt; α, the convention of mimir's and LiRA's code, for comparison with "
    "numbers published either way. <code>rmia_population</code> is the number of held-out non-members RMIA "
    "compares each window with: its score moves in steps of 1/<code>rmia_population</code>, ties broken by the "
    "likelihood ratio.</p>"
)


def verdict(model: str, metrics: pd.DataFrame, *, is_target: bool, mode: str) -> tuple[bool, str]:
    """Plain-language verdict: does the strongest attack separate members from non-members?

    The model is said to leak when the lower end of the strongest attack's
    95% bootstrap CI of AUC is above 0.5.
    """
    if metrics.empty:
        return False, f"No attack could be evaluated on {model}."
    best = metrics.sort_values("auc", ascending=False).iloc[0]
    tpr = best["tpr_at_fpr_0.01"]
    tpr_text = (
        "TPR at 1% FPR cannot be measured with this few non-members"
        if tpr == TOO_FEW or pd.isna(tpr)
        else f"at FPR ≤ 1% it finds {100 * float(tpr):.1f}% of the members"
    )
    leaks = float(best.auc_low) > 0.5
    head = f"<b>{html.escape(model)} {'leaks membership' if leaks else 'shows no clear membership leakage'}.</b>"
    body = (
        f" The strongest attack is <b>{html.escape(str(best.attack))}</b>: AUC {best.auc:.3f} "
        f"(95% CI {best.auc_low:.3f}–{best.auc_high:.3f}); {tpr_text}; "
        f"empirical ε ≥ {float(best.eps_lower_bound):.2f}."
    )
    if mode == "finetune" and not is_target:
        body += " (This model was not fine-tuned on the members, so leakage here would point to a flaw in the setup.)"
    return leaks, head + body


def html_table(df: pd.DataFrame, digits: int = 3) -> str:
    """A report table; the marker for too few non-members reads as words."""
    return report_table(df, digits, labels={TOO_FEW: "too few non-members"})


def data_summary(windows: pd.DataFrame, neighbors: pd.DataFrame, membership: pd.DataFrame | None) -> pd.DataFrame:
    """The data table of the report; ``neighbors`` is :func:`.neighbors.neighbor_summary` (counts per kind, p)."""
    snp = neighbors[neighbors.kind == "snp"]
    rows = [
        ("windows", len(windows)),
        ("window length (bp)", int((windows.end - windows.start).iloc[0]) if len(windows) else 0),
        ("chromosomes", ", ".join(dict.fromkeys(windows.chrom.astype(str)))),
        ("SNP sites per window (mean)", f"{windows.n_snps.mean():.1f}"),
        ("SNP fraction (mean)", f"{windows.snp_fraction.mean():.4f}"),
        ("GC fraction (mean)", f"{windows.gc_fraction.mean():.3f}"),
        ("neighbors", int(neighbors.n.sum())),
        ("neighbor kinds", ", ".join(sorted(neighbors.kind.unique()))),
        ("replacement probabilities", ", ".join(f"{p:g}" for p in sorted(neighbors.prob.unique()))),
        ("substitutions per SNP neighbor (mean)", f"{snp.n_changed.sum() / max(snp.n.sum(), 1):.1f}"),
    ]
    if membership is not None:
        rows += [
            ("members (target)", int(membership.target_member.sum())),
            ("non-members (target)", int((membership.target_member == 0).sum())),
        ]
    return pd.DataFrame(rows, columns=["item", "value"])


def benchmark_summary(folder: str | os.PathLike) -> pd.DataFrame:
    """Per rule, from Snakemake's ``benchmark:`` files under ``folder/<rule>[/...].tsv``: jobs, time and max RSS."""
    rows = []
    root = Path(folder)
    for path in sorted(root.rglob("*.tsv")) if root.is_dir() else []:
        rule = path.relative_to(root).parts[0].removesuffix(".tsv")
        table = pd.read_csv(path, sep="\t")
        for _, row in table.iterrows():
            rss = pd.to_numeric(row.get("max_rss"), errors="coerce")
            rows.append({"rule": rule, "s": float(row["s"]), "max_rss": rss})
    if not rows:
        return pd.DataFrame(columns=["rule", "jobs", "total time (s)", "longest job (s)", "max RSS (MiB)"])
    df = pd.DataFrame(rows)
    grouped = df.groupby("rule", sort=False)
    return pd.DataFrame(
        {
            "rule": list(grouped.groups),
            "jobs": grouped.size().to_numpy(),
            "total time (s)": grouped.s.sum().round(1).to_numpy(),
            "longest job (s)": grouped.s.max().round(1).to_numpy(),
            "max RSS (MiB)": grouped.max_rss.max().round(0).to_numpy(),
        }
    )


def run_section(folder: str | os.PathLike) -> str:
    """The run section: each rule's jobs, time and peak memory, as Snakemake measured them."""
    summary = benchmark_summary(folder)
    if summary.empty:
        return "<h2>Run</h2><p>No benchmark records (results/benchmarks/) were found.</p>"
    return (
        "<h2>Run</h2><p>Per rule, from Snakemake's benchmark records in results/benchmarks/ (the report's own is "
        "written after it): jobs, wall-clock time and the largest resident memory of one job.</p>"
        + html_table(summary, digits=1)
    )


def build_report(
    config: Mapping[str, Any],
    *,
    windows_path: str,
    neighbors_path: str,
    membership_path: str | None,
    models: Sequence[str],
    metrics_paths: Mapping[str, str],
    skipped_paths: Mapping[str, str],
    threshold_paths: Mapping[str, str],
    figures: Mapping[str, Sequence[tuple[str, str]]],
    out_path: str | os.PathLike,
    robustness_html: str = "",
    memorisation_html: str = "",
    benchmarks: str | os.PathLike | None = None,
) -> dict[str, bool]:
    """Write the report; return {model: leaks}. With no audited model only the robustness part is written."""
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>gfm-audit report</title><style>{STYLE}"
        "</style></head><body><h1>gfm-audit: privacy and robustness audit</h1>"
    ]
    leaks = (
        {}
        if not models
        else _privacy_part(
            config,
            windows_path=windows_path,
            neighbors_path=neighbors_path,
            membership_path=membership_path,
            models=models,
            metrics_paths=metrics_paths,
            skipped_paths=skipped_paths,
            threshold_paths=threshold_paths,
            figures=figures,
            parts=parts,
        )
    )
    parts.append(memorisation_html)
    parts.append(robustness_html)
    if benchmarks is not None:
        parts.append(run_section(benchmarks))
    parts.append(
        "<h2>Configuration of this run</h2><pre>"
        + html.escape(yaml.safe_dump(dict(config), sort_keys=False))
        + "</pre></body></html>"
    )
    with atomic_outputs(out_path) as (tmp,):
        with open(tmp, "w") as fh:
            fh.write("\n".join(parts))
    return leaks


def _privacy_part(
    config,
    *,
    windows_path,
    neighbors_path,
    membership_path,
    models,
    metrics_paths,
    skipped_paths,
    threshold_paths,
    figures,
    parts: list[str],
) -> dict[str, bool]:
    windows = pd.read_csv(windows_path, sep="\t")
    neighbors = neighbor_summary(neighbors_path)
    membership = pd.read_csv(membership_path, sep="\t") if membership_path else None
    target, mode = config.get("target"), config.get("membership", {}).get("mode", "none")
    leaks = {}
    verdicts = []
    for model in models:
        metrics = pd.read_csv(metrics_paths[model], sep="\t")
        leaks[model], text = verdict(model, metrics, is_target=model == target, mode=mode)
        verdicts.append(f"<div class='verdict {'leaks' if leaks[model] else 'clean'}'>{text}</div>")
    parts.append("<h2>Verdict</h2>" + "".join(verdicts))
    parts.append("<h2>Data</h2>" + html_table(data_summary(windows, neighbors, membership)))
    model_rows = [
        {
            "model": name,
            "kind": spec["kind"],
            "path": spec["path"],
            "init": spec.get("init", "pretrained"),
            "role": "target" if name == target else "audited",
        }
        for name, spec in config.get("models", {}).items()
    ]
    refs = [
        c.removesuffix("_member")
        for c in (membership.columns if membership is not None else [])
        if c.startswith("ref_")
    ]
    model_rows += [
        {"model": r, "kind": "(as target)", "path": f"results/models/{r}", "init": "trained here", "role": "reference"}
        for r in refs
    ]
    parts.append("<h2>Models</h2>" + html_table(pd.DataFrame(model_rows)))
    for model in models:
        parts.append(f"<h2>Attacks on {html.escape(model)}</h2>")
        metrics = pd.read_csv(metrics_paths[model], sep="\t")
        if "rmia_population" in metrics:
            metrics["rmia_population"] = [("" if pd.isna(v) else str(int(v))) for v in metrics.rmia_population]
        parts.append(html_table(metrics) + METRICS_NOTE)
        skipped = pd.read_csv(skipped_paths[model], sep="\t")
        if not skipped.empty:
            parts.append("<p>Skipped attacks:</p>" + html_table(skipped))
        thresholds = pd.read_csv(threshold_paths[model], sep="\t")
        main = thresholds[thresholds.attack.isin(["neighborhood_snp", "neighborhood_control"])]
        if not main.empty:
            fixed = "quantile" not in main or main["quantile"].isna().all()
            grid = "its fixed thresholds" if fixed else "thresholds at quantiles of the observed differences"
            shown = main.drop(columns="quantile", errors="ignore") if fixed else main
            # Quantile thresholds can be far below 0.001, where three decimals would show them all as 0.000.
            shown = shown.assign(threshold=[f"{t:.3g}" for t in shown.threshold])
            parts.append(
                "<h3>Neighbor loss difference thresholds (the table of the original HyenaDNA membership-inference "
                f"benchmark, at {grid}, computed over members and non-members)</h3>" + html_table(shown)
            )
        for path, caption in figures.get(model, []):
            parts.append(f"<h3>{html.escape(caption)}</h3>" + html_image(path, caption))
    return leaks
