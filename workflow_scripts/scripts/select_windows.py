"""Rule select_windows: place windows, write windows.tsv / windows.fa / snps.tsv.gz."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.privacy.stages import select_windows_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, select_windows_rule)  # noqa: F821
