"""Rule plot_attacks: the figures of one audited model."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402
from gfm_audit import plots  # noqa: E402
from gfm_audit.privacy.metrics import read_scores  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402


def main(snakemake):
    scores = read_scores(snakemake.input.scores)
    out = snakemake.output
    plots.roc_figure(scores, out.roc)
    plots.histogram_figure(scores, out.histograms)
    plots.neighbor_loss_figure(pd.read_parquet(snakemake.input.target_scores), out.neighbors)
    plots.snp_site_figure(scores, out.snp_sites)


run_rule(snakemake, main)  # noqa: F821
