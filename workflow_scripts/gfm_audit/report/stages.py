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
