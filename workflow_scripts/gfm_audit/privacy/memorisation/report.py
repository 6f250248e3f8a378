"""The memorisation section of the HTML report."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import pandas as pd

from ...report.elements import html_image, html_table

EXPOSURE_NOTE = (
    "<p>Exposure (Carlini et al. 2019): log2 |R| − log2 rank of a canary's log-perplexity among the |R| "
    "candidates of its format; extrapolated from a skew-normal fit to sampled candidates when |R| is too large "
    "to enumerate. Never-inserted canaries from the same distribution show what no memorisation looks like "
    "(about 1–2 bits); a canary the model has memorised approaches log2 |R|.</p>"
)
EXTRACTION_NOTE = (
    "<p>Extraction: the first <i>p</i> bases of a window are given and the model continues them; a window is "
    "extracted when the continuation equals the true next bases (sampling: any of its tries). The k-mer baseline "
    "is a Markov chain fitted on the non-member windows: what it also predicts is predictable DNA, not "
    "memorisation.</p>"
)


ONE_RUN_NOTE = (
    "<p>One-run audit (Steinke, Nasr &amp; Jagielski 2023): each canary went into training by a fair coin; the "
    "lowest-loss canaries are guessed in and the highest-loss out, and the count of right guesses rules out every "
    "ε below <code>eps_lower_bound</code> at the stated confidence and δ, for any training that is (ε, δ)-DP. "
    "<code>ceiling</code> is the most this many canaries can show.</p>"
)


def memorisation_section(
    *,
    exposure_paths: Mapping[str, str],
    extraction_paths: Mapping[str, str],
    figures: Mapping[str, Sequence[tuple[str, str]]],
    one_run_paths: Mapping[str, str] | None = None,
) -> str:
    """HTML of the memorisation section: per model, its exposure, one-run and extraction summaries and figures."""
    one_run_paths = one_run_paths or {}
    models = list(dict.fromkeys([*exposure_paths, *one_run_paths, *extraction_paths]))
    if not models:
        return ""
    parts = ["<h2>Memorisation: canaries and extraction</h2>"]
    for model in models:
        parts.append(f"<h3>{html.escape(model)}</h3>")
        if model in exposure_paths:
            exposure = pd.read_csv(exposure_paths[model], sep="\t")
            summary = (
                exposure.groupby(["group", "repeats"], sort=False)
                .agg(
                    canaries=("canary_id", "size"), mean_exposure=("exposure", "mean"), max_exposure=("exposure", "max")
                )
                .reset_index()
            )
            summary["log2_space"] = exposure.log2_space.max()
            parts.append("<h4>Canary exposure</h4>" + html_table(summary, 2) + EXPOSURE_NOTE)
        if model in one_run_paths:
            one_run = pd.read_csv(one_run_paths[model], sep="\t")
            one_run["delta"] = one_run["delta"].map("{:g}".format)  # 1e-05, not 0.000
            one_run["mu_lower_bound"] = one_run["mu_lower_bound"].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
            parts.append("<h4>One-run canary bound on ε</h4>" + html_table(one_run, 3) + ONE_RUN_NOTE)
        if model in extraction_paths:
            extraction = pd.read_csv(extraction_paths[model], sep="\t")
            parts.append("<h4>Extraction</h4>" + html_table(extraction) + EXTRACTION_NOTE)
        for path, caption in figures.get(model, []):
            parts.append(f"<h4>{html.escape(caption)}</h4>" + html_image(path, caption))
    return "\n".join(parts)


def memorisation_html(inputs: Mapping[str, str]) -> str:
    """The section from the report rule's inputs, by key (gfm_audit.report.layout); empty when the stage is off."""
    from ...report import layout

    # The report rule's input keys name the models of each section (rules/common.smk, report_inputs).
    names = {
        section: [k.split("__", 1)[1] for k in inputs if k.startswith(f"{section}__")]
        for section in ("exposure", "extraction")
    }
    one_run = layout.collect(inputs, "one_run", layout.names_in(inputs, "one_run_bound"))
    exposure = layout.collect(inputs, "exposure", names["exposure"])
    extraction = layout.collect(inputs, "extraction", names["extraction"])
    models = list(dict.fromkeys([*names["exposure"], *names["extraction"]]))
    figures = {m: exposure.figures.get(m, []) + extraction.figures.get(m, []) for m in models}
    return memorisation_section(
        exposure_paths=exposure.tables["exposure"],
        extraction_paths=extraction.tables["extraction"],
        figures=figures,
        one_run_paths=one_run.tables["one_run_bound"],
    )
