# Helpers shared by every stage: config validation and staged-file names.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "workflow_scripts"))

from gfm_audit.config import validate_config  # noqa: E402
from gfm_audit.errors import InputError  # noqa: E402
from gfm_audit.reference import staged_layout  # noqa: E402

try:
    validate_config(config, source="the workflow config (config/config.yaml and --config/--configfile)")
except InputError as exc:
    # A one-line message, not a WorkflowError with Snakemake's traceback lines.
    sys.exit(f"gfm-audit: {exc}")

STAGED = staged_layout(config["reference"]["fasta"], config["reference"]["vcf"], "results/reference")


def staged_reference():
    """Outputs of prepare_reference: the staged FASTA, VCF, their indexes and contigs.tsv."""
    return STAGED.outputs()


def windows_bed():
    """The BED file, as an input, only when windows come from one."""
    windows = config["windows"]
    return [windows["bed"]] if windows["placement"] == "bed" else []
