"""What each FIMBA rule does: ``<rule>_rule(job)`` per rule, taking the rule's Snakemake job
(as in ``privacy/stages.py``): read its inputs and params, call the library, which writes its outputs.

The work itself is in the library, as plain functions the tests call: ``sweep`` (one classifier's run),
``detection``, ``comparison`` and ``poisoning``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...determinism import use_job_threads
from ...rule_script import Job
from .comparison import comparison_stage, comparison_table_stage
from .detection import merge_detection_stage
from .poisoning import vae_stage
from .sweep import fimba_model_stage


def fimba_model_rule(job: Job) -> None:
    """results/robustness/fimba/<model>/curve.tsv, detection.tsv, spectra.npz, model.joblib."""
    use_job_threads(job.threads)
    out = job.output
    fimba_model_stage(
        job.wildcards.fmodel,
        job.params.settings,
        threads=job.threads,
        curve_tsv=out.curve,
        detection_tsv=out.detection,
        spectra_npz=out.spectra,
        model_file=out.model,
    )


def fimba_detection_rule(job: Job) -> None:
    """results/robustness/fimba/detection.tsv: every model's detection table."""
    merge_detection_stage(list(job.input), job.output[0])


def fimba_comparison_rule(job: Job) -> None:
    """results/robustness/fimba/<model>/comparison.tsv."""
    from ...determinism import single_cpu_thread

    with single_cpu_thread():
        comparison_stage(
            job.wildcards.fmodel,
            job.params.settings,
            model_file=job.input.model,
            curve_tsv=job.input.curve,
            out_tsv=job.output[0],
        )


def fimba_comparison_table_rule(job: Job) -> None:
    """results/robustness/fimba/comparison.tsv: every model's comparison rows."""
    comparison_table_stage(list(job.input), job.output[0])


def fimba_vae_rule(job: Job) -> None:
    """results/robustness/fimba/vae.tsv."""
    use_job_threads(job.threads)
    models = dict(zip(job.params.names, job.input.models, strict=True))
    vae_stage(job.params.settings, models, job.output[0])


def plot_fimba_rule(job: Job) -> None:
    """The FIMBA figures of one model."""
    from . import plots  # here, not at the top: matplotlib is in the plotting rule's conda env only

    plots.curve_figure(pd.read_csv(job.input.curve, sep="\t"), job.output.curve)

    with np.load(job.input.spectra) as spectra:
        plots.spectra_figure(dict(spectra), job.wildcards.fmodel, job.output.spectra)


def plot_fimba_comparison_rule(job: Job) -> None:
    """Accuracy against the L2 budget, one line per attack, for one model."""
    from . import plots  # here, not at the top: matplotlib is in the plotting rule's conda env only

    plots.comparison_figure(pd.read_csv(job.input[0], sep="\t"), job.output[0])
