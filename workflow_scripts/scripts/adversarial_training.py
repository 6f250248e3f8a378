"""Rule adversarial_training: results/robustness/adv_training/<classifier>/progress.tsv and model/."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gfm_audit  # noqa: E402,F401  (sets thread/MKL settings before torch loads)
from gfm_audit.robustness.ga.stages import adversarial_training_stage  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402


def main(snakemake):
    adversarial_training_stage(
        snakemake.wildcards.classifier,
        snakemake.params.spec,
        snakemake.input.classifier,
        snakemake.input.train,
        snakemake.input.test,
        snakemake.params.non_acgt,
        snakemake.params.attack,
        snakemake.params.settings,
        snakemake.output.progress,
        snakemake.output.model,
    )


run_rule(snakemake, main)  # noqa: F821
