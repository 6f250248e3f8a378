"""Rule make_neighbors: SNP neighbors and controls of every window."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.privacy.neighbors import make_neighbors  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402


def main(snakemake):
    counts = make_neighbors(
        snakemake.input.fasta,
        snakemake.input.snps,
        snakemake.params.neighbors,
        snakemake.output.fasta,
        snakemake.output.tsv,
    )
    log = logging.getLogger("gfm_audit.make_neighbors")
    for key in sorted(counts):
        log.info("%s: %d", key, counts[key])


run_rule(snakemake, main)  # noqa: F821
