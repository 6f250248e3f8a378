"""Whether two finished runs wrote the same files: the check that a refactor changed no result.

Compares every file under the two runs' ``results/`` byte for byte, except what records how the run went rather
than what it found: ``logs/`` and ``benchmarks/`` (times, hosts), ``report/report.html`` (its run section holds
the jobs' times) and the per-job temporaries of Snakemake. Tables with a wall-clock column (``seconds``,
``ttg_seconds``) are compared with that column left out. Prints one line per differing or missing file and a
count; exit status 1 when any differ.

Run: .venv/bin/python benchmarks/same_tables.py BEFORE AFTER   (each a run folder or its results/ folder)
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import pandas as pd

SKIPPED_DIRS = ("logs", "benchmarks")
SKIPPED_FILES = ("report/report.html",)
WALL_CLOCK = ("seconds", "ttg_seconds")


def results_dir(run: Path) -> Path:
    return run / "results" if (run / "results").is_dir() else run


def files(results: Path) -> set[str]:
    """Relative paths of the files a comparison covers."""
    found = set()
    for path in results.rglob("*"):
        rel = path.relative_to(results).as_posix()
        if path.is_file() and rel.split("/")[0] not in SKIPPED_DIRS and rel not in SKIPPED_FILES:
            found.add(rel)
    return found


def without_wall_clock(path: Path) -> bytes:
    """The file's bytes, tables without their wall-clock columns."""
    data = path.read_bytes()
    if path.suffix != ".tsv":
        return data
    header = data.split(b"\n", 1)[0].decode(errors="replace").split("\t")
    if not set(header) & set(WALL_CLOCK):
        return data
    table = pd.read_csv(io.BytesIO(data), sep="\t", dtype=str, keep_default_na=False)
    return table.drop(columns=[c for c in WALL_CLOCK if c in table.columns]).to_csv(sep="\t", index=False).encode()


def compare(before: Path, after: Path) -> list[str]:
    """One line per file that is missing from one run or differs."""
    a, b = files(before), files(after)
    problems = [f"only in {before}: {p}" for p in sorted(a - b)] + [f"only in {after}: {p}" for p in sorted(b - a)]
    for rel in sorted(a & b):
        if without_wall_clock(before / rel) != without_wall_clock(after / rel):
            problems.append(f"differs: {rel}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    before, after = results_dir(args.before), results_dir(args.after)
    problems = compare(before, after)
    for line in problems:
        print(line)
    n = len(files(before) & files(after))
    print(f"same_tables: {n - sum(p.startswith('differs') for p in problems)} of {n} files identical")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
