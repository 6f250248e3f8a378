"""The individuals section of the HTML report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from .membership import read_individual_membership
from .tables import read_table


def report_section(
    model: str,
    *,
    config: Mapping[str, Any],
    counts_path: str,
    membership_path: str,
    metrics_path: str,
    curve_path: str,
    genotype_path: str,
    figures: Sequence[tuple[str, str]],
) -> str:
    """HTML of the individuals section: data, person-level metrics and verdict, windows curve, genotype inference."""
    import html

    from ...report.elements import html_image, html_table
    from ..metrics import TOO_FEW

    def table(df: pd.DataFrame) -> str:
        return html_table(df, 3, labels={TOO_FEW: "too few non-members"})

    ind = config.get("individuals", {})
    counts = read_table(counts_path)
    membership = read_individual_membership(membership_path)
    metrics = read_table(metrics_path)
    curve = read_table(curve_path)
    genotypes = read_table(genotype_path)
    parts = [f"<h2>Personal genomes: individuals membership of {html.escape(model)}</h2>"]
    n_members = int(membership.target_member.sum())
    parts.append(
        f"<p>{len(membership)} individuals from <code>{html.escape(str(ind.get('vcf')))}</code>: {n_members} "
        f"members (the target trained on both haplotypes of each of their windows), {len(membership) - n_members} "
        f"non-members; {sum(c.startswith('ref_') for c in membership.columns)} reference models, each trained on "
        "a seeded random half of the individuals. SNVs only; the counts of skipped records are below.</p>"
    )
    if ind.get("phasing") == "random":
        parts.append(
            "<p><b>Phasing: random.</b> Unphased heterozygous genotypes were assigned to the two haplotypes at "
            "random (seeded); haplotype sequences are then not the person's true haplotypes.</p>"
        )
    parts.append(table(counts))
    if not metrics.empty:
        best = metrics.sort_values("auc", ascending=False).iloc[0]
        leaks = float(best.auc_low) > 0.5
        parts.append(
            f"<div class='verdict {'leaks' if leaks else 'clean'}'><b>{html.escape(model)} "
            f"{'reveals which people were in its training set' if leaks else 'shows no clear person-level leakage'}"
            f".</b> Strongest person-level attack: <b>{html.escape(str(best.attack))}</b>, AUC {best.auc:.3f} "
            f"(95% CI {best.auc_low:.3f}–{best.auc_high:.3f}), empirical ε ≥ {float(best.eps_lower_bound):.2f}, "
            f"over {int(best.n_members)} members and {int(best.n_nonmembers)} non-members.</div>"
        )
    parts.append("<h3>Person-level attacks</h3>" + table(metrics))
    wide = curve.pivot(index="windows", columns="attack", values="auc_mean").reset_index()
    parts.append("<h3>Person-level AUC against windows per person (mean over draws)</h3>" + table(wide))
    parts.append("<h3>Genotype inference by allele-frequency bin</h3>" + table(genotypes))
    for path, caption in figures:
        parts.append(f"<h3>{html.escape(caption)}</h3>" + html_image(path, caption))
    return "\n".join(parts)
