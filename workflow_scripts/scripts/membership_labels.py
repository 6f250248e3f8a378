"""Rule membership_labels: write results/membership.tsv."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402
from gfm_audit.privacy.membership import finetune_split, region_labels, write_membership  # noqa: E402
from gfm_audit.privacy.reference import read_contigs  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402


def main(snakemake):
    params = snakemake.params.membership
    windows = pd.read_csv(snakemake.input.windows, sep="\t", dtype={"window_id": str, "chrom": str})
    log = logging.getLogger("gfm_audit.privacy.membership")
    if snakemake.params.mode == "finetune":
        table = finetune_split(windows.window_id.tolist(), params["member_fraction"], params["reference_models"],
                               params["seed"])  # fmt: skip
    else:
        contigs = read_contigs(snakemake.input.contigs)
        table, dropped = region_labels(windows, params["member_bed"], params["nonmember_bed"], contigs)
        log.info("%d windows are in neither BED file and are left out", dropped)
    log.info("%d windows: %d members, %d non-members", len(table), table.target_member.sum(),
             (table.target_member == 0).sum())  # fmt: skip
    write_membership(table, snakemake.output[0])


run_rule(snakemake, main)  # noqa: F821
