"""The report's dataset inference section and its figure, from rule dataset_inference's tables.

One section per model with ``result.tsv`` (:data:`.dataset_inference.RESULT_COLUMNS`): a sentence of verdict on the
suspect row (the suspect set was used in training when its p-value is below ``alpha``), the rows' test, effect
size and DUCI share with its standard error, and the figure of ``p_curve.tsv`` (:func:`p_curve_figure`): how the
p-value and the power fall and rise with the number of suspect windows the owner brings.
"""

from __future__ import annotations

import html
import os

import numpy as np
import pandas as pd

from ..plotting import plt, save_figure
from ..report.elements import html_image, html_table

# What each shown column means, under the table.
NOTE = (
    "<p>Each row tests whether a logistic regression over every attack's score, fitted on half of each set, "
    "scores the other half of the suspect set higher than the other half of the validation set (one-sided Welch "
    "t-test, Maini et al. 2024); <code>p_value</code> combines the seeded splits as min(1, 2 × median), "
    "<code>rejected</code> is <code>p_value</code> &lt; <code>alpha</code>, and <code>cohens_d</code> is the "
    "splits' median effect size (the difference of the aggregated scores over their pooled standard deviation). "
    "The control row tests two seeded halves of the validation set against each other: nothing tells them apart, "
    "so it rejects only by chance, with probability <code>alpha</code>. <code>duci_fraction</code> is DUCI's "
    "estimate of the share of the row's suspect side that was trained on (Tong et al. 2025), from "
    "<code>duci_attack</code>'s score thresholded where TPR − FPR is largest on {unit} of known membership, "
    "± its delta-method standard error, clipped to [0, 1]. Every column: "
    "<code>results/dataset_inference/&lt;model&gt;/result.tsv</code>.</p>"
)

# The columns of result.tsv the section shows, in this order.
SHOWN = (
    "test",
    "suspect",
    "validation",
    "n_suspect",
    "n_validation",
    "n_features",
    "p_value",
    "alpha",
    "rejected",
    "cohens_d",
    "duci_attack",
    "duci_fraction",
)


def _p(value: float) -> str:
    """A p-value as text: a p far below 0.001 would read 0.000 at the tables' three decimals."""
    return f"{value:.3g}"


def verdict(result: pd.DataFrame, *, unit: str = "windows") -> tuple[bool, str]:
    """(rejected, one sentence) of the suspect row, with the control row's outcome after it. ``unit`` names what a
    row of the test is: ``windows``, or ``people`` in membership.mode individuals (one row per person)."""
    suspect = result[result.test == "suspect"].iloc[0]
    sets = f"{html.escape(str(suspect.suspect))} against {html.escape(str(suspect.validation))}"
    sizes = f"{int(suspect.n_suspect)} and {int(suspect.n_validation)} {unit}"
    if pd.isna(suspect.duci_fraction):
        # DUCI's TPR <= FPR on the held-out calibration fold: no share to give.
        duci = (
            f"DUCI gives no share: {html.escape(str(suspect.duci_attack))} does not tell held-out members from "
            "non-members apart."
        )
    elif bool(suspect.rejected):
        share = f"{suspect.duci_fraction:.2f} ± {suspect.duci_standard_error:.2f}"
        duci = f"DUCI estimates that {share} of it was trained on."
    else:
        duci = f"DUCI estimates {suspect.duci_fraction:.2f} ± {suspect.duci_standard_error:.2f} of it."
    if bool(suspect.rejected):
        text = (
            f"<b>The suspect set was used in training</b>: p = {_p(suspect.p_value)} &lt; α = {suspect.alpha:g} "
            f"({sets}, {sizes}); {duci}"
        )
    else:
        text = (
            f"<b>No evidence that the suspect set was used in training</b>: p = {_p(suspect.p_value)} ≥ α = "
            f"{suspect.alpha:g} ({sets}, {sizes}); {duci}"
        )
    for row in result[result.test == "control"].itertuples(index=False):
        outcome = (
            "rejected too, which happens by chance with probability α: read the verdict above with that in mind"
            if row.rejected
            else "not rejected, as it should not be"
        )
        text += f" The control test (two halves of {html.escape(str(row.validation).removeprefix('other half of '))})"
        text += f" gives p = {_p(row.p_value)}: {outcome}."
    return bool(suspect.rejected), text


def shown_table(result: pd.DataFrame) -> pd.DataFrame:
    """The rows with the columns of :data:`SHOWN`, p-values in significant digits and DUCI's share ± its error."""
    shown = result[list(SHOWN)].copy()
    shown["p_value"] = [_p(p) for p in result.p_value]
    shown["rejected"] = ["yes" if r else "no" for r in result.rejected]
    shown["duci_fraction"] = [
        f"{f:.3f} ± {se:.3f}" for f, se in zip(result.duci_fraction, result.duci_standard_error, strict=True)
    ]
    return shown


def dataset_inference_section(
    model: str, *, result_path: str | os.PathLike, figure: tuple[str, str], unit: str = "windows"
) -> str:
    """HTML of one model's section: verdict, the result rows, the p-value curve (``figure``: path, caption);
    ``unit``: what the sets hold (:func:`verdict`)."""
    result = pd.read_csv(result_path, sep="\t")
    rejected, text = verdict(result, unit=unit)
    path, caption = figure
    return "\n".join(
        [
            f"<h2>Dataset inference on {html.escape(model)}</h2>",
            f"<div class='verdict {'leaks' if rejected else 'clean'}'>{text}</div>",
            html_table(shown_table(result)) + NOTE.replace("{unit}", unit),
            f"<h3>{html.escape(caption)}</h3>" + html_image(path, caption),
        ]
    )


def p_curve_figure(curve: pd.DataFrame, path: str | os.PathLike, *, unit: str = "windows") -> None:
    """Left: the mean and median p-value against the number of suspect windows (``unit``: people in membership.mode
    individuals), with alpha; right: the share of the curve's seeded subsets that reject at alpha (the test's power
    at that size)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    # A p-value can underflow to 0, which a log axis cannot place: drawn at the smallest positive double.
    floor = np.finfo(float).tiny
    for column, style in (("p_median", "o-"), ("p_mean", "s--")):
        axes[0].plot(curve.n_suspect, np.maximum(curve[column], floor), style, label=column.replace("_", " "))
    alpha = float(curve.alpha.iloc[0]) if len(curve) else 0.01
    axes[0].axhline(alpha, color="tab:red", ls=":", lw=1, label=f"alpha = {alpha:g}")
    axes[0].set(xscale="log", yscale="log", xlabel=f"suspect {unit}", ylabel="p-value")
    axes[0].set_title("p-value (one split per subset)", fontsize=10)
    axes[0].legend(fontsize=8)
    axes[1].plot(curve.n_suspect, curve.rejected_share, "o-", color="tab:red")
    axes[1].set(
        xscale="log", xlabel=f"suspect {unit}", ylabel=f"share rejected at alpha = {alpha:g}", ylim=(-0.02, 1.02)
    )
    axes[1].set_title("power", fontsize=10)
    for ax in axes:
        ax.set_xticks(curve.n_suspect, [str(int(n)) for n in curve.n_suspect], fontsize=8)
        ax.minorticks_off()
    save_figure(fig, path)
