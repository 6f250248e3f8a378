"""Rule individuals_dataset_inference: were the listed individuals trained on, and what share of them."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.privacy.stages import individuals_dataset_inference_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, individuals_dataset_inference_rule)  # noqa: F821
