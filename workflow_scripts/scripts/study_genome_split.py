"""Rule study_genome_split: a grid point's held-out blocks (mode genome)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.privacy.study.stages import study_genome_split_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, study_genome_split_rule)  # noqa: F821
