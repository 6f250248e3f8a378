"""Rule plot_token_profile: the per-token profile figure of one audited model."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.privacy.stages import plot_token_profile_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, plot_token_profile_rule)  # noqa: F821
