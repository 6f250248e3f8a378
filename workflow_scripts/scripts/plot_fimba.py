"""Rule plot_fimba: the FIMBA figures of one model."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.robustness.fimba.stages import plot_fimba_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, plot_fimba_rule)  # noqa: F821
