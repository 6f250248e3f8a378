"""Rule prepare_reference: stage FASTA + VCF with indexes, write contigs.tsv."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.privacy.reference import StagedReference, prepare_reference  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402


def main(snakemake):
    out = snakemake.output
    layout = StagedReference(
        fasta=Path(out.fasta),
        fai=Path(out.fai),
        gzi=Path(out.gzi) if "gzi" in out.keys() else None,
        vcf=Path(out.vcf),
        vcf_index=Path(out.vcf_index),
        contigs=Path(out.contigs),
    )
    prepare_reference(snakemake.input.fasta, snakemake.input.vcf, layout)


run_rule(snakemake, main)  # noqa: F821
