"""Rule plot_certified: results/robustness/ga/<classifier>/certified_accuracy.png."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.robustness.ga.stages import plot_certified_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, plot_certified_rule)  # noqa: F821
