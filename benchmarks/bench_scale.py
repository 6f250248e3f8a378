"""P5: the sharded data flow at growing genome size: peak memory and time per rule against the number of windows.

A synthetic genome (one contig of random sequence at 41% GC) and a synthetic VCF (SNVs at one per
``--snp-spacing`` bases, allele frequencies drawn from a Beta(0.5, 5)) are written to a temporary folder, with
windows of 1 kb placed on them and a tiny causal LM (random weights, 1 layer): membership comes from two BED
files (first half of the contig = members), so no model is trained and the whole workflow up to the attack
metrics runs for each size, with a constant shard size (``--windows-per-shard``, so the shard count grows with
the genome). Each rule's peak RSS and time come from Snakemake's ``benchmark:`` records
(results/benchmarks/); the growth is the least-squares slope of log(value) against log(windows).

Run: .venv/bin/python benchmarks/bench_scale.py --sizes 2000 10000 [--out benchmarks/scale.json]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow_scripts"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pysam  # noqa: E402
import yaml  # noqa: E402

WINDOW = 1000
# Rules that run once per shard: their memory must not grow with the genome.
PER_SHARD = ("make_neighbors", "score_shard")


def synthetic_genome(folder: Path, n_windows: int, *, snp_spacing: int, seed: int = 0) -> tuple[Path, Path]:
    """A FASTA with room for ``n_windows`` windows and a bgzipped, indexed VCF of SNVs on it."""
    rng = np.random.default_rng(seed)
    length = int(n_windows * WINDOW * 1.25) + 10_000
    gc = rng.random(length) < 0.41
    strand = rng.random(length) < 0.5
    seq = np.where(gc, np.where(strand, ord("G"), ord("C")), np.where(strand, ord("A"), ord("T"))).astype(np.uint8)
    fasta = folder / "genome.fa"
    with open(fasta, "w") as fh:
        fh.write(">s\n")
        text = seq.tobytes().decode()
        for i in range(0, length, 80):
            fh.write(text[i : i + 80] + "\n")
    pysam.faidx(str(fasta))
    positions = np.unique(rng.integers(1, length, size=length // snp_spacing))
    afs = rng.beta(0.5, 5, size=len(positions)).clip(0.001, 0.999)
    vcf = folder / "genome.vcf"
    with open(vcf, "w") as fh:
        fh.write("##fileformat=VCFv4.2\n")
        fh.write(f"##contig=<ID=s,length={length}>\n")
        fh.write('##INFO=<ID=AF,Number=A,Type=Float,Description="Allele frequency">\n')
        fh.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
        for p, af in zip(positions.tolist(), afs.tolist(), strict=True):
            ref = chr(seq[p - 1])
            alt = "ACGT"[("ACGT".index(ref) + 1 + (p % 3)) % 4]
            fh.write(f"s\t{p}\t.\t{ref}\t{alt}\t100\tPASS\tAF={af:.4f}\n")
    pysam.tabix_index(str(vcf), preset="vcf", force=True)
    return fasta, Path(str(vcf) + ".gz")


def write_config(folder: Path, n_windows: int, *, windows_per_shard: int, snp_spacing: int) -> Path:
    from gfm_audit.char_lm import save_char_causal_lm

    fasta, vcf = synthetic_genome(folder, n_windows, snp_spacing=snp_spacing)
    model = save_char_causal_lm(folder / "model", hidden=16, layers=1, heads=2, max_positions=1100, weights_seed=0)
    length = int(n_windows * WINDOW * 1.25) + 10_000
    (folder / "in.bed").write_text(f"s\t0\t{length // 2}\n")
    (folder / "out.bed").write_text(f"s\t{length // 2}\t{length}\n")
    config = {
        "reference": {"fasta": str(fasta), "vcf": str(vcf)},
        "windows": {"length": WINDOW, "n": n_windows, "chromosomes": ["s"], "placement": "fixed"},
        "neighbors": {"probs": [0.1], "per_prob": 1, "control": True},
        "models": {"m": {"path": str(model), "kind": "causal"}},
        "target": "m",
        "membership": {
            "mode": "regions",
            "member_bed": str(folder / "in.bed"),
            "nonmember_bed": str(folder / "out.bed"),
        },
        "scoring": {"shards": max(1, math.ceil(n_windows / windows_per_shard)), "batch_size": 32},
        "attacks": {
            "names": ["loss", "zlib", "min_k", "min_k_plus_plus", "neighborhood"],
            "metrics": {"bootstrap": 100},
        },
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_size(n_windows: int, *, windows_per_shard: int, snp_spacing: int, cores: int) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"bench_scale_{n_windows}_") as tmp:
        folder = Path(tmp)
        config = write_config(folder, n_windows, windows_per_shard=windows_per_shard, snp_spacing=snp_spacing)
        snakemake = str(Path(sys.executable).parent / "snakemake")
        cmd = [snakemake, "-s", str(REPO / "Snakefile"), "--directory", str(folder), "--configfile", str(config)]
        cmd += ["--cores", str(cores), "results/attacks/m/metrics.tsv"]
        start = time.perf_counter()
        result = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if result.returncode:
            raise SystemExit(f"workflow failed at {n_windows} windows:\n{result.stderr[-3000:]}")
        rules = {}
        for path in sorted((folder / "results/benchmarks").rglob("*.tsv")):
            rule = path.relative_to(folder / "results/benchmarks").parts[0].removesuffix(".tsv")
            row = pd.read_csv(path, sep="\t").iloc[0]
            entry = rules.setdefault(rule, {"jobs": 0, "s": 0.0, "max_s": 0.0, "max_rss_mb": 0.0})
            entry["jobs"] += 1
            entry["s"] += float(row["s"])
            entry["max_s"] = max(entry["max_s"], float(row["s"]))
            entry["max_rss_mb"] = max(entry["max_rss_mb"], float(pd.to_numeric(row["max_rss"], errors="coerce") or 0))
        tokens = n_windows * 3 * WINDOW
        return {"windows": n_windows, "tokens_per_model": tokens, "wall_s": wall, "rules": rules}


def slope(x, y) -> float:
    """Least-squares exponent b of y = a x^b."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def summary(runs: list[dict]) -> str:
    sizes = [r["windows"] for r in runs]
    names = sorted({rule for r in runs for rule in r["rules"]})
    lines = [
        "| rule | jobs | "
        + " | ".join(f"{n} windows: time s / max RSS MiB" for n in sizes)
        + " | time exponent | RSS |",
        "|---|---|" + "---|" * len(sizes) + "---|---|",
    ]
    for rule in names:
        cells = [r["rules"].get(rule) for r in runs]
        if any(c is None for c in cells):
            continue
        times = [c["s"] for c in cells]
        rss = [c["max_rss_mb"] for c in cells]
        if rule in PER_SHARD:
            growth = f"{max(rss) / min(rss):.2f}x largest / smallest (per shard)"
        elif len(sizes) > 1:
            per_window = (rss[-1] - rss[0]) * 2**20 / (sizes[-1] - sizes[0])
            growth = f"{per_window:.0f} B per window above {rss[0]:.0f} MiB"
        else:
            growth = ""
        exponent = f"{slope(sizes, times):.2f}" if len(sizes) > 1 else ""
        jobs = "/".join(str(c["jobs"]) for c in cells)
        lines.append(
            f"| {rule} | {jobs} | "
            + " | ".join(f"{t:.1f} / {m:.0f}" for t, m in zip(times, rss, strict=True))
            + f" | {exponent} | {growth} |"
        )
    walls = [r["wall_s"] for r in runs]
    lines.append(
        "| end to end (wall) | | " + " | ".join(f"{w:.0f}" for w in walls) + f" | {slope(sizes, walls):.2f} | |"
        if len(sizes) > 1
        else ""
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 10000, 50000, 100000])
    parser.add_argument("--windows-per-shard", type=int, default=1000)
    parser.add_argument("--snp-spacing", type=int, default=300)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    runs = []
    for n in args.sizes:
        runs.append(
            run_size(n, windows_per_shard=args.windows_per_shard, snp_spacing=args.snp_spacing, cores=args.cores)
        )
        print(f"{n} windows: {runs[-1]['wall_s']:.0f} s", flush=True)
    print(summary(runs))
    if args.out:
        args.out.write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
