"""Rule fimba_comparison: FIMBA beside ART's attacks at matched L2 budgets, for one model."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.robustness.fimba.stages import fimba_comparison_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, fimba_comparison_rule)  # noqa: F821
