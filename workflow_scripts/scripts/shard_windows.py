"""Rule shard_windows: split windows.fa and snps.tsv.gz into one file each per shard."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.privacy.stages import shard_windows_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, shard_windows_rule)  # noqa: F821
