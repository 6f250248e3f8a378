"""P5: the sharded data flow at growing genome size: peak memory and time per rule against the number of windows.

A synthetic genome (one contig of random sequence at 41% GC) and a synthetic VCF (SNVs at one per
``--snp-spacing`` bases, allele frequencies drawn from a Beta(0.5, 5)) are written to a temporary folder, with
windows of 1 kb placed on them and a tiny causal LM (random weights, 1 layer): membership comes from two BED
files (first half of the contig = members), so no model is trained and the whole workflow up to the attack
metrics runs for each size, with a constant shard size (``--windows-per-shard``, so the shard count grows with
the genome). Each rule's peak RSS and time come from Snakemake's ``benchmark:`` records
(results/benchmarks/); the growth is the least-squares slope of log(value) against log(windows).

Run: .venv/bin/python benchmarks/bench_scale.py --sizes 2000 10000 [--out benchmarks/scale.json]

With ``--slurm`` each size runs through ``profiles/slurm`` on the CI's one-node SLURM (``.ci/slurm_cluster.sh``:
root, installs the Debian packages when missing; two fake GPUs), with the options of ``.ci/slurm_test.sh`` (no
account, job status from squeue). Besides the per-rule figures it reports the SLURM jobs per rule, their partition
and final state from the cluster's job-completion log (no accounting database, so no sacct), and with
``--compare-local`` runs the same size locally in the same folder and checks that the outputs are byte-identical.

Run: .venv/bin/python benchmarks/bench_scale.py --slurm --compare-local --sizes 10000 (what ``make bench-slurm`` does)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
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
CLUSTER = REPO / ".ci/slurm_cluster.sh"
# As .ci/slurm_test.sh: no accounting database on the CI's cluster, so no account and squeue for the job status.
SLURM_OPTIONS = [
    "--profile",
    str(REPO / "profiles/slurm"),
    "--slurm-no-account",
    "--slurm-status-command",
    "squeue",
    "--slurm-init-seconds-before-status-checks",
    "2",
]
# The same threads in the SLURM and the local run (the profile asks for 8): the numbers must match to the last bit.
SAME_THREADS = ["--set-threads", "score_shard=2"]
# What a SLURM run must reproduce byte for byte: the windows, the map (one shard's features), the reduce, the metrics.
COMPARED = (
    "results/windows/windows.tsv",
    "results/membership.tsv",
    "results/features/m/shard-0.parquet",
    "results/features/m.parquet",
    "results/attacks/m/scores.tsv",
    "results/attacks/m/metrics.tsv",
)


# Extra options of the local runs (``--max-jobs-per-timespan``); the SLURM runs take profiles/slurm's.
LOCAL_OPTIONS: list[str] = []


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


def benchmark_records(workdir: Path) -> dict[str, dict]:
    """Per rule: the number of jobs, their summed and largest time and their largest peak RSS (``benchmark:``)."""
    rules: dict[str, dict] = {}
    for path in sorted((workdir / "results/benchmarks").rglob("*.tsv")):
        rule = path.relative_to(workdir / "results/benchmarks").parts[0].removesuffix(".tsv")
        row = pd.read_csv(path, sep="\t").iloc[0]
        entry = rules.setdefault(rule, {"jobs": 0, "s": 0.0, "cpu_s": 0.0, "max_s": 0.0, "max_rss_mb": 0.0})
        entry["jobs"] += 1
        entry["s"] += float(row["s"])
        # CPU time is far less disturbed than wall time when the machine is shared.
        entry["cpu_s"] += float(pd.to_numeric(row.get("cpu_time"), errors="coerce") or 0)
        entry["max_s"] = max(entry["max_s"], float(row["s"]))
        entry["max_rss_mb"] = max(entry["max_rss_mb"], float(pd.to_numeric(row["max_rss"], errors="coerce") or 0))
    return rules


def _records(text: str) -> dict[str, dict[str, str]]:
    """``key=value`` lines (jobcomp file, ``scontrol show job -o``) by job id."""
    records = {}
    for line in text.splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        if "JobId" in fields:
            records[fields["JobId"]] = fields
    return records


def slurm_jobs(log: str, jobcomp: str, scontrol: str) -> dict:
    """The SLURM jobs a run submitted (from Snakemake's log): partition and final state, GPU requests.

    Every finished job has a line in the cluster's job-completion log (``scontrol`` forgets a job after MinJobAge,
    and there is no slurmdbd for ``sacct``), so a submitted job without a line never finished. The GPU request is
    not in that log: it comes from ``scontrol``, for the jobs it still lists.
    """
    submitted = re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/rule_(\w+?)/", log)
    finished, listed = _records(jobcomp), _records(scontrol)
    by_rule: dict[str, dict] = {}
    for jobid, rule in submitted:
        record = finished.get(jobid, {})
        entry = by_rule.setdefault(rule, {"jobs": 0, "partitions": [], "states": {}, "listed": 0, "gpu": 0})
        entry["jobs"] += 1
        if record.get("Partition") and record["Partition"] not in entry["partitions"]:
            entry["partitions"].append(record["Partition"])
        state = record.get("JobState", "NO RECORD")
        entry["states"][state] = entry["states"].get(state, 0) + 1
        if jobid in listed:
            entry["listed"] += 1
            entry["gpu"] += "gpu" in listed[jobid].get("TresPerJob", "") + listed[jobid].get("TresPerNode", "")
    completed = sum(e["states"].get("COMPLETED", 0) for e in by_rule.values())
    return {"jobs": len(submitted), "completed": completed, "rules": by_rule}


def run_workflow(
    config: Path, workdir: Path, *, cores: int, slurm_state: Path | None = None, same_threads: bool = False
) -> dict:
    """One run of the workflow up to the metrics, locally or through profiles/slurm; its wall time and records."""
    snakemake = str(Path(sys.executable).parent / "snakemake")
    # The target first: --set-threads would take it for one more rule=threads pair.
    cmd = [snakemake, "results/attacks/m/metrics.tsv", "-s", str(REPO / "Snakefile"), "--directory", str(workdir)]
    cmd += ["--configfile", str(config)]
    if slurm_state is None:
        cmd += ["--cores", str(cores), *LOCAL_OPTIONS]
    else:
        cmd += SLURM_OPTIONS
    if same_threads:
        cmd += SAME_THREADS
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    executor = "local" if slurm_state is None else "slurm"
    (workdir.parent / f"{workdir.name}.log").write_text(result.stderr)
    if result.returncode:
        raise SystemExit(f"{executor} workflow run failed in {workdir}:\n{result.stderr[-3000:]}")
    run = {"executor": executor, "wall_s": wall, "rules": benchmark_records(workdir)}
    if slurm_state is not None:
        jobcomp = slurm_state / "log/jobcomp.log"
        scontrol = subprocess.run(["scontrol", "show", "job", "-o"], capture_output=True, text=True, timeout=30)
        run["slurm"] = slurm_jobs(result.stderr, jobcomp.read_text() if jobcomp.exists() else "", scontrol.stdout)
    return run


def identical_outputs(left: Path, right: Path) -> dict[str, bool]:
    """For each compared output: whether the two runs wrote the same bytes."""
    return {
        rel: hashlib.sha256((left / rel).read_bytes()).digest() == hashlib.sha256((right / rel).read_bytes()).digest()
        for rel in COMPARED
    }


def run_size(
    n_windows: int,
    *,
    windows_per_shard: int,
    snp_spacing: int,
    cores: int,
    slurm_state: Path | None = None,
    compare_local: bool = False,
) -> list[dict]:
    """The runs at one size: local, or through SLURM (preceded by a local run in the same folder to compare)."""
    with tempfile.TemporaryDirectory(prefix=f"bench_scale_{n_windows}_") as tmp:
        folder = Path(tmp)
        config = write_config(folder, n_windows, windows_per_shard=windows_per_shard, snp_spacing=snp_spacing)
        tokens = n_windows * 3 * WINDOW
        runs = []
        if slurm_state is None or compare_local:
            runs.append(run_workflow(config, folder / "local", cores=cores, same_threads=slurm_state is not None))
        if slurm_state is not None:
            runs.append(run_workflow(config, folder / "slurm", cores=cores, slurm_state=slurm_state, same_threads=True))
            if compare_local:
                runs[-1]["identical_to_local"] = identical_outputs(folder / "local", folder / "slurm")
        for run in runs:
            run.update(windows=n_windows, tokens_per_model=tokens)
        return runs


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
    cpu = [sum(rule.get("cpu_s", 0.0) for rule in r["rules"].values()) for r in runs]
    if len(sizes) > 1 and all(c > 0 for c in cpu):
        lines.append(
            "| all jobs (CPU time, s) | | " + " | ".join(f"{c:.0f}" for c in cpu) + f" | {slope(sizes, cpu):.2f} | |"
        )
    return "\n".join(lines)


def slurm_summary(runs: list[dict]) -> str:
    """Per SLURM run: the jobs per rule, their partition and final states, and the comparison with the local run."""
    lines = []
    for run in runs:
        jobs = run["slurm"]
        lines.append(
            f"SLURM, {run['windows']} windows: {jobs['jobs']} jobs submitted, {jobs['completed']} COMPLETED, "
            f"wall {run['wall_s']:.0f} s"
        )
        for rule, entry in sorted(jobs["rules"].items()):
            states = ", ".join(f"{k} {v}" for k, v in sorted(entry["states"].items()))
            gpu = f", GPU asked by {entry['gpu']} of the {entry['listed']} still listed" if entry["listed"] else ""
            lines.append(f"  {rule}: {entry['jobs']} job(s) on {'/'.join(entry['partitions']) or '?'}: {states}{gpu}")
        if "identical_to_local" in run:
            same = run["identical_to_local"]
            differ = [rel for rel, ok in same.items() if not ok]
            lines.append(
                f"  outputs: {len(same) - len(differ)} of {len(same)} byte-identical to the local run"
                + (f"; differ: {', '.join(differ)}" if differ else "")
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 10000, 50000, 100000])
    parser.add_argument("--windows-per-shard", type=int, default=1000)
    parser.add_argument("--snp-spacing", type=int, default=300)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--slurm", action="store_true", help="run through profiles/slurm on a one-node SLURM")
    parser.add_argument("--compare-local", action="store_true", help="with --slurm: also run locally and compare")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--max-jobs-per-timespan",
        default=None,
        help="passed to the local runs' Snakemake (e.g. 1000/10s, as profiles/slurm sets; default: Snakemake's 100/1s)",
    )
    args = parser.parse_args()
    if args.max_jobs_per_timespan:
        LOCAL_OPTIONS.extend(["--max-jobs-per-timespan", args.max_jobs_per_timespan])
    if args.compare_local and not args.slurm:
        parser.error("--compare-local compares a SLURM run with a local one: add --slurm")
    state = None
    if args.slurm:
        # slurm_cluster.sh writes /etc/slurm/slurm.conf: a second cluster on this machine would take over the first.
        if subprocess.run(["pgrep", "-x", "slurmctld"], capture_output=True).returncode == 0:
            raise SystemExit("a slurmctld already runs on this machine (.ci/slurm_test.sh?): wait for it to finish")
        state = Path(tempfile.mkdtemp(prefix="bench_scale_slurm."))
        subprocess.run(["bash", str(CLUSTER), "start", str(state)], check=True, timeout=1200)
    runs = []
    try:
        for n in args.sizes:
            at_size = run_size(
                n,
                windows_per_shard=args.windows_per_shard,
                snp_spacing=args.snp_spacing,
                cores=args.cores,
                slurm_state=state,
                compare_local=args.compare_local,
            )
            runs += at_size
            print(", ".join(f"{n} windows {r['executor']}: {r['wall_s']:.0f} s" for r in at_size), flush=True)
            if args.out:
                # Written after every size, so a run stopped before the largest size keeps the others.
                args.out.write_text(json.dumps(runs, indent=1))
    finally:
        if state is not None:
            subprocess.run(["bash", str(CLUSTER), "stop", str(state)], check=False)
    for executor in ("local", "slurm"):
        chosen = [r for r in runs if r["executor"] == executor]
        if chosen:
            print(f"\n{executor}:\n{summary(chosen)}")
    if state is not None:
        print("\n" + slurm_summary([r for r in runs if r["executor"] == "slurm"]))
    if args.out:
        args.out.write_text(json.dumps(runs, indent=1))
    failed = [r for r in runs if "slurm" in r and r["slurm"]["completed"] != r["slurm"]["jobs"]]
    differ = [r for r in runs if not all(r.get("identical_to_local", {}).values())]
    if failed or differ:
        raise SystemExit("a SLURM job did not complete or a SLURM output differs from the local run's (see above)")


if __name__ == "__main__":
    main()
