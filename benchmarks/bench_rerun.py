"""P3: re-runs. A no-op re-run of the whole demo, and what changing an attack parameter re-runs.

Runs the demo in the repository first if its results are missing (about 6 minutes).
Run: .venv/bin/python benchmarks/bench_rerun.py
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def snakemake(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SNAKEMAKE, "--cores", "2", *args], cwd=REPO, capture_output=True, text=True, check=True)


def main() -> None:
    snakemake("-q")  # make sure the demo is complete
    times = []
    for _ in range(3):
        start = time.perf_counter()
        result = snakemake()
        times.append(time.perf_counter() - start)
        assert "Nothing to be done" in result.stdout + result.stderr
    plan = snakemake("--dry-run", "--config", "attacks={'min_k': {'k': 0.3}}")
    jobs = re.findall(r"^rule (\w+):", plan.stdout, re.M)
    print("| measurement | figure | target |\n|---|---|---|")
    print(f"| no-op re-run of the whole demo (best of 3) | {min(times):.2f} s | < 5 s |")
    print(f"| jobs after changing attacks.min_k.k | {', '.join(sorted(set(jobs)))} | no scoring |")


if __name__ == "__main__":
    main()
