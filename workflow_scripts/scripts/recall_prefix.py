"""Rule recall_prefix: write results/attacks/recall_prefix.fa."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.privacy.stages import recall_prefix_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, recall_prefix_rule)  # noqa: F821
