"""Rule train_classifier: results/robustness/classifiers/<classifier>/."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gfm_audit  # noqa: E402,F401  (sets thread/MKL settings before torch loads)
from gfm_audit.robustness.ga.stages import train_classifier_stage  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402


def main(snakemake):
    base = snakemake.input.base
    train_classifier_stage(
        snakemake.wildcards.classifier,
        snakemake.params.spec,
        snakemake.input.train,
        snakemake.input.test,
        snakemake.params.non_acgt,
        base[0] if base else None,
        snakemake.output[0],
    )


run_rule(snakemake, main)  # noqa: F821
