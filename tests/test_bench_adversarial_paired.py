"""benchmarks/adversarial_paired.py: McNemar's exact test against hand-computed binomial tails, the discordant
counts of hand-made per-sequence tables, and the per-sequence table bench_adversarial_training.py writes beside its
TSV on a small real run."""

import importlib.util

import pandas as pd
import pytest
import yaml
from conftest import REPO


def _load(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


paired = _load("adversarial_paired")
bench = _load("bench_adversarial_training")


def test_mcnemar_exact_p_is_twice_the_smaller_binomial_tail():
    # By hand: 2 * sum_{k <= min(b, c)} C(b + c, k) / 2^(b + c), capped at 1.
    assert paired.mcnemar_exact_p(0, 5) == 2 / 32
    assert paired.mcnemar_exact_p(9, 1) == 2 * (1 + 10) / 1024
    assert paired.mcnemar_exact_p(3, 3) == 1.0  # 2 * 42 / 64 > 1
    assert paired.mcnemar_exact_p(0, 0) == 1.0  # no discordant pair: no evidence either way
    with pytest.raises(ValueError, match="must not be negative"):
        paired.mcnemar_exact_p(-1, 2)


def _tables(defended_up_to: list[int], clean: float):
    undefended = [0, 0, 1, 2, 5, 5, 0, 3, 1, 0]
    seqs = pd.DataFrame(
        [
            dict(task="tf_0", variant="undefended", seq_id=f"s{i}", label=0, robust_up_to=u)
            for i, u in enumerate(undefended)
        ]
        + [
            dict(task="tf_0", variant="m", seq_id=f"s{i}", label=0, robust_up_to=u)
            for i, u in enumerate(defended_up_to)
        ]
    )
    results = pd.DataFrame(
        [
            dict(task="tf_0", variant="undefended", criterion="strict", clean_accuracy=0.80),
            dict(task="tf_0", variant="m", criterion="strict", clean_accuracy=clean),
        ]
    )
    return seqs, results


def test_paired_counts_the_sequences_robust_under_one_model_only():
    # At budget 2, robust means robust_up_to >= 2. Undefended: s3, s4, s5, s7. Defended: s0, s1, s3, s4, s5, s6, s9.
    seqs, results = _tables([2, 3, 1, 2, 5, 5, 4, 1, 0, 2], clean=0.79)
    row = paired.paired(seqs, results, "tf_0", 2).iloc[0]
    assert (row.undefended_only, row.defended_only) == (1, 4)  # s7; s0, s1, s6, s9
    assert row.gain == pytest.approx((4 - 1) / 10)
    assert row.p == pytest.approx(2 * (1 + 5) / 32)  # min(b, c) = 1 of 5
    assert not row.helps  # p = 0.375


def test_helps_paired_needs_a_significant_gain_and_clean_accuracy_kept():
    many = [5] * 10  # robust at every budget
    seqs, results = _tables(many, clean=0.79)
    row = paired.paired(seqs, results, "tf_0", 3).iloc[0]
    # Undefended robust at 3: s4, s5, s7; defended: all ten. b = 0, c = 7, p = 2 / 128.
    assert (row.undefended_only, row.defended_only, row.p) == (0, 7, 2 / 128)
    assert row.helps
    seqs, results = _tables(many, clean=0.77)  # clean down 3 points
    assert not paired.paired(seqs, results, "tf_0", 3).iloc[0].helps


def test_a_tsv_without_its_per_sequence_table_stops_with_one_line(tmp_path):
    tsv = tmp_path / "old.tsv"
    tsv.write_text("task\tvariant\n")
    with pytest.raises(SystemExit) as stop:
        paired.main(["--tsv", str(tsv), "--block", "b", "--page", str(tmp_path / "page.md")])
    assert str(stop.value) == (
        f"{tmp_path / 'old_sequences.tsv'}: no per-sequence table beside the TSV; run bench_adversarial_training.py "
        "again to write it"
    )


def test_bench_writes_per_sequence_table_whose_counts_are_the_robust_accuracies(tmp_path):
    demo = REPO / "resources/demo/gue_prom_300_all"
    for split, rows in (("dev", 80), ("test", 40)):
        pd.read_csv(demo / f"{split}.csv").head(rows).to_csv(tmp_path / f"{split}.csv", index=False)
    config = dict(
        seed=0,
        holdout=12,
        cnn=dict(channels=8, kernel=5),
        clean_training=dict(epochs=1, learning_rate=0.001, batch_size=16, weight_decay=0.0),
        attack=dict(ga=dict(population=8, generations=3)),
        tasks=dict(toy=dict(train=str(tmp_path / "dev.csv"), test=str(tmp_path / "test.csv"))),
    )
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    page = tmp_path / "page.md"
    page.write_text("<!-- adversarial-training:start -->\n<!-- adversarial-training:end -->\n")
    out = tmp_path / "results.tsv"
    argv = ["--config", str(tmp_path / "config.yaml"), "--out", str(out), "--page", str(page)]
    assert bench.main([*argv, "--variants", "hotflip_finetune_lr5e4"]) == 0
    results = pd.read_csv(out, sep="\t")
    seqs = pd.read_csv(bench.sequences_path(out), sep="\t")
    assert list(seqs.columns) == bench.SEQUENCE_COLUMNS
    for variant in ("undefended", "hotflip_finetune_lr5e4"):
        mine = seqs[seqs.variant == variant]
        assert len(mine) == 12 and mine.seq_id.is_unique
        for r in results[results.variant == variant].itertuples():
            assert r.robust_accuracy == pytest.approx((mine.robust_up_to >= r.budget).mean(), abs=5e-5)  # 4 decimals
    # The paired table's gain is the difference of the two robust accuracies, read from the same run.
    row = paired.paired(seqs, results, "toy", 5).iloc[0]
    at5 = results[results.budget == 5].set_index("variant").robust_accuracy
    assert row.gain == pytest.approx(at5["hotflip_finetune_lr5e4"] - at5["undefended"], abs=1e-4)
