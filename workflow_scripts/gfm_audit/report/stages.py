"""What the report rule does: ``report_rule(job)``, taking the rule's Snakemake job (as in ``privacy/stages.py``)."""

from __future__ import annotations

import logging
from pathlib import Path

from ..rule_script import Job


def report_rule(job: Job) -> None:
    """results/report/report.html: the privacy part, memorisation, individuals, then the GA and FIMBA sections."""
    from .build import build_report

    params = job.params
    leaks = build_report(
        # Files by input key (layout.input_key), as Snakemake resolved them: a module's prefix included.
        dict(job.input.items()),
        config=params.config,
        models=params.models,
        classifiers=params.classifiers,
        fimba_models=params.fimba_models,
        individuals=params.individuals,
        out_path=job.output[0],
        # Beside the logs, under a module's prefix too; read as they are (not inputs: the report's own comes after).
        benchmarks=Path(job.log[0]).parents[2] / "benchmarks",
    )
    for model, leaked in leaks.items():
        logging.getLogger("gfm_audit.privacy.report").info("%s: %s", model, "leaks" if leaked else "no clear leakage")


def study_report_rule(job: Job) -> None:
    """results/study/report.html: a study's grid, its summary table, the AUC figures and the curve's sentence."""
    from .build import build_study_report

    build_study_report(
        dict(job.input.items()),
        config=job.params.config,
        points=list(job.params.points),
        out_path=job.output[0],
        # results/benchmarks/, as the single audit's report reads it (results/logs/study/report.log's parents[2]).
        benchmarks=Path(job.log[0]).parents[2] / "benchmarks",
    )
    logging.getLogger("gfm_audit.study").info("%d points", len(job.params.points))
