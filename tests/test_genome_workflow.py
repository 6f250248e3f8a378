"""A real Snakemake run of a membership.mode genome audit on a tiny from-scratch model and 40 kb of the demo."""

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, demo_sequence, demo_vcf_lines, write_fasta, write_vcf
from test_workflow import SNAKEMAKE, snakemake

pytestmark = pytest.mark.workflow

LENGTH = 40_000


def genome_config(workdir: Path) -> dict:
    from gfm_audit.char_lm import save_char_causal_lm

    header, records = demo_vcf_lines()
    fasta = write_fasta(workdir / "ref.fa", {"z": demo_sequence(0, LENGTH)})
    vcf = write_vcf(workdir / "ref.vcf.gz", header, [r for r in records if int(r.split("\t")[1]) <= LENGTH])
    arch = save_char_causal_lm(workdir / "arch", hidden=16, layers=1, heads=2, max_positions=160)
    return {
        "reference": {"fasta": str(fasta), "vcf": str(vcf)},
        # Random placement: some windows fall across a block edge (evenly spaced ones would all miss the grid).
        "windows": {"length": 64, "n": 120, "placement": "random", "seed": 1},
        "neighbors": {"probs": [0.5], "per_prob": 1},
        "models": {"tiny": {"path": str(arch), "kind": "causal", "init": "scratch"}},
        "target": "tiny",
        "membership": {
            "mode": "genome",
            "reference_models": 2,
            "seed": 3,
            "genome": {
                "heldout_fraction": 0.25,
                "block_length": 2000,
                "chunk_length": 128,
                "duplication": 2,
                "match_bins": 2,
            },
            "training": {"epochs": 1, "batch_size": 16},
        },
        "attacks": {"names": ["loss", "zlib", "lira", "rmia"], "metrics": {"bootstrap": 20}},
        "scoring": {"shards": 1, "batch_size": 32},
    }


@pytest.fixture(scope="module")
def genome_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("genome")
    config = genome_config(workdir)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    # The attack metrics only: the report adds jobs (and minutes) that no genome-mode code touches.
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores", "2"]
    cmd += ["results/attacks/tiny/metrics.tsv", "--configfile", str(workdir / "config.yaml")]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, config


def test_genome_mode_labels_windows_by_the_targets_held_out_blocks(genome_run):
    workdir, _ = genome_run
    heldout = pd.read_csv(workdir / "results/genome/heldout.tsv", sep="\t")
    assert list(heldout.model.unique()) == ["tiny", "ref_0", "ref_1"]
    for _, rows in heldout.groupby("model"):
        held = int((rows.end - rows.start).sum())
        assert 0.25 * LENGTH <= held < 0.25 * LENGTH + 2000
    membership = pd.read_csv(workdir / "results/membership.tsv", sep="\t", dtype={"window_id": str})
    assert list(membership.columns) == ["window_id", "target_member", "ref_0_member", "ref_1_member"]
    windows = pd.read_csv(workdir / "results/windows/windows.tsv", sep="\t", dtype={"window_id": str})
    labelled = membership.merge(windows, on="window_id")
    for column, model in (("target_member", "tiny"), ("ref_0_member", "ref_0"), ("ref_1_member", "ref_1")):
        mask = np.zeros(LENGTH, dtype=bool)
        for row in heldout[heldout.model == model].itertuples():
            mask[row.start : row.end] = True
        for w in labelled.itertuples():
            inside = mask[w.start : w.end]
            assert inside.all() or not inside.any()  # no labelled window straddles any model's boundary
            assert getattr(w, column) == int(not inside.any())
    # Matched: as many members as non-members.
    assert membership.target_member.sum() * 2 == len(membership) and len(membership) >= 8
    log = (workdir / "results/logs/membership_labels.log").read_text()
    assert "straddle a training/held-out boundary" in log and "GC bin" in log


def test_genome_mode_trains_each_model_on_every_training_base_epochs_x_duplication_times(genome_run):
    workdir, _ = genome_run
    heldout = pd.read_csv(workdir / "results/genome/heldout.tsv", sep="\t")
    for model in ("tiny", "ref_0", "ref_1"):
        rows = heldout[heldout.model == model]
        training_bases = LENGTH - int((rows.end - rows.start).sum())
        log = (workdir / f"results/logs/train_model/{model}.log").read_text()
        assert f"over {training_bases} training bases, each 2 times an epoch, 1 epochs" in log
        assert f", {2 * training_bases} bases (" in log
        assert (workdir / f"results/models/{model}/model.safetensors").exists()


def test_every_attack_runs_unchanged_on_the_genome_membership(genome_run):
    workdir, _ = genome_run
    metrics = pd.read_csv(workdir / "results/attacks/tiny/metrics.tsv", sep="\t")
    assert {"loss", "zlib", "lira_offline", "lira_online", "rmia"} <= set(metrics.attack)
    membership = pd.read_csv(workdir / "results/membership.tsv", sep="\t")
    loss = metrics.set_index("attack").loc["loss"]
    assert loss.n_members == membership.target_member.sum()
    assert loss.n_nonmembers == (membership.target_member == 0).sum()


def test_a_duplication_below_one_stops_the_run_in_one_line(tmp_path):
    config = genome_config(tmp_path)
    config["membership"]["genome"]["duplication"] = 0
    result = snakemake(tmp_path, config=config)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("gfm-audit: config error") and "membership.genome.duplication" in last
