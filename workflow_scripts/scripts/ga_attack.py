"""Rule ga_attack: results/robustness/ga/<classifier>/adversarial.tsv and summary.tsv."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gfm_audit  # noqa: E402,F401  (sets thread/MKL settings before torch loads)
from gfm_audit.robustness.ga.stages import ga_attack_stage  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402


def main(snakemake):
    ga_attack_stage(
        snakemake.wildcards.classifier,
        snakemake.params.spec,
        snakemake.input.classifier,
        snakemake.input.test,
        snakemake.params.non_acgt,
        snakemake.params.attack,
        snakemake.output.adversarial,
        snakemake.output.summary,
    )


run_rule(snakemake, main)  # noqa: F821
