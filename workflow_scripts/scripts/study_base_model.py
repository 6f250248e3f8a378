"""Rule study_base_model: a point's target folder with its config.json size keys."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.privacy.study.stages import study_base_model_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, study_base_model_rule)  # noqa: F821
