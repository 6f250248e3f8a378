"""Rule study_window_features: a grid point's model's per-window features."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.privacy.study.stages import study_window_features_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, study_window_features_rule)  # noqa: F821
