"""What each robustness-GA rule does: ``<rule>_rule(job)`` per rule, taking the rule's Snakemake job
(as in ``privacy/stages.py``): read its inputs and params, call the library, which writes its outputs.

The work itself is in the library, as plain functions the tests call: ``clean_training``, ``attack``,
``comparison``, ``adversarial_training``, ``certify`` and ``report`` (the attack table).
"""

from __future__ import annotations

from ...determinism import use_job_threads
from ...rule_script import Job
from .adversarial_training import adversarial_training_stage
from .attack import ga_attack_stage
from .certify import certify_stage
from .clean_training import train_classifier_stage
from .comparison import compare_attacks_stage
from .defence_table import defence_table_stage
from .report import attack_table_stage


def train_classifier_rule(job: Job) -> None:
    """results/robustness/classifiers/<classifier>/."""
    use_job_threads(job.threads)
    base = job.input.base
    train_classifier_stage(
        job.wildcards.classifier,
        job.params.spec,
        train_csv=job.input.train,
        test_csv=job.input.test,
        non_acgt=job.params.non_acgt,
        base_folder=base[0] if base else None,
        out_dir=job.output[0],
    )


def ga_attack_rule(job: Job) -> None:
    """results/robustness/ga/<classifier>/adversarial.tsv and summary.tsv."""
    use_job_threads(job.threads)
    ga_attack_stage(
        job.wildcards.classifier,
        job.params.spec,
        folder=job.input.classifier,
        test_csv=job.input.test,
        non_acgt=job.params.non_acgt,
        attack=job.params.attack,
        adversarial_tsv=job.output.adversarial,
        summary_tsv=job.output.summary,
    )


def compare_attacks_rule(job: Job) -> None:
    """results/robustness/ga/<classifier>/comparison.tsv."""
    use_job_threads(job.threads)
    proposal = job.input.proposal
    compare_attacks_stage(
        job.wildcards.classifier,
        job.params.spec,
        folder=job.input.classifier,
        test_csv=job.input.test,
        non_acgt=job.params.non_acgt,
        attack=job.params.attack,
        comparison=job.params.comparison,
        proposal=(job.params.proposal_name, job.params.proposal_block, proposal[0]) if proposal else None,
        comparison_tsv=job.output.comparison,
        summary_tsv=job.input.summary,
    )


def adversarial_training_rule(job: Job) -> None:
    """results/robustness/adv_training/<classifier>/progress.tsv and model/."""
    use_job_threads(job.threads)
    adversarial_training_stage(
        job.wildcards.classifier,
        job.params.spec,
        folder=job.input.classifier,
        train_csv=job.input.train,
        test_csv=job.input.test,
        non_acgt=job.params.non_acgt,
        attack=job.params.attack,
        settings=job.params.settings,
        progress_tsv=job.output.progress,
        cost_tsv=job.output.cost,
        model_dir=job.output.model,
    )


def certify_ga_rule(job: Job) -> None:
    """results/robustness/ga/<classifier>/certified.tsv and certified_accuracy.tsv."""
    use_job_threads(job.threads)
    certify_stage(
        job.wildcards.classifier,
        job.params.spec,
        folder=job.input.classifier,
        test_csv=job.input.test,
        non_acgt=job.params.non_acgt,
        attack=job.params.attack,
        certify_block=job.params.certify,
        certified_tsv=job.output.certified,
        accuracy_tsv=job.output.accuracy,
    )


def ga_attack_table_rule(job: Job) -> None:
    """results/robustness/attack_table.tsv."""
    names = list(job.params.names)
    attack_table_stage(
        dict(zip(names, job.input.comparisons, strict=True)),
        folders=dict(zip(names, job.input.classifiers, strict=True)),
        specs=job.params.specs,
        out_tsv=job.output[0],
    )


def ga_defence_rule(job: Job) -> None:
    """results/robustness/defences/<classifier>/<scheme>/: rule adversarial_training's work with another scheme."""
    adversarial_training_rule(job)


def ga_defence_table_rule(job: Job) -> None:
    """results/robustness/defence_table.tsv."""
    runs = list(zip(job.params.names, job.input.progress, job.input.cost, strict=True))
    defence_table_stage(runs, out_tsv=job.output[0])


def plot_ga_rule(job: Job) -> None:
    """The robustness figures of one classifier."""
    import pandas as pd

    from . import plots  # here, not at the top: matplotlib is in the plotting rule's conda env only

    summary = pd.read_csv(job.input.summary, sep="\t")
    adversarial = pd.read_csv(job.input.adversarial, sep="\t")
    plots.asr_vs_budget_figure(summary, job.output.asr)
    plots.comparison_figure(pd.read_csv(job.input.comparison, sep="\t"), job.output.comparison)
    plots.edits_histogram_figure(adversarial, job.output.edits)
    cost = pd.read_csv(job.input.cost, sep="\t")
    plots.progress_figure(pd.read_csv(job.input.progress, sep="\t"), job.output.progress, cost)


def plot_certified_rule(job: Job) -> None:
    """results/robustness/ga/<classifier>/certified_accuracy.png."""
    import pandas as pd

    from . import plots  # here, not at the top: matplotlib is in the plotting rule's conda env only

    plots.certified_accuracy_figure(pd.read_csv(job.input.accuracy, sep="\t"), job.output[0])
