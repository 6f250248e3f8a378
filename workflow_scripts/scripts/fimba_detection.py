"""Rule fimba_detection: results/robustness/fimba/detection.tsv."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.robustness.fimba.stages import fimba_detection_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, fimba_detection_rule)  # noqa: F821
