"""Helpers of .ci/slurm_test.sh: write the small config; check the SLURM run against the local one.

  python .ci/slurm_check.py config WORK    writes WORK/config.yaml and a tiny model architecture
  python .ci/slurm_check.py compare WORK   asserts on WORK/slurm.log, the jobcomp record and the outputs
"""

import hashlib
import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow_scripts"))

COMPARED = [
    "results/windows/windows.tsv",
    "results/windows/snps.tsv.gz",
    "results/neighbors/neighbors.tsv",
    "results/membership.tsv",
    "results/scores/tiny.parquet",
    "results/scores/ref_0.parquet",
    "results/scores/ref_1.parquet",
    "results/attacks/tiny/scores.tsv",
    "results/attacks/tiny/metrics.tsv",
]
SHARDS = 2
SCORED = ("tiny", "ref_0", "ref_1")


def write_config(work: Path) -> None:
    from gfm_audit.char_lm import save_char_causal_lm

    arch = save_char_causal_lm(work / "arch", hidden=32, layers=1, heads=2, max_positions=128)
    config = {
        "reference": {"fasta": str(REPO / "resources/demo/z.fa"), "vcf": str(REPO / "resources/demo/z.vcf.gz")},
        "windows": {"length": 64, "n": 16},
        "neighbors": {"probs": [0.5], "per_prob": 1},
        "models": {"tiny": {"path": str(arch), "kind": "causal", "init": "scratch"}},
        "target": "tiny",
        "membership": {"reference_models": 2, "training": {"epochs": 2, "batch_size": 4}},
        "scoring": {"shards": SHARDS, "batch_size": 8},
        "attacks": {"metrics": {"bootstrap": 50}},
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config))


def jobcomp_records(path: Path) -> dict[str, dict[str, str]]:
    records = {}
    for line in path.read_text().splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        records[fields["JobId"]] = fields
    return records


def compare(work: Path) -> None:
    log = (work / "slurm.log").read_text()
    submitted = re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*?rule_(\w+?)/", log)
    assert submitted, "no job was submitted to SLURM"
    records = jobcomp_records(work / "cluster/log/jobcomp.log")
    by_rule: dict[str, list[dict[str, str]]] = {}
    for jobid, rule in submitted:
        assert jobid in records, f"SLURM has no record of job {jobid} ({rule})"
        by_rule.setdefault(rule, []).append(records[jobid])
    score_jobs = by_rule.get("score_shard", [])
    assert len(score_jobs) == SHARDS * len(SCORED), f"{len(score_jobs)} score_shard jobs, expected {SHARDS * 3}"
    for rule, jobs in sorted(by_rule.items()):
        for job in jobs:
            gpu = "gres/gpu" in job.get("Tres", "")
            assert job["JobState"] == "COMPLETED", f"{rule} job {job['JobId']}: {job['JobState']}"
            if rule in ("score_shard", "train_model"):
                assert gpu and job["Partition"] == "gpu", f"{rule} job {job['JobId']} had no GPU: {job}"
            else:
                assert not gpu and job["Partition"] == "cpu", f"{rule} job {job['JobId']} asked for a GPU: {job}"
        print(f"{rule}: {len(jobs)} SLURM job(s), partition {jobs[0]['Partition']}, TRES {jobs[0].get('Tres')}")
    for rel in COMPARED:
        a, b = (hashlib.sha256((work / run / rel).read_bytes()).hexdigest() for run in ("local", "slurm"))
        assert a == b, f"{rel} differs between the local and the SLURM run"
    print(f"SLURM run: {len(submitted)} jobs; {len(COMPARED)} outputs identical to the local run")


if __name__ == "__main__":
    action, work = sys.argv[1], Path(sys.argv[2])
    write_config(work) if action == "config" else compare(work)
