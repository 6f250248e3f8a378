"""Rule certify_ga: results/robustness/ga/<classifier>/certified.tsv and certified_accuracy.tsv."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.robustness.ga.stages import certify_ga_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, certify_ga_rule)  # noqa: F821
