"""Training: seeded, saved as safetensors, and the demo target really memorises its members."""

import numpy as np
import pytest
from conftest import REPO, demo_sequence, run_windows
from full_disk import run_on_a_full_disk
from gfm_audit.config import load_config
from gfm_audit.fasta import read_fasta
from gfm_audit.models import ModelSpec, load_model
from gfm_audit.privacy.membership import finetune_split
from gfm_audit.privacy.scoring import SeqRecord, score_sequences
from gfm_audit.privacy.training import member_sequences, train_model

TRAIN = {"epochs": 2, "learning_rate": 1e-3, "batch_size": 4, "weight_decay": 0.0}


def _auc(members: np.ndarray, nonmembers: np.ndarray) -> float:
    """P(score of a member > score of a non-member), ties counting half (Mann-Whitney)."""
    diff = members[:, None] - nonmembers[None, :]
    return float((diff > 0).mean() + 0.5 * (diff == 0).mean())


def test_training_is_seeded_and_saves_a_loadable_safetensors_checkpoint(tmp_path, tiny_causal):
    seqs = [demo_sequence(i * 100, i * 100 + 60) for i in range(6)]
    spec = ModelSpec("t", str(tiny_causal), "causal", init="scratch")
    losses = train_model(spec, seqs, params=TRAIN, seed=3, out_dir=tmp_path / "a", device="cpu")
    train_model(spec, seqs, params=TRAIN, seed=3, out_dir=tmp_path / "b", device="cpu")
    train_model(spec, seqs, params=TRAIN, seed=4, out_dir=tmp_path / "c", device="cpu")
    a, b, c = ((tmp_path / x / "model.safetensors").read_bytes() for x in "abc")
    assert a == b and a != c
    assert len(losses) == 2 and (tmp_path / "a" / "training_log.tsv").read_text().startswith("epoch\tloss\n")
    assert not list(tmp_path.glob(".*partial*"))
    load_model(ModelSpec("t", str(tmp_path / "a"), "causal"))


def test_extra_sequences_train_in_batches_of_their_own_leaving_the_member_batches_unchanged(tmp_path, tiny_causal):
    """Planted canaries must not change which windows are trained together or in which order."""
    import torch
    from gfm_audit.privacy.training import _interleave

    seqs = [demo_sequence(i * 100, i * 100 + 60) for i in range(10)]
    extra = [demo_sequence(50_000 + i * 40, 50_000 + i * 40 + 30) for i in range(5)]
    spec = ModelSpec("t", str(tiny_causal), "causal", init="scratch")
    # lr 0: the weights never move, so each epoch's mean loss is a fingerprint of the member batches it saw.
    frozen = {**TRAIN, "learning_rate": 0.0, "epochs": 3}
    alone = train_model(spec, seqs, params=frozen, seed=3, out_dir=tmp_path / "a", device="cpu")
    planted = train_model(
        spec, seqs, params=frozen, seed=3, out_dir=tmp_path / "b", device="cpu", extra_sequences=extra
    )
    assert planted == alone
    mixed_in = train_model(spec, seqs + extra, params=frozen, seed=3, out_dir=tmp_path / "c", device="cpu")
    assert mixed_in != alone  # what planting them among the windows did
    main = [torch.tensor([0, 1]), torch.tensor([2, 3])]
    schedule = _interleave(main, 3, 10, 2, torch.Generator().manual_seed(0))
    assert [rows.tolist() for rows, is_main in schedule if is_main] == [[0, 1], [2, 3]]
    assert sorted(sum((rows.tolist() for rows, is_main in schedule if not is_main), [])) == [10, 11, 12]


def test_a_full_disk_stops_training_in_one_line_naming_the_model_folder_and_leaves_no_partial_folder(
    tmp_path, tiny_causal
):
    disk, log = tmp_path / "disk", tmp_path / "train.log"
    out = disk / "models" / "t"
    seqs = [demo_sequence(i * 100, i * 100 + 60) for i in range(6)]
    # A rule script's run: train_model under run_rule, saving into 64 KiB, where config.json and the tokenizer
    # fit and the weights (about 140 KiB, written by safetensors) do not.
    code = f"""
import sys
sys.path.insert(0, {str(REPO / "workflow_scripts")!r})
from types import SimpleNamespace
from gfm_audit.models import ModelSpec
from gfm_audit.privacy.training import train_model
from gfm_audit.rule_script import run_rule
job = SimpleNamespace(rule="train_model", log=[{str(log)!r}], output=[{str(out)!r}])
spec = ModelSpec("t", {str(tiny_causal)!r}, "causal", init="scratch")
run_rule(job, lambda job: train_model(spec, {seqs!r}, params={TRAIN!r}, seed=3, out_dir=job.output[0], device="cpu"))
"""
    status, stderr, left = run_on_a_full_disk(code, disk, size_kib=64)
    assert status == 1 and len(stderr.strip().splitlines()) == 1, stderr
    assert "disk is full" in stderr and str(out) in stderr and "Traceback" not in stderr
    assert left == []


def test_masked_model_trains_with_masked_token_loss(tmp_path, tiny_masked):
    seqs = [demo_sequence(i * 100, i * 100 + 60) for i in range(8)]
    spec = ModelSpec("m", str(tiny_masked), "masked")
    losses = train_model(
        spec, seqs, params={**TRAIN, "epochs": 6, "learning_rate": 3e-3}, seed=0, out_dir=tmp_path / "m", device="cpu"
    )
    assert losses[-1] < losses[0]


def test_member_sequences_keep_window_order():
    windows = {"w0": "AA", "w1": "CC", "w2": "GG"}
    assert member_sequences(windows, {"w2": 1, "w0": 1, "w1": 0}) == ["AA", "GG"]


@pytest.mark.slow
def test_the_demo_target_memorises_its_members(tmp_path):
    """Train exactly the demo's target (config/demo.yaml) and compare member and non-member loss."""
    config = load_config(REPO / "config" / "demo.yaml")
    _, out, _ = run_windows(
        tmp_path, REPO / config["reference"]["fasta"], REPO / config["reference"]["vcf"], **config["windows"]
    )
    windows = read_fasta(out / "windows.fa")
    membership = config["membership"]
    split = finetune_split(
        list(windows),
        member_fraction=membership["member_fraction"],
        n_references=membership["reference_models"],
        seed=membership["seed"],
    )
    labels = dict(zip(split.window_id, split.target_member, strict=True))
    block = config["models"][config["target"]]
    spec = ModelSpec.from_config(config["target"], {**block, "path": str(REPO / block["path"])})
    train_model(
        spec,
        member_sequences(windows, labels),
        params=membership["training"],
        seed=membership["seed"],
        out_dir=tmp_path / "t",
    )
    trained = ModelSpec(config["target"], str(tmp_path / "t"), "causal")
    records = [SeqRecord(w, w, "window", None, None, s) for w, s in windows.items()]
    table = score_sequences(trained, records, snp_offsets={}, batch_size=32, seed=0).to_pandas()
    member = table.window_id.map(labels).to_numpy() == 1
    loss = table.loss.to_numpy()
    gap = loss[~member].mean() - loss[member].mean()
    auc = _auc(-loss[member], -loss[~member])  # lower loss = member
    assert gap > 0.05, f"member/non-member loss gap {gap:.3f}"
    assert auc > 0.8, f"LOSS attack AUC {auc:.3f}"
