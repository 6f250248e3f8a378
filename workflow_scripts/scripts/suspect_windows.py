"""Rule suspect_windows: see gfm_audit.privacy.suspect_stages (the FASTA suspect set of dataset inference)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.privacy.stages import suspect_windows_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, suspect_windows_rule)  # noqa: F821
