"""Rule canary_exposure: the exposure of every canary under one model."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.privacy.stages import canary_exposure_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, canary_exposure_rule)  # noqa: F821
