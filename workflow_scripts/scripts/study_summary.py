"""Rule study_summary: results/study/summary.tsv and the AUC figures."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.privacy.study.stages import study_summary_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, study_summary_rule)  # noqa: F821
