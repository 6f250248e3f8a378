"""Rule one_run_audit: the one-run canary bound on the target's epsilon."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.privacy.stages import one_run_audit_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, one_run_audit_rule)  # noqa: F821
