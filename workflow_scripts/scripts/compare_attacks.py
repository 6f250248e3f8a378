"""Rule compare_attacks: results/robustness/ga/<classifier>/comparison.tsv."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.robustness.ga.stages import compare_attacks_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, compare_attacks_rule)  # noqa: F821
