"""Rule plot_fimba: the FIMBA figures of one model."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from gfm_audit.robustness.fimba import plots  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402


def main(snakemake):
    plots.curve_figure(pd.read_csv(snakemake.input.curve, sep="\t"), snakemake.output.curve)
    with np.load(snakemake.input.spectra) as spectra:
        plots.spectra_figure(dict(spectra), snakemake.wildcards.fmodel, snakemake.output.spectra)


run_rule(snakemake, main)  # noqa: F821
