"""Rule study_evaluate_attacks: a grid point's attack metrics."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.privacy.study.stages import study_evaluate_attacks_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, study_evaluate_attacks_rule)  # noqa: F821
