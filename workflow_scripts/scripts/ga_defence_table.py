"""Rule ga_defence_table: results/robustness/defence_table.tsv."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.robustness.ga.stages import ga_defence_table_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, ga_defence_table_rule)  # noqa: F821
