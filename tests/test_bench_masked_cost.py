"""benchmarks/bench_masked_cost.py: the paired AUC-difference interval and the 1 kb pass counts it reports."""

import importlib.util

import numpy as np
import pandas as pd
from conftest import REPO
from gfm_audit.char_lm import char_tokenizer
from gfm_audit.gfm import nt_v2
from sklearn.metrics import roc_auc_score

spec = importlib.util.spec_from_file_location("bench_masked_cost", REPO / "benchmarks" / "bench_masked_cost.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def _loop_interval(exact, other, member, n_boot, seed):
    """Reference: the same resamples drawn one at a time, each AUC by sklearn on the resampled list."""
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(member), len(member))
        if member[idx].all() or not member[idx].any():
            continue
        diffs.append(roc_auc_score(member[idx], other[idx]) - roc_auc_score(member[idx], exact[idx]))
    return np.percentile(diffs, [2.5, 97.5])


def test_paired_interval_equals_sklearn_on_each_resample_with_ties_and_missing_scores():
    rng = np.random.default_rng(3)
    member = np.repeat([1, 0], [9, 8])
    exact = np.round(rng.normal(size=17) + 0.5 * member, 1)  # rounded: ties within and across classes
    other = np.round(exact + rng.normal(scale=0.3, size=17), 1)
    other[4] = np.nan  # a window the other scoring could not score leaves both sides of the pair
    d, lo, hi = bench.paired_auc_difference(exact, other, member, n_boot=300, seed=1)
    ok = np.isfinite(other)
    assert d == roc_auc_score(member[ok], other[ok]) - roc_auc_score(member[ok], exact[ok])
    # Float sums in another order: equal to rounding (1e-12 is far below any difference of two AUCs of 16 windows,
    # which are multiples of 1/(n_members * n_non_members) of the resample's counts).
    np.testing.assert_allclose([lo, hi], _loop_interval(exact[ok], other[ok], member[ok], 300, 1), atol=1e-12)


def test_identical_scorings_differ_by_zero_with_a_zero_interval():
    scores = pd.DataFrame({"window_id": list("abcdef"), "member": [1, 1, 1, 0, 0, 0], "loss": [3, 1, 2, 6, 4, 5.0]})
    (row,) = bench.setting_rows("same", scores, scores, cost={})
    assert (row["d_auc"], row["d_auc_lo"], row["d_auc_hi"]) == (0, 0, 0)
    assert row["auc"] == 0  # higher loss is the non-members here: the raw score's AUC, as exact rows report


def test_passes_of_a_1kb_window_count_the_tokenizers_tokens():
    text = "ACGT" * 300
    assert bench.passes_per_kb(char_tokenizer(), text, [6, 3000]) == {"exact": 1000, "stride 6": 6, "stride 3000": 1000}
    # NT v2's 6-mer tokenizer: 1,000 bases are 166 6-mers and 4 single bases, 170 tokens.
    tokenizer = nt_v2.load_tokenizer(REPO / "tests" / "fixtures" / "gfm" / "nt_v2")
    assert bench.passes_per_kb(tokenizer, text, [6]) == {"exact": 170, "stride 6": 6}


def test_page_table_marks_only_intervals_inside_the_tolerance():
    rows = [
        {"setting": "exact", "attack": "loss", "auc": 0.8, "auc_lo": 0.7, "auc_hi": 0.9},
        {"setting": "stride 6", "attack": "loss", "d_auc": 0.004, "d_auc_lo": -0.002, "d_auc_hi": 0.01},
        {"setting": "stride 3", "attack": "loss", "d_auc": 0.004, "d_auc_lo": -0.002, "d_auc_hi": 0.011},
    ]
    table = pd.DataFrame(rows)
    table["within_tolerance"] = (table.d_auc_lo >= -0.01) & (table.d_auc_hi <= 0.01)
    lines = bench.attack_table(table, ["stride 6", "stride 3"]).splitlines()
    assert lines[2] == ("| loss | 0.800 [0.700, 0.900] | +0.004 [-0.002, +0.010] (within) | +0.004 [-0.002, +0.011] |")
