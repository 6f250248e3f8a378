"""Rule merge_neighbors: one neighbors.tsv from the shards' tables."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.privacy.stages import merge_neighbors_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, merge_neighbors_rule)  # noqa: F821
