"""Rule train_model: train the target or one reference model on its member windows."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gfm_audit  # noqa: E402, F401  (sets MKL_CBWR before torch loads)
import torch  # noqa: E402
from gfm_audit.fasta import read_fasta  # noqa: E402
from gfm_audit.models import ModelSpec  # noqa: E402
from gfm_audit.privacy.membership import read_membership  # noqa: E402
from gfm_audit.privacy.training import member_sequences, train_model  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402


def main(snakemake):
    torch.set_num_threads(snakemake.threads)
    block = dict(snakemake.params.spec)
    spec = ModelSpec.from_config(block.pop("name"), block)
    labels = read_membership(snakemake.input.membership).set_index("window_id")[snakemake.params.column].to_dict()
    windows = read_fasta(snakemake.input.windows)
    train_model(spec, member_sequences(windows, labels), snakemake.params.training, snakemake.params.seed,
                snakemake.output[0])  # fmt: skip


run_rule(snakemake, main)  # noqa: F821
