"""Rule fimba_vae: results/robustness/fimba/vae.tsv."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.robustness.fimba.stages import fimba_vae_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, fimba_vae_rule)  # noqa: F821
