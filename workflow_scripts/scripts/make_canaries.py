"""Rule make_canaries: write the canaries (inserted and never-inserted) of the target."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.privacy.stages import make_canaries_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, make_canaries_rule)  # noqa: F821
