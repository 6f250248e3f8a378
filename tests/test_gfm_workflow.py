"""The workflow on every native GFM family: one small Snakemake run, membership mode
``regions``, each family's tiny golden checkpoint as a model (``path:`` the fixture folder, nothing else set),
scoring and every attack; and the GA's ``gfm_head`` classifier on HyenaDNA and DNABERT-2."""

import shutil
import subprocess

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import DEMO, REPO
from gfm_audit.gfm import registry
from test_gfm_families import FIXTURES
from test_workflow import SNAKEMAKE, demo_config

pytestmark = pytest.mark.workflow

GA_FAMILIES = ("hyenadna", "dnabert2")


@pytest.fixture(scope="module")
def families_run(tmp_path_factory):
    families = registry.available_families()
    if not families:
        pytest.skip("no native family module in this checkout")
    workdir = tmp_path_factory.mktemp("families")
    member, nonmember = workdir / "member.bed", workdir / "nonmember.bed"
    member.write_text("z\t0\t500000\n")
    nonmember.write_text("z\t500000\t1000000\n")
    config = demo_config(length=96, n=6)  # 96 bp: a multiple of the 6-mer tokenizer's k (NT v2)
    config["neighbors"] = {"probs": [0.5], "per_prob": 1}
    config["models"] = {f: {"path": str(FIXTURES / f), "kind": registry.family_module(f).KINDS[0]} for f in families}
    config["target"] = families[0]
    config["membership"] = {"mode": "regions", "member_bed": str(member), "nonmember_bed": str(nonmember)}
    config["scoring"] = {"shards": 1, "batch_size": 8}
    heads = [f for f in GA_FAMILIES if f in families]
    if heads:
        gue = DEMO / "gue_prom_300_all"
        train, test = workdir / "train.csv", workdir / "test.csv"
        train.write_text("".join((gue / "dev.csv").read_text().splitlines(keepends=True)[:25]))
        test.write_text("".join((gue / "test.csv").read_text().splitlines(keepends=True)[:13]))
        config["robustness"] = {
            "ga": {
                "train": str(train),
                "test": str(test),
                "classifiers": {
                    f"{f}_head": {"kind": "gfm_head", "model": f, "batch_size": 16, "training": {"epochs": 1}}
                    for f in heads
                },
                "attack": {"n_sequences": 2, "population": 4, "generations": 2},
                "adversarial_training": {"iterations": 1, "train_sample": 3, "holdout": 3},
            }
        }
    # Only what the tests read: no figures or report (each rule is a Python process; keeps the run short).
    targets = [f"results/attacks/{f}/metrics.tsv" for f in families]
    for head in heads:
        targets += [
            f"results/robustness/ga/{head}_head/summary.tsv",
            f"results/robustness/adv_training/{head}_head/progress.tsv",
        ]
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores", "2", *targets]
    result = subprocess.run(
        [*cmd, "--configfile", str(workdir / "config.yaml")], capture_output=True, text=True, timeout=1200
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir, families, heads


def test_every_family_is_scored_and_attacked_in_regions_mode(families_run):
    workdir, families, _ = families_run
    membership = pd.read_csv(workdir / "results/membership.tsv", sep="\t")
    assert set(membership.target_member) == {0, 1}
    for family in families:
        # Every score table of the model (merged or per shard, whichever layout the scoring rules write).
        tables = [pq.read_table(p).to_pandas() for p in (workdir / "results").rglob("*.parquet") if family in p.parts]
        tables += [pq.read_table(p).to_pandas() for p in (workdir / "results").rglob(f"{family}.parquet")]
        assert tables, f"no score table for {family}"
        for scores in tables:
            assert scores.loss.notna().all() and set(scores.window_id) <= set(membership.window_id)
            if "n_excluded" in scores:
                assert (scores.n_excluded == 0).all()
        metrics = pd.read_csv(workdir / f"results/attacks/{family}/metrics.tsv", sep="\t")
        assert len(metrics) > 0 and metrics.filter(like="auc").notna().any().any()


# The checkpoint files a user downloads for each of the newest families, without the fixtures' golden numbers.
USER_FILES = {
    "evo2": ("evo2-tiny.pt", "evo2-tiny.yml"),
    "nt_v3": ("config.json", "model.safetensors", "special_tokens_map.json", "tokenizer_config.json", "vocab.json"),
}


@pytest.fixture(scope="module")
def long_context_run(tmp_path_factory):
    """Evo 2 (causal, its .pt and YAML in a folder without config.json) and NT v3 (masked U-Net) from folders of
    their own checkpoint files, as a user keeps them, in membership mode regions."""
    missing = [f for f in USER_FILES if f not in registry.available_families()]
    if missing:
        pytest.skip(f"no {missing[0]} family module in this checkout")
    workdir = tmp_path_factory.mktemp("long_context")
    models = {}
    for family, files in USER_FILES.items():
        folder = workdir / "checkpoints" / family
        folder.mkdir(parents=True)
        for name in files:
            shutil.copy(FIXTURES / family / name, folder / name)
        models[family] = {"path": str(folder), "kind": registry.family_module(family).KINDS[0]}
    member, nonmember = workdir / "member.bed", workdir / "nonmember.bed"
    member.write_text("z\t0\t500000\n")
    nonmember.write_text("z\t500000\t1000000\n")
    config = demo_config(length=96, n=6)
    config["neighbors"] = {"probs": [0.5], "per_prob": 1}
    config["models"] = models
    config["target"] = "evo2"
    config["membership"] = {"mode": "regions", "member_bed": str(member), "nonmember_bed": str(nonmember)}
    config["scoring"] = {"shards": 1, "batch_size": 8}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    targets = [f"results/attacks/{f}/metrics.tsv" for f in USER_FILES]
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores", "2", *targets]
    result = subprocess.run(
        [*cmd, "--configfile", str(workdir / "config.yaml")], capture_output=True, text=True, timeout=1200
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir


def test_evo2_and_nt_v3_folders_are_scored_and_attacked_in_regions_mode(long_context_run):
    workdir = long_context_run
    membership = pd.read_csv(workdir / "results/membership.tsv", sep="\t")
    neighbors = pd.read_csv(workdir / "results/neighbors/shard-0.tsv", sep="\t")
    assert set(membership.target_member) == {0, 1}
    for family in USER_FILES:
        scores = pq.read_table(workdir / f"results/features/{family}/shard-0.parquet").to_pandas()
        # Every window and every neighbor scored once, each over some tokens with a finite loss.
        assert sorted(scores.sequence_id) == sorted([*membership.window_id, *neighbors.neighbor_id])
        assert scores.loss.notna().all() and (scores.n_tokens > 0).all()
        metrics = pd.read_csv(workdir / f"results/attacks/{family}/metrics.tsv", sep="\t")
        assert len(metrics) > 0 and metrics.filter(like="auc").notna().any().any()


def test_gfm_head_classifiers_are_trained_and_attacked(families_run):
    workdir, _, heads = families_run
    if not heads:
        pytest.skip("neither HyenaDNA nor DNABERT-2 is in this checkout")
    for family in heads:
        summary = pd.read_csv(workdir / f"results/robustness/ga/{family}_head/summary.tsv", sep="\t")
        assert len(summary) > 0
        progress = pd.read_csv(workdir / f"results/robustness/adv_training/{family}_head/progress.tsv", sep="\t")
        assert len(progress) > 0
