"""Rule select_windows: place windows, write windows.tsv / windows.fa / snps.tsv.gz."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.rule_script import run_rule  # noqa: E402
from gfm_audit.privacy.windows import select_windows  # noqa: E402


def main(snakemake):
    counts = select_windows(
        snakemake.input.fasta,
        snakemake.input.vcf,
        snakemake.input.contigs,
        snakemake.params.windows,
        snakemake.output.tsv,
        snakemake.output.fasta,
        snakemake.output.snps,
        fasta_name=snakemake.params.fasta_name,
        vcf_name=snakemake.params.vcf_name,
    )
    log = logging.getLogger("gfm_audit.select_windows")
    for key in sorted(counts):
        log.info("%s: %d", key, counts[key])


run_rule(snakemake, main)  # noqa: F821
