"""Rule adversarial_training: results/robustness/adv_training/<classifier>/progress.tsv and model/."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.robustness.ga.stages import adversarial_training_rule  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

run_rule(snakemake, adversarial_training_rule)  # noqa: F821
