"""Rule individual_ramia: RaMIA with people's haplotypes as range points."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.privacy.stages import individual_ramia_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, individual_ramia_rule)  # noqa: F821
