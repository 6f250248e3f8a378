"""Rule token_frequencies: how often each token of a model's tokenizer occurs in the reference FASTA."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.privacy.stages import token_frequencies_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, token_frequencies_rule)  # noqa: F821
