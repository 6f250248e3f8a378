"""benchmarks/seed_comparison.py on a hand-made run: pooled neighbour sets, the threshold rows, the pilot's two
known values, the check against the run's own table, the page block."""

import importlib.util

import numpy as np
import pandas as pd
import pytest
from conftest import REPO
from gfm_audit.privacy.metrics import HYENADNA_BENCHMARK_THRESHOLDS, threshold_table

spec = importlib.util.spec_from_file_location("seed_comparison", REPO / "benchmarks" / "seed_comparison.py")
seed = importlib.util.module_from_spec(spec)
spec.loader.exec_module(seed)

# Per-p loss differences (mean neighbour loss - own loss) of four windows, two members then two non-members.
LOW_ALL = {0.1: [0.10, 0.00, 0.00, -0.1], 0.2: [0.20, 0.04, 0.00, -0.1], 0.3: [0.30, 0.05, 0.03, -0.1]}


def hand_scores() -> pd.DataFrame:
    table = pd.DataFrame({"window_id": ["w0", "w1", "w2", "w3"], "member": [1, 1, 0, 0]})
    for p, values in LOW_ALL.items():
        table[f"neighborhood_snp_p{p:g}"] = values
        table[f"neighborhood_snp_p{p:g}_snpsites"] = [0.5, 0.5, 0.5, 0.5]
    for p in (0.6, 0.8, 1.0):
        # The high set ranks the non-members first: its AUC is 0, telling the sets apart.
        table[f"neighborhood_snp_p{p:g}"] = [-0.2, -0.1, 0.1, 0.2]
        table[f"neighborhood_snp_p{p:g}_snpsites"] = [0.0, 0.0, 0.0, 0.0]
    table["loss"] = [-1.0, -1.1, -1.2, -1.3]
    return table


def write_run(folder, scores: pd.DataFrame):
    attacks = folder / "attacks" / "hyenadna"
    attacks.mkdir(parents=True)
    scores.to_csv(attacks / "scores.tsv", sep="\t", index=False)
    # The run's own table, as rule evaluate_attacks writes it (6 significant digits).
    threshold_table(scores, HYENADNA_BENCHMARK_THRESHOLDS).to_csv(
        attacks / "neighborhood_thresholds.tsv", sep="\t", index=False, float_format="%.6g"
    )
    metrics = pd.DataFrame(
        [{"attack": "loss", "auc": 1.0, "auc_low": 1.0, "auc_high": 1.0, "tpr_at_fpr_0.01": 1.0}]
    ).assign(n_members=2, n_nonmembers=2)
    metrics.to_csv(attacks / "metrics.tsv", sep="\t", index=False)
    return attacks


def test_a_sets_score_is_the_mean_of_its_per_p_differences():
    pooled = seed.set_scores(hand_scores())
    # (0.10 + 0.20 + 0.30) / 3, (0 + 0.04 + 0.05) / 3, (0 + 0 + 0.03) / 3, -0.1
    np.testing.assert_allclose(pooled.neighborhood_snp_low_all, [0.2, 0.03, 0.01, -0.1], rtol=1e-12)
    np.testing.assert_allclose(pooled.neighborhood_snp_high_all, [-0.2, -0.1, 0.1, 0.2], rtol=1e-12)
    assert (pooled.neighborhood_snp_low_snp == 0.5).all()


def test_threshold_rows_count_members_and_non_members_above_t_and_the_pilot_only_where_known():
    wide = seed.comparison(seed.set_scores(hand_scores())).set_index("threshold")
    assert list(wide.index) == pytest.approx([0.01 * i for i in range(20)])
    # t = 0.00: w0, w1 (members) and w2 (0.01, a non-member) are above: precision 2/3, recall 2/2, FPR 1/2.
    assert wide.loc[0.0, ["low_p_all_precision", "low_p_all_recall", "low_p_all_fpr"]].tolist() == pytest.approx(
        [2 / 3, 1.0, 0.5]
    )
    # t = 0.10: only w0 (0.2) is above: precision 1, recall 1/2, FPR 0.
    row = wide.iloc[10]
    assert [row.low_p_all_precision, row.low_p_all_recall, row.low_p_all_fpr] == pytest.approx([1.0, 0.5, 0.0])
    # The high set calls only the two non-members above 0.00 (0.1, 0.2): precision 0, recall 0, FPR 1.
    assert wide.loc[0.0, ["high_p_all_precision", "high_p_all_recall", "high_p_all_fpr"]].tolist() == [0, 0, 1]
    # No window's score is above t: precision is undefined (empty), recall and FPR 0.
    assert np.isnan(wide.iloc[19].high_p_snp_precision) and wide.iloc[19].high_p_snp_recall == 0
    assert wide.pilot_precision.iloc[0] == 0.0 and wide.pilot_precision.iloc[19] == 0.87
    assert wide.pilot_precision.iloc[1:19].isna().all()


def test_the_script_writes_the_tables_and_the_page_block_and_pooled_aucs(tmp_path):
    write_run(tmp_path / "results", hand_scores())
    page = tmp_path / "page.md"
    page.write_text(f"# T\n\n{seed.START}\nold\n{seed.END}\n\nafter\n")
    out, auc = tmp_path / "cmp.tsv", tmp_path / "auc.tsv"
    args = [str(tmp_path / "results"), "--out", str(out), "--auc", str(auc), "--page", str(page), "--bootstrap", "10"]
    assert seed.main(args) == 0
    aucs = pd.read_csv(auc, sep="\t").set_index("attack")
    # Members above non-members in every pair (0.2, 0.03 vs 0.01, -0.1): 1; below in every pair: 0.
    assert aucs.loc["neighborhood_snp_low_all", "auc"] == 1.0
    assert aucs.loc["neighborhood_snp_high_all", "auc"] == 0.0
    assert aucs.loc["loss", "source"] == "run metrics.tsv"
    text = page.read_text()
    assert "old" not in text and text.endswith(f"{seed.END}\n\nafter\n")
    assert "| 0.00 | 0.000 | 0.667 / 1.000 / 0.500 |" in text
    assert "| 0.19 | 0.870 |" in text and "| 0.05 |  |" in text and "| – / 0.000 / 0.000 |" in text


def test_a_threshold_table_of_another_run_is_refused(tmp_path):
    attacks = write_run(tmp_path / "results", hand_scores())
    table = pd.read_csv(attacks / "neighborhood_thresholds.tsv", sep="\t")
    table.loc[0, "called_members"] += 1
    table.to_csv(attacks / "neighborhood_thresholds.tsv", sep="\t", index=False)
    with pytest.raises(SystemExit, match="called_members differs"):
        seed.main([str(tmp_path / "results"), "--out", str(tmp_path / "a"), "--auc", str(tmp_path / "b")])
    assert not (tmp_path / "a").exists()


def test_a_run_without_the_six_probabilities_is_refused_in_one_line():
    scores = hand_scores().drop(columns=["neighborhood_snp_p0.8"])
    with pytest.raises(SystemExit, match="no column neighborhood_snp_p0.8: run the config with neighbors.probs"):
        seed.set_scores(scores)
