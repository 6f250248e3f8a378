"""Rule ga_defence: results/robustness/defences/<classifier>/<scheme>/progress.tsv, cost.tsv and model/."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.robustness.ga.stages import ga_defence_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, ga_defence_rule)  # noqa: F821
