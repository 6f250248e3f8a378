"""One workflow run of a benchmark: ``config`` as the base config, in ``folder`` (with the repository's resources)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def run_workflow(folder: Path, config: dict, cores: int = 2) -> None:
    """Run the Snakefile in ``folder`` on ``config`` (written there as base.yaml, read through GFM_AUDIT_CONFIG)."""
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "resources").exists():
        (folder / "resources").symlink_to(REPO / "resources")
    path = folder / "base.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    env = {**os.environ, "GFM_AUDIT_CONFIG": str(path)}
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(folder), "--cores", str(cores), "-q"]
    subprocess.run(cmd, env=env, check=True)
