"""Rule merge_scores: concatenate a model's score shards."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.rule_script import run_rule  # noqa: E402
from gfm_audit.privacy.scoring import merge_shards  # noqa: E402


def main(snakemake):
    rows = merge_shards(list(snakemake.input), snakemake.output[0])
    logging.getLogger("gfm_audit.privacy.scoring").info("merged %d shards: %d sequences", len(snakemake.input), rows)


run_rule(snakemake, main)  # noqa: F821
