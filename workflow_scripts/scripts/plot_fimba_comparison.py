"""Rule plot_fimba_comparison: accuracy against the L2 budget, one line per attack."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.robustness.fimba.stages import plot_fimba_comparison_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, plot_fimba_comparison_rule)  # noqa: F821
