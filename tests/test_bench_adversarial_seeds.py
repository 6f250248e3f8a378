"""benchmarks/adversarial_seeds.py: the across-seeds table's gains, means and target count from hand-made TSV
rows, and the block it fills."""

import importlib.util

import pandas as pd
import pytest
from conftest import REPO

spec = importlib.util.spec_from_file_location("adversarial_seeds", REPO / "benchmarks" / "adversarial_seeds.py")
seeds = importlib.util.module_from_spec(spec)
spec.loader.exec_module(seeds)


def _rows(variant: str, robust: float, low: float, high: float, clean: float) -> list[dict]:
    # Budget 1 rows are there to show that only the largest budget counts.
    return [
        dict(
            task="prom_300_all",
            variant=variant,
            budget=b,
            robust_accuracy=robust if b == 5 else 0.99,
            ci_low=low if b == 5 else 0.0,
            ci_high=high if b == 5 else 1.0,
            clean_accuracy=clean,
            criterion="strict",
        )
        for b in (1, 5)
    ]


def _seed_tables() -> list[pd.DataFrame]:
    seed0 = pd.DataFrame(
        _rows("undefended", 0.40, 0.35, 0.45, 0.88)
        + _rows("a", 0.65, 0.60, 0.70, 0.87)  # +0.25, clean -0.01, disjoint: met
        + _rows("b", 0.70, 0.65, 0.75, 0.88)  # run at this seed only: left out
    )
    seed1 = pd.DataFrame(
        _rows("undefended", 0.30, 0.25, 0.35, 0.90)
        + _rows("a", 0.45, 0.40, 0.50, 0.91)  # +0.15, clean +0.01: disjoint but short of +0.2
    )
    return [seed0, seed1]


def _write_seed_tables(folder, first_seed: int = 0) -> list:
    """_seed_tables() as TSVs named after the seeds they stand for."""
    paths = []
    for i, table in enumerate(_seed_tables()):
        paths.append(folder / f"seed{first_seed + i}.tsv")
        table.to_csv(paths[-1], sep="\t", index=False)
    return paths


def _empty_page(folder):
    """A page holding only the default block, empty."""
    page = folder / "page.md"
    page.write_text("<!-- adversarial-training-seeds:start -->\n<!-- adversarial-training-seeds:end -->\n")
    return page


def test_gain_and_clean_change_are_per_seed_against_that_seeds_undefended_model():
    table = seeds.per_seed(_seed_tables()[1], "prom_300_all")
    assert list(table.index) == ["a"]
    assert abs(table.loc["a"].gain - 0.15) < 1e-12
    assert abs(table.loc["a"].clean_change - 0.01) < 1e-12
    assert bool(table.loc["a"].disjoint) and not bool(table.loc["a"].met)


def test_render_gives_means_over_seeds_and_leaves_out_models_run_once():
    text = seeds.render(_seed_tables(), "prom_300_all")
    assert "| undefended | (0.400) | (0.300) | | | | | |" in text
    assert (
        "| a | +0.250 / -0.010 (0.650) | +0.150 / +0.010 (0.450) | +0.200 [-0.435, +0.835] | +0.000 [-0.127, +0.127] "
        "| 1 of 2 seeds | 2 of 2 seeds | 2 of 2 seeds (p = 0.250) |" in text
    )
    assert "| b |" not in text


def test_block_option_fills_the_named_block_and_leaves_the_others(tmp_path):
    paths = _write_seed_tables(tmp_path)
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- adversarial-training-seeds:start -->\nkept\n<!-- adversarial-training-seeds:end -->\n"
        "<!-- deep-seeds:start -->\nold\n<!-- deep-seeds:end -->\n"
    )
    seeds.main(["--tsv", *map(str, paths), "--page", str(page), "--block", "deep-seeds"])
    text = page.read_text()
    assert "kept" in text and "old" not in text
    assert "| a | +0.250" in text.split("<!-- deep-seeds:start -->")[1]


def test_helps_counts_disjoint_gains_of_any_size_with_clean_accuracy_down_two_points_at_most():
    base = _rows("undefended", 0.10, 0.07, 0.14, 0.80)
    table = pd.DataFrame(
        base
        + _rows("small", 0.20, 0.16, 0.25, 0.79)  # +0.10, disjoint, clean -1 point: helps, short of the target
        + _rows("costly", 0.25, 0.20, 0.30, 0.77)  # disjoint but clean -3 points
        + _rows("overlap", 0.15, 0.12, 0.19, 0.80)  # +0.05 within the intervals
        + _rows("cleaner", 0.20, 0.16, 0.25, 0.83)  # disjoint, clean +3 points: a rise is no cost
    )
    out = seeds.per_seed(table, "prom_300_all")
    assert out.helps.to_dict() == {"small": True, "costly": False, "overlap": False, "cleaner": True}
    assert not out.met.any()
    # The target's clean condition is the same one-sided rule.
    assert seeds.target_met(True, 0.25, +0.03) and not seeds.target_met(True, 0.25, -0.03)


def test_mean_with_interval_is_the_student_t_interval_over_seeds():
    # By hand, with t(0.975) from a printed table (df 1: 12.706, df 2: 4.303):
    # [1, 2, 3]: mean 2, s = 1, half-width 4.303 * 1 / sqrt(3) = 2.484.
    assert seeds.mean_with_interval([1.0, 2.0, 3.0]) == "+2.000 [-0.484, +4.484]"
    # [0.25, 0.15] (the render test's seeds): mean 0.2, s = 0.0707, half-width 12.706 * 0.0707 / sqrt(2) = 0.635.
    assert seeds.mean_with_interval([0.25, 0.15]) == "+0.200 [-0.435, +0.835]"
    assert seeds.mean_with_interval([0.1]) == "+0.100"  # one seed: no spread to estimate


def test_sign_test_p_is_the_binomial_upper_tail_at_one_half():
    # By hand: P(X >= k) for X ~ Binomial(n, 1/2) is (sum of C(n, i), i = k..n) / 2^n.
    assert seeds.sign_test_p(5, 5) == 1 / 32
    assert seeds.sign_test_p(4, 5) == (5 + 1) / 32
    assert seeds.sign_test_p(1, 2) == (2 + 1) / 4
    assert seeds.sign_test_p(0, 3) == 1.0
    with pytest.raises(ValueError, match="positive=4 is not between 0 and n=3"):
        seeds.sign_test_p(4, 3)


def test_sign_column_counts_gains_above_zero_and_leaves_ties_out():
    base = _rows("undefended", 0.30, 0.25, 0.35, 0.80)
    tables = [
        pd.DataFrame(base + _rows("m", 0.32, 0.27, 0.37, 0.80)),  # +0.02, within the intervals: still above zero
        pd.DataFrame(base + _rows("m", 0.30, 0.25, 0.35, 0.80)),  # a tie: left out of the test
        pd.DataFrame(base + _rows("m", 0.25, 0.20, 0.30, 0.80)),  # below zero
        pd.DataFrame(base + _rows("m", 0.40, 0.36, 0.45, 0.80)),  # above zero, disjoint
    ]
    text = seeds.render(tables, "prom_300_all")
    assert "| 2 of 3 seeds (p = 0.500) |" in text  # (C(3,2) + C(3,3)) / 8
    assert "| 1 of 4 seeds |" in text  # helps only at the disjoint seed


def test_budget_option_reads_the_gains_at_that_budget(tmp_path):
    # At budget 1 the rows of _rows all read 0.99 with the interval [0, 1]: no gain, intervals overlap.
    table = seeds.per_seed(_seed_tables()[0], "prom_300_all", budget=1)
    assert abs(table.loc["a"].gain) < 1e-12 and not bool(table.loc["a"].helps)
    path = _write_seed_tables(tmp_path)[0]
    page = _empty_page(tmp_path)
    seeds.main(["--tsv", str(path), "--page", str(page), "--budget", "1"])
    assert "Task prom_300_all, budget 1, strict criterion." in page.read_text()


def test_a_budget_not_measured_stops_with_one_line_naming_the_budgets_there(tmp_path):
    path = _write_seed_tables(tmp_path)[0]
    page = _empty_page(tmp_path)
    with pytest.raises(SystemExit) as stop:
        seeds.main(["--tsv", str(path), "--page", str(page), "--budget", "3"])
    assert str(stop.value) == "--budget 3: not measured in every TSV; choose one of [1, 5]"
    assert "budget" not in page.read_text()  # nothing written


def test_seeds_option_labels_the_columns_with_the_seeds_the_tsvs_were_run_at(tmp_path):
    paths = _write_seed_tables(tmp_path, first_seed=1)
    page = _empty_page(tmp_path)
    seeds.main(["--tsv", *map(str, paths), "--page", str(page), "--seeds", "1", "2"])
    head = next(line for line in page.read_text().splitlines() if line.startswith("| model |"))
    assert "seed 1: gain" in head and "seed 2: gain" in head and "seed 0" not in head


def test_seeds_not_one_per_tsv_stop_with_one_line(tmp_path):
    path = _write_seed_tables(tmp_path, first_seed=1)[0]
    page = _empty_page(tmp_path)
    with pytest.raises(SystemExit) as stop:
        seeds.main(["--tsv", str(path), "--page", str(page), "--seeds", "1", "2"])
    assert str(stop.value) == "--seeds names 2 seeds for 1 TSVs: give one seed per TSV"
    assert "Task" not in page.read_text()
