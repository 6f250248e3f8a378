"""P3: re-runs. A no-op re-run of the whole demo, and what changing an attack parameter re-runs.

Runs the demo in the repository first if its results are missing (about 6 minutes).
Run: .venv/bin/python benchmarks/bench_rerun.py
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def snakemake(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GFM_AUDIT_CONFIG": "config/demo.yaml"}  # the demo, as `make demo` runs it
    return subprocess.run(
        [SNAKEMAKE, "--cores", "2", *args], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )


def main() -> None:
    snakemake("-q")  # make sure the demo is complete
    times = []
    for _ in range(3):
        start = time.perf_counter()
        result = snakemake()
        times.append(time.perf_counter() - start)
        assert "Nothing to be done" in result.stdout + result.stderr
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as extra:
        extra.write("attacks:\n  min_k:\n    k: 0.3\n")
        extra.flush()
        plan = snakemake("--dry-run", "--configfile", "config/demo.yaml", extra.name)
    jobs = re.findall(r"^rule (\w+):", plan.stdout, re.M)
    print("| measurement | figure | target |\n|---|---|---|")
    print(f"| no-op re-run of the whole demo (best of 3) | {min(times):.2f} s | < 5 s |")
    print(f"| jobs after changing attacks.min_k.k | {', '.join(sorted(set(jobs)))} | no scoring |")
    start = time.perf_counter()
    subprocess.run([SNAKEMAKE, "--version"], capture_output=True, check=True)
    print(f"| `snakemake --version` alone (start-up floor) | {time.perf_counter() - start:.2f} s | |")


if __name__ == "__main__":
    main()
