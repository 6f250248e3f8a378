"""The privacy section of the HTML report: verdicts, the data, the models, and each model's attacks."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ..gfm.spec import ModelSpec
from ..report.elements import html_image, html_table
from .metrics import TOO_FEW
from .neighbors import neighbor_summary

# Table cells that read as words: the marker for too few non-members.
LABELS = {TOO_FEW: "too few non-members"}

METRICS_NOTE = (
    "<p>TPR at FPR α (<code>tpr_at_fpr_α</code>) is the highest TPR over the thresholds with FPR ≤ α; the "
    "<code>_strict</code> columns take FPR &lt; α, the convention of mimir's and LiRA's code, for comparison with "
    "numbers published either way. <code>rmia_population</code> is the number of held-out non-members RMIA "
    "compares each window with: its score moves in steps of 1/<code>rmia_population</code>, ties broken by the "
    "likelihood ratio.</p>"
)

# Shown under the metrics when recall or ramia ran: the attacks whose rows count fewer windows than the data has
# for a reason of their own (RMIA's population is in METRICS_NOTE, the SNP-site variants' windows without SNPs
# explain themselves). The demo's page without them stays as it was.
COUNTS_NOTE = (
    "<p><code>n_members</code> and <code>n_nonmembers</code> count the windows an attack scored: recall leaves out "
    "the non-member windows of its prefix (<code>results/attacks/recall_prefix.fa</code>, "
    "<code>attacks.recall.prefix_windows</code>), RMIA its population, ramia a window whose range has no scored "
    "point (none while the window is a point of its own range), the <code>_snpsites</code> variants the windows "
    "without SNP sites.</p>"
)
COUNTS_NOTE_ATTACKS = ("recall", "ramia")


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
    if mode == "genome" and not is_target:
        body += (
            " (This model was not trained on the target's split of the genome, so leakage here would point to a "
            "flaw in the setup.)"
        )
    return leaks, head + body


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


def scoring_label(spec: ModelSpec) -> str:
    """How a model's per-token log p is computed, as the Models table states it: a causal model's log p of each
    token given the tokens before it; a masked model's pseudo-log-likelihood (Salazar et al., ACL 2020) in its
    masking mode, stride with its k, sampled with its mask fraction."""
    if spec.kind != "masked":
        return "log-likelihood (causal)"
    if spec.masking == "stride":
        return f"pseudo-log-likelihood, masking stride, stride_k {spec.stride_k}"
    if spec.masking == "sampled":
        return f"pseudo-log-likelihood, masking sampled, mask_fraction {spec.mask_fraction:g}"
    return f"pseudo-log-likelihood, masking {spec.masking}"


def privacy_section(
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
) -> tuple[str, dict[str, bool]]:
    """HTML of the privacy section and {model: leaks}: a verdict per model, the data, the models, their attacks."""
    windows = pd.read_csv(windows_path, sep="\t")
    neighbors = neighbor_summary(neighbors_path)
    membership = pd.read_csv(membership_path, sep="\t") if membership_path else None
    target, mode = config.get("target"), config.get("membership", {}).get("mode", "none")
    parts: list[str] = []
    leaks = {}
    verdicts = []
    for model in models:
        metrics = pd.read_csv(metrics_paths[model], sep="\t")
        leaks[model], text = verdict(model, metrics, is_target=model == target, mode=mode)
        verdicts.append(f"<div class='verdict {'leaks' if leaks[model] else 'clean'}'>{text}</div>")
    parts.append("<h2>Verdict</h2>" + "".join(verdicts))
    parts.append("<h2>Data</h2>" + html_table(data_summary(windows, neighbors, membership), labels=LABELS))
    model_rows = [
        {
            "model": name,
            "kind": spec["kind"],
            "path": spec["path"],
            "init": spec.get("init", "pretrained"),
            "scoring": scoring_label(ModelSpec.from_config(name, spec)),
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
        {
            "model": r,
            "kind": "(as target)",
            "path": f"results/models/{r}",
            "init": "trained here",
            "scoring": "(as target)",
            "role": "reference",
        }
        for r in refs
    ]
    parts.append("<h2>Models</h2>" + html_table(pd.DataFrame(model_rows), labels=LABELS))
    for model in models:
        parts.append(f"<h2>Attacks on {html.escape(model)}</h2>")
        metrics = pd.read_csv(metrics_paths[model], sep="\t")
        if "rmia_population" in metrics:
            metrics["rmia_population"] = [("" if pd.isna(v) else str(int(v))) for v in metrics.rmia_population]
        counted = metrics.attack.astype(str).str.startswith(COUNTS_NOTE_ATTACKS).any()
        parts.append(html_table(metrics, labels=LABELS) + METRICS_NOTE + (COUNTS_NOTE if counted else ""))
        skipped = pd.read_csv(skipped_paths[model], sep="\t")
        if not skipped.empty:
            parts.append("<p>Skipped attacks:</p>" + html_table(skipped, labels=LABELS))
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
                f"benchmark, at {grid}, computed over members and non-members)</h3>" + html_table(shown, labels=LABELS)
            )
        for path, caption in figures.get(model, []):
            parts.append(f"<h3>{html.escape(caption)}</h3>" + html_image(path, caption))
    return "\n".join(parts), leaks
