"""Helpers of .ci/slurm_test.sh: write the small config; check the SLURM run against the local one.

python .ci/slurm_check.py config WORK    writes WORK/config.yaml and a tiny model architecture
python .ci/slurm_check.py targets       prints the local run's targets: what makes the outputs compared
python .ci/slurm_check.py compare WORK JOBID   asserts on WORK/slurm.log and WORK/rerun.log (a run whose scoring
                                            job JOBID was cancelled, then its re-run), the SLURM job records and
                                            the outputs
and of .ci/slurm_study_test.sh (study mode, rules/study.smk):
python .ci/slurm_check.py study-config WORK    writes WORK/config.yaml: a two-point study of a tiny model
python .ci/slurm_check.py study-compare WORK   asserts on the study's SLURM jobs and its summary against the local run
"""

import hashlib
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow_scripts"))

# Byte for byte: a SLURM job must give the same bits as the same job run locally. The trained
# models are compared too, so that a difference can be placed in training or in scoring.
COMPARED = [
    "results/windows/windows.tsv",
    "results/windows/snps.tsv.gz",
    "results/neighbors/neighbors.tsv",
    "results/membership.tsv",
    "results/models/tiny/model.safetensors",
    "results/models/ref_0/model.safetensors",
    "results/models/ref_1/model.safetensors",
    "results/windows/shard-0.fa",
    "results/windows/shard-1.snps.tsv.gz",
    "results/neighbors/shard-1.fa",
    # Per-sequence features of each shard (the map) and the per-window tables the attacks read (the reduce).
    "results/features/tiny/shard-0.parquet",
    "results/features/tiny/shard-1.parquet",
    "results/features/ref_1/shard-0.parquet",
    "results/features/tiny.parquet",
    "results/features/ref_0.parquet",
    "results/features/ref_1.parquet",
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
        # The robustness rules too, tiny: they must run as CPU jobs (the CNN and FIMBA ask for no GPU).
        "robustness": {
            "ga": {
                "train": str(_head(REPO / "resources/demo/gue_prom_300_all/dev.csv", work / "ga_train.csv", 600)),
                "test": str(_head(REPO / "resources/demo/gue_prom_300_all/test.csv", work / "ga_test.csv", 100)),
                "classifiers": {"cnn": {"kind": "cnn", "channels": 8, "training": {"epochs": 1}}},
                "attack": {"n_sequences": 10, "population": 6, "generations": 3},
                "adversarial_training": {"iterations": 1, "train_sample": 10, "holdout": 10},
            },
            "fimba": {
                "data": str(REPO / "resources/demo/pbmc68k_reduced/pbmc68k_reduced.h5ad"),
                "label": "bulk_labels",
                "positive": ["Dendritic"],
                "models": ["mlp"],
                "top_m": [5],
                "shap_samples": 2,
                "shap_background": 3,
                "vae": {"epochs": 2, "n_samples": 10},
                "comparison": {"samples": 5, "zoo": {"max_iter": 3}, "hopskipjump": {"max_iter": 1, "max_eval": 20}},
            },
        },
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config))


def local_targets(compared: list[str] = COMPARED) -> list[str]:
    """The Snakemake targets that make ``compared``: a model's files come with its folder, the rule's output."""
    return list(dict.fromkeys(str(Path(p).parent) if p.startswith("results/models/") else p for p in compared))


def _head(src: Path, dst: Path, rows: int) -> Path:
    """The header and the first ``rows`` data rows of a CSV."""
    dst.write_text("".join(src.read_text().splitlines(keepends=True)[: rows + 1]))
    return dst


def slurm_records(path: Path) -> dict[str, dict[str, str]]:
    """``scontrol show job -o`` lines (finished jobs stay listed for MinJobAge) by job id."""
    records = {}
    for line in path.read_text().splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        if "JobId" in fields:
            records[fields["JobId"]] = fields
    return records


def jobs_by_rule(work: Path, logs: tuple[str, ...] = ("slurm.log",)) -> dict[str, list[dict[str, str]]]:
    """The SLURM record of every job the runs logged in WORK/``logs`` submitted, by the rule it ran."""
    log = "".join((work / name).read_text() for name in logs)
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", log)
    assert submitted, "no job was submitted to SLURM"
    records = slurm_records(work / "jobs.txt")
    by_rule: dict[str, list[dict[str, str]]] = {}
    for jobid in submitted:
        assert jobid in records, f"SLURM has no record of job {jobid}"
        rule = re.match(r"rule_(\w+?)(_wildcards_|$)", records[jobid]["Comment"]).group(1)
        by_rule.setdefault(rule, []).append(records[jobid])
    return by_rule


def check_gpu_requests(by_rule: dict[str, list[dict[str, str]]], gpu_rules: tuple[str, ...]) -> None:
    """Every job completed; the jobs of ``gpu_rules`` asked for a GPU on the gpu partition, the others for none."""
    for rule, jobs in sorted(by_rule.items()):
        for job in jobs:
            gpu_request = job.get("TresPerJob", "") + job.get("TresPerNode", "")
            assert job["JobState"] == "COMPLETED", f"{rule} job {job['JobId']}: {job['JobState']}"
            if rule in gpu_rules:
                assert "gpu" in gpu_request and job["Partition"] == "gpu", f"{rule} job {job['JobId']}: {job}"
            else:
                assert "gpu" not in gpu_request and job["Partition"] == "cpu", f"{rule} asked for a GPU: {job}"
        print(
            f"{rule}: {len(jobs)} SLURM job(s) on partition {jobs[0]['Partition']}, "
            f"GPU request: {jobs[0].get('TresPerJob') or jobs[0].get('TresPerNode') or 'none'}"
        )
    print(f"SLURM run: {sum(len(jobs) for jobs in by_rule.values())} jobs")


def check_one_job_each(by_rule: dict[str, list[dict[str, str]]], rule: str, expected: int) -> None:
    """``expected`` jobs of ``rule``, each its own SLURM job (one per model and shard, say)."""
    jobs = by_rule.get(rule, [])
    assert len(jobs) == expected, f"{len(jobs)} {rule} jobs, expected {expected}"
    assert len({j["Comment"] for j in jobs}) == len(jobs), f"two {rule} jobs shared a SLURM job"


def compare(work: Path, cancelled: str) -> None:
    """The run with job ``cancelled`` killed, then its re-run: that job is the one CANCELLED, a scoring job on a
    GPU; every other job completed, one per shard, and the outputs equal the local run's."""
    by_rule = jobs_by_rule(work, ("slurm.log", "rerun.log"))
    killed = [(rule, job) for rule, jobs in by_rule.items() for job in jobs if job["JobState"] != "COMPLETED"]
    assert [(rule, job["JobId"], job["JobState"]) for rule, job in killed] == [("score_shard", cancelled, "CANCELLED")]
    assert "gpu" in killed[0][1].get("TresPerJob", "") + killed[0][1].get("TresPerNode", ""), killed[0][1]
    completed = {rule: [j for j in jobs if j["JobId"] != cancelled] for rule, jobs in by_rule.items()}
    check_one_job_each(completed, "score_shard", SHARDS * len(SCORED))
    check_gpu_requests(completed, ("score_shard", "train_model", "canary_exposure", "extraction"))
    same_outputs(work, "slurm")


def _differences(left: Path, right: Path) -> str:
    """What differs between two tables of the same file, for the failure message."""
    if left.suffix not in (".parquet", ".tsv"):
        return "binary content differs"
    a, b = (pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p, sep="\t") for p in (left, right))
    if list(a.columns) != list(b.columns) or len(a) != len(b):
        return f"shape {a.shape} vs {b.shape}"
    out = []
    for c in a.columns:
        x, y = a[c], b[c]
        if x.dtype == object and len(x) and isinstance(x.iloc[0], np.ndarray):
            x, y = pd.Series(np.concatenate(list(x))), pd.Series(np.concatenate(list(y)))
        if x.equals(y):
            continue
        if pd.api.types.is_float_dtype(x):
            diff = np.abs(x.to_numpy(float) - y.to_numpy(float))
            out.append(f"{c}: {int((diff > 0).sum())} values differ, max {np.nanmax(diff):.3g}")
        else:
            out.append(f"{c}: {int((x != y).sum())} values differ")
    return "; ".join(out) or "same values, different bytes"


def same_outputs(work: Path, run: str, *, compared: list[str] = COMPARED) -> None:
    """Every compared output of ``run`` is byte-identical to the local run's."""
    bad = []
    for rel in compared:
        paths = [work / r / rel for r in ("local", run)]
        a, b = (hashlib.sha256(p.read_bytes()).hexdigest() for p in paths)
        if a != b:
            bad.append(f"{rel} ({_differences(*paths)})")
    assert not bad, f"{run} differs from the local run: " + " | ".join(bad)
    print(f"{run}: {len(compared)} outputs byte-identical to the local run")


# Study mode: two points (1 and 2 epochs), each a target and one reference model, scored in STUDY_SHARDS shards.
STUDY_POINTS = ("epochs-1", "epochs-2")
STUDY_TRAINED = ("lm", "ref_0")
STUDY_SHARDS = 2
# The summary is what the study reports; the weights and metrics place a difference in training or scoring.
STUDY_COMPARED = [
    "results/study/summary.tsv",
    *(f"results/study/{p}/models/{m}/model.safetensors" for p in STUDY_POINTS for m in STUDY_TRAINED),
    *(f"results/study/{p}/attacks/lm/metrics.tsv" for p in STUDY_POINTS),
]


def write_study_config(work: Path) -> None:
    """tests/test_study.py's tiny study, with a smaller model and fewer windows, over the grid epochs [1, 2]."""
    sys.path.insert(0, str(REPO / "tests"))
    from gfm_audit.char_lm import save_char_causal_lm
    from test_study import tiny_study

    arch = save_char_causal_lm(work / "arch", hidden=32, layers=1, heads=2, max_positions=128)
    config = tiny_study({"epochs": [1, 2]})
    config["models"]["lm"]["path"] = str(arch)
    config["windows"]["n"] = 16
    config["scoring"]["shards"] = STUDY_SHARDS
    (work / "config.yaml").write_text(yaml.safe_dump(config))


def study_compare(work: Path) -> None:
    by_rule = jobs_by_rule(work)
    # One GPU job per point's training and per point, model and shard (the profile's promise in docs/study.md).
    check_one_job_each(by_rule, "study_train_model", len(STUDY_POINTS) * len(STUDY_TRAINED))
    check_one_job_each(by_rule, "study_score_shard", len(STUDY_POINTS) * len(STUDY_TRAINED) * STUDY_SHARDS)
    check_gpu_requests(by_rule, ("study_train_model", "study_score_shard"))
    same_outputs(work, "slurm", compared=STUDY_COMPARED)


if __name__ == "__main__":
    action = sys.argv[1]
    work = Path(sys.argv[2]) if len(sys.argv) > 2 else None
    if action == "config":
        write_config(work)
    elif action == "compare":
        compare(work, sys.argv[3])
    elif action == "targets":
        print("\n".join(local_targets()))
    elif action == "study-config":
        write_study_config(work)
    elif action == "study-compare":
        study_compare(work)
    else:
        raise SystemExit(f"unknown action {action!r}")
