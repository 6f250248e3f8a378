"""Rule plot_dataset_inference: the p-value and power of the dataset inference test against the suspect set size."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.privacy.stages import plot_dataset_inference_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, plot_dataset_inference_rule)  # noqa: F821
