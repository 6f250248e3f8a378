"""Membership mode genome: held-out blocks, window labels, matching, training chunks and the refusals."""

import logging

import numpy as np
import pandas as pd
import pytest
from conftest import demo_sequence, write_fasta
from gfm_audit.config import validate_config
from gfm_audit.errors import InputError
from gfm_audit.privacy.genome_split import (
    genome_membership,
    heldout_blocks,
    label_windows,
    match_windows,
    minimum_per_class,
    split_table,
    training_chunks,
    training_schedule,
)

CONTIGS = [("a", 1037), ("b", 480), ("c", 95)]
TOTAL = sum(n for _, n in CONTIGS)


def coverage(intervals, contigs=CONTIGS) -> dict[str, np.ndarray]:
    """How many of ``intervals`` cover each base, by contig (counted base by base)."""
    counts = {c: np.zeros(n, dtype=int) for c, n in contigs}
    for chrom, s, e in intervals:
        counts[chrom][s:e] += 1
    return counts


@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.5])
@pytest.mark.parametrize("block", [10, 64, 100])
def test_heldout_blocks_are_disjoint_grid_blocks_holding_out_the_fraction_within_one_block(fraction, block):
    blocks = heldout_blocks(CONTIGS, fraction=fraction, block_length=block, seed=3)
    cover = coverage(blocks)
    assert all(c.max() <= 1 for c in cover.values())  # disjoint
    for chrom, s, e in blocks:
        length = dict(CONTIGS)[chrom]
        assert s % block == 0 and e == min(s + block, length)  # a block of the grid tiling its contig
    held = sum(int(c.sum()) for c in cover.values())
    assert fraction * TOTAL <= held < fraction * TOTAL + block


def test_heldout_blocks_are_seeded():
    one = heldout_blocks(CONTIGS, fraction=0.3, block_length=10, seed=1)
    assert one == heldout_blocks(CONTIGS, fraction=0.3, block_length=10, seed=1)
    assert one != heldout_blocks(CONTIGS, fraction=0.3, block_length=10, seed=2)


def test_adding_reference_models_leaves_the_targets_split_unchanged():
    params = {"heldout_fraction": 0.2, "block_length": 25}
    two = split_table(CONTIGS, ["t", "ref_0"], params=params, seed=7)
    four = split_table(CONTIGS, ["t", "ref_0", "ref_1", "ref_2"], params=params, seed=7)
    assert two[two.model == "t"].equals(four[four.model == "t"])
    # Every model has a split of its own.
    spans = {m: set(zip(r.chrom, r.start, strict=True)) for m, r in four.groupby("model")}
    assert len({frozenset(s) for s in spans.values()}) == 4


def windows_table(rows):
    return pd.DataFrame(rows, columns=["window_id", "chrom", "start", "end"])


def test_window_labels_follow_the_intervals_by_hand():
    # Held-out blocks written by hand on a 10-bp grid: the target holds out a:[20,40) (two adjacent blocks) and
    # b:[0,10); ref_0 holds out a:[50,60).
    heldout = pd.DataFrame(
        [("t", "a", 20, 30), ("t", "a", 30, 40), ("t", "b", 0, 10), ("ref_0", "a", 50, 60)],
        columns=["model", "chrom", "start", "end"],
    )
    windows = windows_table(
        [
            ("in", "a", 0, 8),  # training for both
            ("out", "a", 22, 30),  # inside a held-out block, ending on its edge
            ("across_edge", "a", 26, 34),  # across the shared edge of two held-out blocks: still held out
            ("straddles_t", "a", 36, 44),  # held out / training boundary of the target
            ("ref_out", "a", 50, 58),  # target member, held out by ref_0
            ("straddles_ref", "a", 55, 63),  # clean for the target, straddles ref_0's boundary
            ("b_out", "b", 2, 10),
            ("b_in", "b", 10, 18),  # starts where the held-out block ends
            ("touch_left", "a", 12, 20),  # ends where a held-out block starts: training
        ]
    )
    table, counts = label_windows(windows, heldout, ["t", "ref_0"])
    got = {w: (t, r) for w, t, r in zip(table.window_id, table.target_member, table.ref_0_member, strict=True)}
    assert got == {
        "in": (1, 1),
        "out": (0, 1),
        "across_edge": (0, 1),
        "ref_out": (1, 0),
        "b_out": (0, 1),
        "b_in": (1, 1),
        "touch_left": (1, 1),
    }
    assert counts == {"straddling_target": 1, "straddling_reference": 1}
    assert list(table.columns) == ["window_id", "target_member", "ref_0_member"]


def test_labels_of_windows_of_a_tiny_fasta_from_drawn_splits_match_a_base_by_base_check(tmp_path):
    """Draw the splits, then label every window independently from a per-base held-out mask."""
    import pysam

    fasta = write_fasta(tmp_path / "tiny.fa", {"a": demo_sequence(0, 900), "b": demo_sequence(5000, 5400)})
    with pysam.FastaFile(str(fasta)) as fa:
        contigs = list(zip(fa.references, fa.lengths, strict=True))
    heldout = split_table(contigs, ["t", "ref_0"], params={"heldout_fraction": 0.3, "block_length": 50}, seed=0)
    windows = windows_table(
        [(f"{c}:{s}", c, s, s + 20) for c, n in contigs for s in range(0, n - 20, 7)],
    )
    table, _ = label_windows(windows, heldout, ["t", "ref_0"])
    masks = {m: coverage(list(zip(r.chrom, r.start, r.end, strict=True)), contigs) for m, r in heldout.groupby("model")}
    expected = {}
    for w in windows.itertuples():
        held = {m: masks[m][w.chrom][w.start : w.end] for m in masks}
        if all(h.all() or not h.any() for h in held.values()):
            expected[w.window_id] = (int(not held["t"].any()), int(not held["ref_0"].any()))
    got = dict(zip(table.window_id, zip(table.target_member, table.ref_0_member, strict=True), strict=True))
    assert got == expected and 0 < sum(1 - t for t, _ in got.values()) < len(got)


def test_matching_keeps_equal_members_and_non_members_in_every_gc_snp_cell():
    rng = np.random.default_rng(0)
    n = 400
    member = (np.arange(n) % 5 != 0).astype(int)  # 4 members for each non-member
    # Members richer in GC than non-members: an unmatched audit would partly detect GC.
    gc = np.where(member == 1, rng.uniform(0.35, 0.65, n), rng.uniform(0.3, 0.5, n))
    snp = rng.uniform(0.0, 0.02, n)
    ids = [f"w{i}" for i in range(n)]
    labelled = pd.DataFrame({"window_id": ids, "target_member": member})
    covariates = pd.DataFrame({"window_id": ids, "gc_fraction": gc, "snp_fraction": snp})
    kept, cells = match_windows(labelled, covariates, bins=3, seed=1)
    # The cells recomputed apart: tertiles of the pooled values, ties to the upper bin.
    g = np.searchsorted(np.quantile(gc, [1 / 3, 2 / 3]), gc, side="right")
    s = np.searchsorted(np.quantile(snp, [1 / 3, 2 / 3]), snp, side="right")
    cell = pd.Series(g * 3 + s, index=ids)
    k = kept.assign(cell=cell[kept.window_id].to_numpy())
    per_cell = k.groupby(["cell", "target_member"]).size().unstack(fill_value=0)
    assert (per_cell[0] == per_cell[1]).all()
    all_cells = pd.DataFrame({"cell": cell.to_numpy(), "m": member}).groupby(["cell", "m"]).size().unstack(fill_value=0)
    assert (per_cell[1] == all_cells.min(axis=1).loc[per_cell.index]).all()
    assert int(cells.kept.sum()) == len(kept) // 2
    # The GC gap between members and non-members is less than half the unmatched one.
    kept_gc = covariates.set_index("window_id").gc_fraction[kept.window_id].to_numpy()
    kept_member = kept.target_member.to_numpy() == 1
    matched_gap = abs(kept_gc[kept_member].mean() - kept_gc[~kept_member].mean())
    assert matched_gap < abs(gc[member == 1].mean() - gc[member == 0].mean()) / 2
    again, _ = match_windows(labelled, covariates, bins=3, seed=1)
    assert again.equals(kept)


@pytest.mark.parametrize(("epochs", "duplication"), [(1, 1), (3, 2), (2, 4)])
def test_every_training_base_is_seen_epochs_times_duplication_and_no_held_out_base(epochs, duplication):
    import torch

    blocks = heldout_blocks(CONTIGS, fraction=0.3, block_length=64, seed=5)
    plan = training_chunks(CONTIGS, blocks, chunk_length=50)
    seen = {c: np.zeros(n, dtype=int) for c, n in CONTIGS}
    for _, rows in training_schedule(
        len(plan), epochs=epochs, duplication=duplication, batch_size=7, generator=torch.Generator().manual_seed(0)
    ):
        for i in rows:
            chrom, s, e = plan.chunk(int(i))
            assert 0 < e - s <= 50
            seen[chrom][s:e] += 1
    held = coverage(blocks)
    for chrom, _ in CONTIGS:
        assert (seen[chrom][held[chrom] == 1] == 0).all()
        assert (seen[chrom][held[chrom] == 0] == epochs * duplication).all()
    assert plan.bases == sum(int((h == 0).sum()) for h in held.values())


def test_the_trainer_reads_duplication_times_the_training_bases_each_epoch(tmp_path, caplog):
    from gfm_audit.char_lm import save_char_causal_lm
    from gfm_audit.models import ModelSpec
    from gfm_audit.privacy.genome_training import train_on_genome

    fasta = write_fasta(tmp_path / "tiny.fa", {"a": demo_sequence(0, 600), "b": demo_sequence(9000, 9250)})
    contigs = [("a", 600), ("b", 250)]
    blocks = heldout_blocks(contigs, fraction=0.25, block_length=100, seed=0)
    plan = training_chunks(contigs, blocks, chunk_length=64)
    arch = save_char_causal_lm(tmp_path / "arch", hidden=16, layers=1, heads=2, max_positions=80)
    spec = ModelSpec.from_config("tiny", {"path": str(arch), "kind": "causal", "init": "scratch"})
    params = {"epochs": 2, "learning_rate": 1e-3, "batch_size": 8, "weight_decay": 0.0}
    with caplog.at_level(logging.INFO, logger="gfm_audit.privacy.genome_training"):
        losses = train_on_genome(
            spec, plan, fasta=fasta, params=params, duplication=3, seed=0, out_dir=tmp_path / "model", device="cpu"
        )
    assert len(losses) == 2 and all(np.isfinite(losses))
    epochs = [r.getMessage() for r in caplog.records if " epoch " in r.getMessage()]
    assert len(epochs) == 2 and all(f", 0 gap chunks skipped, {3 * plan.bases} bases (" in m for m in epochs)
    assert (tmp_path / "model/model.safetensors").exists()


def test_chunks_of_assembly_gap_are_skipped_and_counted_and_the_rest_trained_on(tmp_path, caplog):
    from gfm_audit.char_lm import save_char_causal_lm
    from gfm_audit.models import ModelSpec
    from gfm_audit.privacy.genome_training import train_on_genome

    # 230 N (a gap: the chunks [0, 200) of 50 bp are all N, [200, 250) has 30 N and 20 bases), sequence, 100 N.
    sequence = "N" * 230 + demo_sequence(0, 420) + "N" * 100
    fasta = write_fasta(tmp_path / "gap.fa", {"a": sequence})
    plan = training_chunks([("a", 750)], [("a", 300, 400)], chunk_length=50)
    gap_chunks = [k for k in range(len(plan)) if set(sequence[slice(*plan.chunk(k)[1:])]) == {"N"}]
    assert len(gap_chunks) == 4 + 2  # by hand: [0, 300) opens with 4 all-N chunks, [400, 750) ends with 2
    trained_bases = plan.bases - sum(plan.chunk(k)[2] - plan.chunk(k)[1] for k in gap_chunks)
    arch = save_char_causal_lm(tmp_path / "arch", hidden=16, layers=1, heads=2, max_positions=80)
    spec = ModelSpec.from_config("tiny", {"path": str(arch), "kind": "causal", "init": "scratch"})
    params = {"epochs": 1, "learning_rate": 1e-3, "batch_size": 4, "weight_decay": 0.0}
    with caplog.at_level(logging.INFO, logger="gfm_audit.privacy.genome_training"):
        train_on_genome(spec, plan, fasta=fasta, params=params, duplication=2, seed=0, out_dir=tmp_path / "m")
    (line,) = [r.getMessage() for r in caplog.records if " epoch " in r.getMessage()]
    assert f", {2 * len(gap_chunks)} gap chunks skipped, {2 * trained_bases} bases (" in line


def test_chunks_longer_than_the_model_takes_are_refused_in_one_line(tmp_path):
    from gfm_audit.char_lm import save_char_causal_lm
    from gfm_audit.models import ModelSpec
    from gfm_audit.privacy.genome_training import train_on_genome

    fasta = write_fasta(tmp_path / "tiny.fa", {"a": demo_sequence(0, 600)})
    plan = training_chunks([("a", 600)], [("a", 0, 100)], chunk_length=200)
    arch = save_char_causal_lm(tmp_path / "arch", hidden=16, layers=1, heads=2, max_positions=80)
    spec = ModelSpec.from_config("tiny", {"path": str(arch), "kind": "causal", "init": "scratch"})
    params = {"epochs": 1, "learning_rate": 1e-3, "batch_size": 8, "weight_decay": 0.0}
    with pytest.raises(InputError, match=r"chunk_length=200 bp are \d+ tokens, longer than model 'tiny' takes \(80\)"):
        train_on_genome(spec, plan, fasta=fasta, params=params, duplication=1, seed=0, out_dir=tmp_path / "m")
    assert not (tmp_path / "m").exists()


# --- refusals --------------------------------------------------------------------------------------------


def test_a_held_out_fraction_leaving_too_few_windows_is_refused_naming_the_counts_and_the_need():
    contigs = [("a", 10_000)]
    heldout = split_table(contigs, ["t"], params={"heldout_fraction": 0.01, "block_length": 100}, seed=0)
    windows = windows_table([(f"w{s}", "a", s, s + 50) for s in range(0, 10_000, 100)])
    windows["gc_fraction"], windows["snp_fraction"] = 0.5, 0.01
    params = {"heldout_fraction": 0.01, "block_length": 100, "match_bins": 2}
    needed = minimum_per_class({"names": ["loss", "recall"], "recall": {"prefix_windows": 3}})
    assert needed == 5
    with pytest.raises(InputError) as err:
        genome_membership(windows, heldout, params=params, seed=0, needed=needed)
    message = str(err.value)
    assert "\n" not in message and "membership.genome.heldout_fraction=0.01" in message
    assert "leaves 1 member and 1 non-member windows of the 100 windows" in message
    assert "need at least 5 of each" in message


def config_with(**genome):
    return {
        "reference": {"fasta": "unused.fa", "vcf": "unused.vcf.gz"},
        "windows": {"length": 256},
        "models": {"m": {"path": "unused", "kind": "causal", "init": "scratch"}},
        "target": "m",
        "membership": {"mode": "genome", "genome": genome},
    }


def test_a_window_longer_than_the_held_out_blocks_is_refused_at_start_up():
    with pytest.raises(InputError) as err:
        validate_config(config_with(block_length=200))
    assert str(err.value).count("\n") == 0
    assert "windows.length 256 is longer than membership.genome.block_length 200" in str(err.value)
    validate_config(config_with(block_length=256))  # a window as long as a block fits in one


def test_duplication_below_one_is_refused_naming_the_key():
    with pytest.raises(InputError, match=r"key membership\.genome\.duplication: 0 is less than the minimum of 1"):
        validate_config(config_with(duplication=0))


def test_a_pretrained_target_is_refused_in_mode_genome():
    config = config_with()
    config["models"]["m"]["init"] = "pretrained"
    with pytest.raises(InputError, match="membership.mode genome trains the target from scratch"):
        validate_config(config)


def test_the_verdict_on_a_model_besides_the_target_says_it_was_not_trained_on_the_targets_split():
    from gfm_audit.privacy.report import verdict

    metrics = pd.DataFrame(
        [
            {
                "attack": "loss",
                "auc": 0.7,
                "auc_low": 0.6,
                "auc_high": 0.8,
                "tpr_at_fpr_0.01": 0.1,
                "eps_lower_bound": 0.2,
            }
        ]
    )
    _, other = verdict("public", metrics, is_target=False, mode="genome")
    _, target = verdict("tiny", metrics, is_target=True, mode="genome")
    assert "not trained on the target's split of the genome" in other
    assert "not trained on" not in target
