"""Rule study_score_shard: score one shard with one of a grid point's models."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.privacy.study.stages import study_score_shard_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, study_score_shard_rule)  # noqa: F821
