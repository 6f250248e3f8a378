"""Rule fimba_vae: results/robustness/fimba/vae.tsv."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gfm_audit  # noqa: E402,F401  (sets thread/MKL settings before torch loads)
from gfm_audit.robustness.fimba.stages import vae_stage  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402


def main(snakemake):
    models = dict(zip(snakemake.params.names, snakemake.input.models, strict=True))
    vae_stage(snakemake.params.settings, models, snakemake.output[0])


run_rule(snakemake, main)  # noqa: F821
