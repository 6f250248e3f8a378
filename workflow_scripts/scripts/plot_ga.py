"""Rule plot_ga: the robustness figures of one classifier."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402
from gfm_audit.robustness.ga import plots  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402


def main(snakemake):
    summary = pd.read_csv(snakemake.input.summary, sep="\t")
    adversarial = pd.read_csv(snakemake.input.adversarial, sep="\t")
    plots.asr_vs_budget_figure(summary, snakemake.output.asr)
    plots.edits_histogram_figure(adversarial, snakemake.output.edits)
    plots.progress_figure(pd.read_csv(snakemake.input.progress, sep="\t"), snakemake.output.progress)


run_rule(snakemake, main)  # noqa: F821
