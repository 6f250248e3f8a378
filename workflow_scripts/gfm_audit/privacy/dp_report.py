"""The report's DP audit section: a DP-trained model's claim (its ``dp.json``) against the empirical lower bounds.

Shown for a model whose folder holds ``dp.json`` (``membership.training.dp``; the report rule asks for the folder
only then). The bounds: the Clopper-Pearson threshold bound of each membership attack (``eps_lower_bound`` of
``results/attacks/<model>/metrics.tsv``, at ``attacks.metrics.delta`` and ``confidence``) and, where a table of it
is given, the one-run canary bound (Steinke, Nasr & Jagielski 2023) and its Gaussian-DP version (shown, not held
against the claim: ``dp_audit.SHAPE_ASSUMED``). The verdict is :class:`.dp_audit.DPVerdict`'s
sentence.

A bound computed at a delta below the claim's is shown but not compared: (eps, delta)-DP implies (eps, delta')-DP
for delta' >= delta only, and a smaller delta gives a larger bound, which may exceed a true claim.

The one-run table (optional; one row per bound): ``eps_lower_bound``, ``delta``, ``level`` (the confidence), and
where known ``bound`` (its name: ``one_run`` unless given), ``canaries`` (m), ``guesses`` (r) and ``correct`` (v).
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Mapping
from typing import Any

import pandas as pd

from ..errors import InputError
from ..report.elements import html_table
from .dp_audit import NAMES, SHAPE_ASSUMED, DPVerdict, check_claim
from .dp_training import RECORD, read_dp_record

# The claim's rows, in this order: (dp.json key, label).
CLAIM = (
    ("epsilon", "epsilon (achieved, as the accountant computed it)"),
    ("delta", "delta"),
    ("requested_epsilon", "epsilon requested (membership.training.dp)"),
    ("accountant", "accountant"),
    ("noise_multiplier", "noise multiplier"),
    ("noise_multiplier_used", "noise multiplier used"),
    ("max_grad_norm", "clipping norm"),
    ("sample_rate", "sampling rate"),
    ("steps", "steps"),
    ("epochs", "epochs"),
    ("n_sequences", "training sequences"),
    ("per_sample_gradients", "per-sequence gradients"),
    ("opacus", "Opacus"),
)

NOTE = (
    "<p>Each lower bound holds at its confidence for any correctly implemented and correctly accounted DP "
    "training: a bound above the claimed ε means, at that confidence, that the implementation or the accounting is "
    "wrong; bounds at or below it are consistent with the claim and say nothing of how tight it is. The "
    "Clopper-Pearson bound of an attack is its <code>eps_lower_bound</code> (over every threshold, FPR and FNR at "
    "their Clopper-Pearson limits, each window one trial); each bound holds on its own, so with k bounds the chance "
    "that one exceeds a true claim by chance is at most k times one minus the confidence. A bound computed at a δ "
    "below the claim's is not compared.</p>"
)


def claimed_epsilon(record: Mapping[str, Any]) -> float:
    """The record's achieved epsilon; None (the accountant found no finite bound) is infinite."""
    return math.inf if record.get("epsilon") is None else float(record["epsilon"])


def clopper_pearson_bounds(metrics: pd.DataFrame, *, delta: float, level: float) -> pd.DataFrame:
    """One row per attack of ``metrics.tsv`` with a bound: its name, delta, confidence and eps lower bound."""
    values = pd.to_numeric(metrics.get("eps_lower_bound", pd.Series(dtype=float)), errors="coerce")
    return pd.DataFrame(
        [
            {"bound": f"Clopper-Pearson bound of {attack}", "delta": delta, "level": level, "eps": float(value)}
            for attack, value in zip(metrics.get("attack", []), values, strict=True)
            if pd.notna(value)
        ],
        columns=["bound", "delta", "level", "eps"],
    )


def one_run_bounds(table: pd.DataFrame) -> pd.DataFrame:
    """The one-run table's rows as bounds (see the module docstring for its columns)."""
    missing = {"eps_lower_bound", "delta", "level"} - set(table.columns)
    if missing:
        raise InputError(f"the one-run bound table lacks column(s) {', '.join(sorted(missing))}")
    rows = []
    for row in table.to_dict("records"):
        key = str(row["bound"]) if pd.notna(row.get("bound")) else "one_run"
        name = NAMES.get(key, key)
        if all(pd.notna(row.get(k)) for k in ("correct", "guesses", "canaries")):
            name += f" ({int(row['correct'])} of {int(row['guesses'])} guesses right, m = {int(row['canaries'])})"
        rows.append({"bound": name, "key": key, **_numbers(row)})
    return pd.DataFrame(rows, columns=["bound", "key", "delta", "level", "eps"])


def _numbers(row: Mapping[str, Any]) -> dict[str, float]:
    return {"delta": float(row["delta"]), "level": float(row["level"]), "eps": float(row["eps_lower_bound"])}


def dp_verdict(record: Mapping[str, Any], bounds: pd.DataFrame) -> DPVerdict | None:
    """The claim against the bounds computed at a delta at or above the claim's; None when there are none.

    ``bounds``: columns ``key`` (the name the verdict gives it), ``delta``, ``level`` and ``eps``. The sentence
    states the lowest confidence of the bounds compared.
    """
    delta = float(record["delta"])
    compared = bounds[(bounds.delta >= delta) & ~bounds.key.isin(SHAPE_ASSUMED)]
    if compared.empty:
        return None
    return check_claim(
        claimed_epsilon(record),
        dict(zip(compared.key, compared.eps, strict=True)),
        delta=delta,
        level=float(compared.level.min()),
    )


def dp_audit_section(
    model: str,
    *,
    folder: str | os.PathLike,
    metrics_path: str | os.PathLike,
    config: Mapping[str, Any],
    one_run_path: str | os.PathLike | None = None,
) -> tuple[str, DPVerdict | None]:
    """HTML of the DP audit of ``model`` (trained into ``folder``) and its verdict (None: no bound to compare)."""
    record = read_dp_record(folder)
    if record is None:
        raise InputError(f"model '{model}': no {RECORD} in {folder}, though it was trained with membership.training.dp")
    metrics_config = config.get("attacks", {}).get("metrics", {})
    attacks_delta, attacks_level = (
        float(metrics_config.get("delta", 1e-5)),
        float(metrics_config.get("confidence", 0.95)),
    )
    metrics = pd.read_csv(metrics_path, sep="\t")
    cp = clopper_pearson_bounds(metrics, delta=attacks_delta, level=attacks_level)
    bounds = cp.assign(key=cp.bound)
    if one_run_path is not None:
        bounds = pd.concat([one_run_bounds(pd.read_csv(one_run_path, sep="\t")), bounds], ignore_index=True)
    verdict = dp_verdict(record, bounds)
    claim = pd.DataFrame(
        [(label, _shown(record[key])) for key, label in CLAIM if key in record], columns=["item", "value"]
    )
    claimed = claimed_epsilon(record)
    shown = pd.DataFrame(
        {
            "bound": bounds.bound,
            "delta": [f"{d:g}" for d in bounds.delta],
            "confidence": [f"{level:.0%}" for level in bounds.level],
            "ε lower bound": bounds.eps.astype(float),
            "compared with the claim": [
                "no: assumes a Gaussian privacy curve"
                if k in SHAPE_ASSUMED
                else ("above it" if e > claimed else "at or below it")
                if d >= record["delta"]
                else "no: δ below the claim's"
                for k, d, e in zip(bounds.key, bounds.delta, bounds.eps, strict=True)
            ],
        }
    )
    if verdict is None:
        text = (
            f"<b>{html.escape(model)}: the DP claim is not checked.</b> No empirical lower bound was computed at a δ "
            f"at or above the claim's ({float(record['delta']):g})."
        )
        css = "unchecked"
    else:
        text = f"<b>{html.escape(model)}:</b> {html.escape(verdict.sentence())}"
        css = "leaks" if verdict.violated else "clean"
    one_run = "" if one_run_path is not None else "<p>No one-run canary bound was computed for this model.</p>"
    parts = [
        f"<h2>DP audit of {html.escape(model)}</h2>",
        f"<div class='verdict {css}'>{text}</div>",
        f"<h3>Claimed guarantee ({RECORD})</h3>" + html_table(claim),
        "<h3>Empirical lower bounds on ε</h3>" + html_table(shown, digits=2) + one_run + NOTE,
    ]
    return "\n".join(parts), verdict


def _shown(value: Any) -> str:
    if value is None:
        return "∞ (the accountant found no finite ε)"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
