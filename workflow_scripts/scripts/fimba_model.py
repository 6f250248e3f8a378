"""Rule fimba_model: results/robustness/fimba/<model>/curve.tsv, detection.tsv, spectra.npz, model.joblib."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gfm_audit  # noqa: E402,F401  (sets thread/MKL settings before torch loads)
from gfm_audit.robustness.fimba.stages import fimba_model_stage  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402


def main(snakemake):
    out = snakemake.output
    fimba_model_stage(snakemake.wildcards.fmodel, snakemake.params.settings, snakemake.threads, out.curve,
                      out.detection, out.spectra, out.model)  # fmt: skip


run_rule(snakemake, main)  # noqa: F821
