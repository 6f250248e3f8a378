"""Rule evaluate_attacks: metrics.tsv and the neighbor threshold table."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.privacy.stages import evaluate_attacks_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, evaluate_attacks_rule)  # noqa: F821
