"""Rule run_attacks: every configured attack on one model."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.privacy.attacks.runner import load_attack_data, run_attacks, write_attack_outputs  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402


def main(snakemake):
    params = snakemake.params
    score_paths = {m: snakemake.input[m] for m in params.scored}
    data = load_attack_data(snakemake.wildcards.model, score_paths, snakemake.input.membership,
                            snakemake.input.windows, params.references, params.attacks)  # fmt: skip
    table, skipped = run_attacks(data, params.attacks["names"])
    write_attack_outputs(table, skipped, snakemake.output.scores, snakemake.output.skipped)


run_rule(snakemake, main)  # noqa: F821
