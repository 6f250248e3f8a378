"""The page around the report's sections: head and style, the run section, the run's configuration."""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ..outputs import atomic_outputs
from .elements import html_table

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

HEAD = (
    f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>gfm-audit report</title><style>{STYLE}"
    "</style></head><body><h1>gfm-audit: privacy and robustness audit</h1>"
)


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


def write_page(
    config: Mapping[str, Any],
    sections: Sequence[str],
    out_path: str | os.PathLike,
    *,
    benchmarks: str | os.PathLike | None = None,
) -> None:
    """Write the page: ``sections`` in their order, the run section when ``benchmarks`` is given, the config."""
    parts = [HEAD, *sections]
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
