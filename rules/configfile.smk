# The workflow's default config file. We read it first because Snakemake's own
# reader reports a YAML mistake as "not valid JSON or YAML", naming neither the
# file nor the line. (--configfile files are read by Snakemake before any
# workflow code runs; `python -m gfm_audit.config FILE` names their line.)
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "workflow_scripts"))

from gfm_audit.config import read_yaml_config  # noqa: E402
from gfm_audit.errors import InputError  # noqa: E402

DEFAULT_CONFIGFILE = "config/config.yaml"

# Relative to the working directory, like the directive below: with --directory elsewhere it may be absent.
if os.path.exists(DEFAULT_CONFIGFILE):
    try:
        read_yaml_config(DEFAULT_CONFIGFILE)
    except InputError as exc:
        sys.exit(f"gfm-audit: {exc}")


configfile: DEFAULT_CONFIGFILE
