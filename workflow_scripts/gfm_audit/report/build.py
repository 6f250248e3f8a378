"""The report's sections in their order, each from the report rule's inputs by key (:func:`.layout.collect`)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..privacy.dataset_inference_report import dataset_inference_section
from ..privacy.dp_report import dp_audit_section
from ..privacy.memorisation.report import memorisation_html
from ..privacy.report import privacy_section
from ..privacy.study.report import study_section
from ..robustness.fimba.report import fimba_section
from ..robustness.ga.report import ga_section
from . import layout
from .page import benchmark_summary, write_page


def build_report(
    inputs: Mapping[str, str],
    *,
    config: Mapping[str, Any],
    models: Sequence[str],
    classifiers: Sequence[str],
    fimba_models: Sequence[str],
    individuals: Sequence[str],
    out_path: str | os.PathLike,
    benchmarks: str | os.PathLike | None = None,
) -> dict[str, bool]:
    """Write the report; return {model: leaks}. A section whose names are empty is left out.

    ``inputs`` holds every file under its key (:func:`.layout.input_key`), as Snakemake resolved it (a module's
    prefix included). Sections: privacy, dataset inference on each model (none unless enabled), the DP audit of
    each DP-trained model (none without), memorisation, individuals, the GA attack, FIMBA, then the run.
    """
    sections, leaks = [], {}
    if models:
        privacy, leaks = _privacy(inputs, config, models)
        sections.append(privacy)
    sections += _dataset_inference(inputs, config)
    sections += _dp_audit(inputs, config)
    sections.append(memorisation_html(inputs))
    # These three join without a line break, as the report has always laid them out.
    sections.append(_individuals(inputs, config, individuals) + _ga(inputs, classifiers) + _fimba(inputs, fimba_models))
    write_page(config, sections, out_path, benchmarks=benchmarks)
    return leaks


def _privacy(
    inputs: Mapping[str, str], config: Mapping[str, Any], models: Sequence[str]
) -> tuple[str, dict[str, bool]]:
    part = layout.collect(inputs, "privacy", models)
    return privacy_section(
        config,
        windows_path=part.shared["windows"],
        neighbors_path=part.shared["neighbors"],
        membership_path=part.shared["membership"],
        models=models,
        metrics_paths=part.tables["metrics"],
        skipped_paths=part.tables["skipped"],
        threshold_paths=part.tables["thresholds"],
        figures=part.figures,
    )


def _dataset_inference(inputs: Mapping[str, str], config: Mapping[str, Any]) -> list[str]:
    """One section per model the rule asked for a result.tsv of (dataset_inference.enabled); none otherwise."""
    names = layout.names_in(inputs, "dataset_inference")
    part = layout.collect(inputs, "dataset_inference", names)
    # In membership.mode individuals a row of the test is a person (privacy/individuals/dataset_inference.py).
    individuals = config.get("membership", {}).get("mode") == "individuals"
    return [
        dataset_inference_section(
            name,
            result_path=part.tables["dataset_inference"][name],
            figure=part.figures[name][0],
            unit="people" if individuals else "windows",
        )
        for name in names
    ]


def _dp_audit(inputs: Mapping[str, str], config: Mapping[str, Any]) -> list[str]:
    """One section per model whose folder the rule asked for (it holds dp.json); none at all without DP training."""
    names = layout.names_in(inputs, "dp_model")
    part = layout.collect(inputs, "dp_audit", names)
    one_run = {name: inputs.get(layout.input_key("one_run_bound", name)) for name in names}
    return [
        dp_audit_section(
            name,
            folder=part.tables["dp_model"][name],
            metrics_path=str(inputs[layout.input_key("metrics", name)]),
            config=config,
            one_run_path=None if one_run[name] is None else str(one_run[name]),
        )[0]
        for name in names
    ]


def _individuals(inputs: Mapping[str, str], config: Mapping[str, Any], names: Sequence[str]) -> str:
    if not names:
        return ""
    # Here, not at the top: the individuals library is only needed when that membership mode is on.
    from ..privacy.individuals.report import report_section

    part = layout.collect(inputs, "individuals", names)
    target = names[0]
    return report_section(
        target,
        config=config,
        counts_path=part.shared["haplotype_counts"],
        membership_path=part.shared["membership_individuals"],
        metrics_path=part.tables["person_metrics"][target],
        curve_path=part.tables["windows_curve"][target],
        genotype_path=part.tables["genotype_summary"][target],
        figures=part.figures[target],
    )


def _ga(inputs: Mapping[str, str], classifiers: Sequence[str]) -> str:
    if not classifiers:
        return ""
    part = layout.collect(inputs, "ga", classifiers)
    certified = layout.names_in(inputs, "certified_accuracy")
    return ga_section(
        classifiers,
        adversarial_paths=part.tables["adversarial"],
        summary_paths=part.tables["summary"],
        progress_paths=part.tables["progress"],
        figures=part.figures,
        comparison_paths=part.tables["ga_comparison"],
        cost_paths=part.tables["training_cost"],
        attack_table_path=part.shared["attack_table"],
        defence_table_path=part.shared.get("defence_table"),
        certified_paths=layout.collect(inputs, "ga_certify", certified).tables["certified_accuracy"],
    )


def _fimba(inputs: Mapping[str, str], models: Sequence[str]) -> str:
    if not models:
        return ""
    part = layout.collect(inputs, "fimba", models)
    return fimba_section(
        models,
        curve_paths=part.tables["curve"],
        detection_path=part.shared["detection"],
        vae_path=part.shared["vae"],
        comparison_path=part.shared["comparison"],
        figures=part.figures,
    )


def build_study_report(
    inputs: Mapping[str, str],
    *,
    config: Mapping[str, Any],
    points: Sequence[Mapping[str, Any]],
    out_path: str | os.PathLike,
    benchmarks: str | os.PathLike | None = None,
) -> None:
    """Write a study's page (results/study/report.html): its section, the run section and the config.

    ``inputs`` holds the study_summary rule's outputs by key: ``table`` (summary.tsv), ``epochs`` and
    ``duplication`` (the AUC figures); ``points`` are ``{"name", "values", "target", "seed", "passes"}`` in grid
    order. With ``benchmarks`` (results/benchmarks/), the study's jobs are summed per point under the section.
    """
    cost = None
    if benchmarks is not None:
        cost = benchmark_summary(Path(benchmarks) / "study").rename(columns={"rule": "point"})
        cost = cost[cost.point.isin([p["name"] for p in points])]
    section = study_section(
        inputs["table"],
        points=points,
        figures={key: inputs[key] for key in ("epochs", "duplication")},
        cost=cost,
    )
    write_page(config, [section], out_path, benchmarks=benchmarks)
