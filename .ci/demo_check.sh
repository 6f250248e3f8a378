#!/usr/bin/env bash
# Scientific regression check: the demo's privacy and memorisation audit (config/demo.yaml without its robustness
# block, which `make demo` adds and which would double the time) in a fresh folder, then its headline figures
# against the committed docs/demo-results.tsv, each within the tolerance written beside it
# (workflow_scripts/gfm_audit/headline.py says why each is what it is).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=${DEMO_CHECK_DIR:-$(mktemp -d)}
mkdir -p "$work"
ln -sfn "$repo/resources" "$work/resources"
.venv/bin/python - "$work/demo_check.yaml" <<'PY'
import sys

import yaml

config = yaml.safe_load(open("config/demo.yaml"))
config.pop("robustness")
yaml.safe_dump(config, open(sys.argv[1], "w"), sort_keys=False)
PY
GFM_AUDIT_CONFIG="$work/demo_check.yaml" .venv/bin/snakemake -s "$repo/Snakefile" --directory "$work" --cores 2 -q
.venv/bin/python -m gfm_audit.headline "$work/results" --check docs/demo-results.tsv
