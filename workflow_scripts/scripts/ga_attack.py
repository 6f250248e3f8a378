"""Rule ga_attack: results/robustness/ga/<classifier>/adversarial.tsv and summary.tsv."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.robustness.ga.stages import ga_attack_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, ga_attack_rule)  # noqa: F821
