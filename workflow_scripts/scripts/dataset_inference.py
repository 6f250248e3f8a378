"""Rule dataset_inference: was the suspect set trained on, and what share of it."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.privacy.stages import dataset_inference_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, dataset_inference_rule)  # noqa: F821
