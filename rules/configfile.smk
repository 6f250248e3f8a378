# The workflow's base config file: config/config.yaml (schema defaults, no models) for a user's run, whose own
# --configfile is merged over it; config/demo.yaml for `make demo`. We read it first because Snakemake's own
# reader reports a YAML mistake as "not valid JSON or YAML", naming neither the
# file nor the line. (--configfile files are read by Snakemake before any
# workflow code runs; `python -m gfm_audit.config FILE` names their line.)
import os
import sys
from pathlib import Path

# The folder of this file (rules/), not workflow.basedir: used as a module, that is the outer workflow's folder.
WORKFLOW_ROOT = Path(workflow.current_basedir.get_path_or_uri(secret_free=True)).parent
sys.path.insert(0, str(WORKFLOW_ROOT / "workflow_scripts"))

from gfm_audit.config import read_yaml_config  # noqa: E402
from gfm_audit.errors import InputError  # noqa: E402

# GFM_AUDIT_CONFIG names another base config (`make demo`: config/demo.yaml, `make demo-individuals`:
# config/individuals.yaml); --configfile only extends the base config, it cannot drop its models or robustness
# blocks, which is why the default base config has none.
DEFAULT_CONFIGFILE = os.environ.get("GFM_AUDIT_CONFIG") or "config/config.yaml"

# Used as a module (`module gfm_audit: snakefile: ... config: ...`), the config is the one the outer
# workflow gives; a config/config.yaml in the outer working directory is not ours and is never read.
AS_MODULE = not workflow.modifier.is_main_snakefile()

if AS_MODULE:
    if not config:
        sys.exit(
            "gfm-audit: used as a module, gfm-audit needs its config in the module statement, "
            'e.g. `config: config["gfm_audit"]` (README: Using gfm-audit as a module)'
        )
else:
    # Relative to the working directory, like the directive below: with --directory elsewhere it may be absent.
    if os.path.exists(DEFAULT_CONFIGFILE):
        try:
            read_yaml_config(DEFAULT_CONFIGFILE)
        except InputError as exc:
            sys.exit(f"gfm-audit: {exc}")

    configfile: DEFAULT_CONFIGFILE
