"""Rule individual_haplotypes: write each individual's haplotype windows."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.privacy.stages import individual_haplotypes_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, individual_haplotypes_rule)  # noqa: F821
