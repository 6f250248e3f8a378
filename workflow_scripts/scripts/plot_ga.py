"""Rule plot_ga: the robustness figures of one classifier."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.robustness.ga.stages import plot_ga_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, plot_ga_rule)  # noqa: F821
