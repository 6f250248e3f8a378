"""Rule score_shard: score one shard of windows and neighbors with one model."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gfm_audit  # noqa: E402, F401  (sets MKL_CBWR before torch loads)
import torch  # noqa: E402
from gfm_audit.models import ModelSpec  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402
from gfm_audit.privacy.scoring import score_shard  # noqa: E402


def main(snakemake):
    torch.set_num_threads(snakemake.threads)
    spec = ModelSpec.from_config(snakemake.wildcards.model, snakemake.params.spec)
    scoring = snakemake.params.scoring
    score_shard(
        spec,
        snakemake.input.windows,
        snakemake.input.neighbors_fasta,
        snakemake.input.neighbors_tsv,
        snakemake.input.snps,
        int(snakemake.wildcards.shard),
        scoring["shards"],
        scoring["batch_size"],
        scoring["seed"],
        snakemake.output[0],
    )


run_rule(snakemake, main)  # noqa: F821
