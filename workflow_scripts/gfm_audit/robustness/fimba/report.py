"""The FIMBA section of the HTML report."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import pandas as pd

from ...report.elements import html_image, html_table

# Reported in the FIMBA paper for TCGA: SSIM of power spectra, FIMBA vs random perturbation.
PAPER_SSIM = {"fimba": 0.9, "brute_force": 0.004}


def fimba_section(
    models: Sequence[str],
    *,
    curve_paths: Mapping[str, str],
    detection_path: str,
    vae_path: str,
    comparison_path: str | None = None,
    figures: Mapping[str, Sequence[tuple[str, str]]],
) -> str:
    parts = [
        "<h2>Robustness: FIMBA on gene-expression classifiers</h2>",
        "<p>FIMBA moves the top-m SHAP features of each test sample towards its nearest (Minkowski-p) "
        "misclassified sample of the other predicted class (fp_fn) or correctly classified sample of the other "
        "class (tp_tn). Ablations: random features with the same interpolation, SHAP features with uniform "
        "random values, random features with random values (brute force).</p>",
    ]
    rows, not_tried, fell_back = [], [], []
    for model in models:
        curve = pd.read_csv(curve_paths[model], sep="\t")
        clean = curve[curve.method == "clean"].iloc[0]
        variant = "fp_fn" if (curve.variant == "fp_fn").any() else "tp_tn"
        main = curve[(curve.variant == variant) & (curve.method == "fimba")].sort_values("m").iloc[-1]
        rnd = curve[(curve.variant == variant) & (curve.method == "random_features") & (curve.m == main.m)].iloc[0]
        status = main.get("status", "ok")
        if status == "no_endpoints":
            not_tried.append(model)
        elif status == "fallback_tp_tn":
            fell_back.append(model)
        tried = status != "no_endpoints"
        rows.append(
            {
                "model": model,
                "variant": variant,
                "clean accuracy": clean.accuracy,
                "m": int(main.m),
                "FIMBA accuracy": main.accuracy if tried else "not tried",
                "random-features accuracy": rnd.accuracy if tried else "not tried",
                "FIMBA flip rate": main.flip_rate if tried else "not tried",
                "status": status,
            }
        )
    parts.append("<h3>Clean accuracy and the attack at the largest m</h3>" + html_table(pd.DataFrame(rows)))
    if not_tried:
        parts.append(
            f"<p><b>Not tried:</b> {html.escape(', '.join(not_tried))}: no test sample has an endpoint "
            "for the main variant (for fp_fn: the classifier makes no error on the test split that "
            "FIMBA could move towards), so FIMBA and random features were not run for it; these rows "
            "have status no_endpoints and no metrics. Set robustness.fimba.no_endpoints: "
            "fall_back_to_tp_tn to attack towards correctly classified samples instead.</p>"
        )
    if fell_back:
        parts.append(
            f"<p><b>Fallback:</b> {html.escape(', '.join(fell_back))}: fp_fn has no endpoint, so its "
            "FIMBA and random-features rows move towards the tp_tn endpoints (status fallback_tp_tn; "
            "robustness.fimba.no_endpoints: fall_back_to_tp_tn).</p>"
        )
    for model in models:
        for path, caption in figures.get(model, []):
            parts.append(f"<h3>{html.escape(model)}: {html.escape(caption)}</h3>" + html_image(path, caption))
    detection = pd.read_csv(detection_path, sep="\t")
    parts.append("<h3>Spectral detection: SSIM of power spectra, original vs attacked</h3>")
    summary = detection[detection.subset == "all"].groupby("method").ssim.mean()
    parts.append(
        "<p>Mean SSIM over models and variants (whole set): "
        + "; ".join(
            f"{html.escape(m)} {summary.get(m, float('nan')):.3f} (paper, TCGA: {PAPER_SSIM[m]})"
            for m in ("fimba", "brute_force")
        )
        + ". A lower SSIM means the attack is easier to see in the spectrum.</p>"
    )
    parts.append(html_table(detection))
    parts.append("<h3>VAE poisoning (latent interpolation towards the FIMBA endpoint)</h3>")
    parts.append(html_table(pd.read_csv(vae_path, sep="\t")))
    if comparison_path:
        parts.append(comparison_part(pd.read_csv(comparison_path, sep="\t")))
    return "".join(parts)


def comparison_part(table: pd.DataFrame) -> str:
    """FIMBA beside ART's attacks: accuracy per attack at each L2 budget, then the whole table."""
    parts = [
        "<h3>FIMBA beside ART's attacks at matched L2 budgets</h3>",
        "<p>Budgets are FIMBA's own: at each m, the largest L2 distance FIMBA moves any compared test sample. "
        "FGSM and Auto-PGD (white box, torch classifiers only) get that radius; ZOO (black box, probabilities) "
        "and HopSkipJump (black box, labels) search for small perturbations that are then projected onto it. "
        "The number of features changed is not matched: ART's attacks move every gene, FIMBA m of them. "
        "Attacks from the Adversarial Robustness Toolbox (ZooAttack, HopSkipJump, FastGradientMethod, "
        "AutoProjectedGradientDescent).</p>",
    ]
    attacked = table[table.attack != "clean"]
    if len(attacked):
        wide = attacked.pivot_table(index=["model", "m", "budget"], columns="attack", values="accuracy").reset_index()
        clean = table[table.attack == "clean"].set_index("model").accuracy
        wide.insert(3, "clean", wide.model.map(clean))
        parts.append("<p>Accuracy on the compared samples (lower means a stronger attack):</p>" + html_table(wide))
    parts.append(html_table(table))
    return "".join(parts)
