"""benchmarks/bench_dp_audit.py: the grid's configs, the rows read from a run, the summary and the page it fills."""

import importlib.util
import json
import math

import pandas as pd
import pytest
import yaml
from conftest import REPO

spec = importlib.util.spec_from_file_location("bench_dp_audit", REPO / "benchmarks" / "bench_dp_audit.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

BASE = yaml.safe_load((REPO / "config" / "demo_dp.yaml").read_text())


def test_each_point_sets_epsilon_and_seeds_and_infinity_trains_without_dp():
    point = bench.point_config(BASE, 16.0, 2)
    assert point["membership"]["training"]["dp"]["epsilon"] == 16.0
    assert point["membership"]["seed"] == point["memorisation"]["canaries"]["seed"] == 2
    assert "dp" not in bench.point_config(BASE, math.inf, 0)["membership"]["training"]
    assert bench.point_config(BASE, 1.0, 0, epochs=30)["membership"]["training"]["epochs"] == 30
    assert BASE["membership"]["training"]["dp"]["epsilon"] == 4.0  # the base is left alone
    assert BASE["membership"]["training"]["epochs"] == 5


def _fake_run(folder, *, epsilon, one_run, attacks, seconds):
    results = folder / "results"
    for sub in ("models/demo_lm", "benchmarks/train_model", "memorisation/demo_lm", "attacks/demo_lm"):
        (results / sub).mkdir(parents=True)
    if epsilon is not None:
        (results / "models/demo_lm/dp.json").write_text(json.dumps({"epsilon": epsilon, "noise_multiplier": 1.5}))
    (results / "benchmarks/train_model/demo_lm.tsv").write_text(f"s\th:m:s\n{seconds}\t0:00:10\n")
    pd.DataFrame(
        [
            {"bound": b, "eps_lower_bound": e, "delta": 1e-5, "guesses": 100, "correct": 70, "ceiling": 5.4}
            for b, e in one_run.items()
        ]
    ).to_csv(results / "memorisation/demo_lm/one_run.tsv", sep="\t", index=False)
    pd.DataFrame({"attack": list(attacks), "auc": 0.6, "eps_lower_bound": list(attacks.values())}).to_csv(
        results / "attacks/demo_lm/metrics.tsv", sep="\t", index=False
    )
    return folder


def test_a_run_gives_one_row_per_bound_with_its_tightness_and_excess(tmp_path):
    folder = _fake_run(
        tmp_path / "a",
        epsilon=3.98,
        one_run={"one_run": 0.5, "one_run_gdp": 4.1},
        attacks={"loss": 0.2, "zlib": float("nan"), "rmia": 0.3},
        seconds=50.0,
    )
    table = bench.collect(folder, BASE, 4.0, 0)
    assert table.method.tolist() == ["one_run", "one_run_gdp", "clopper_pearson:loss", "clopper_pearson:rmia"]
    assert (table.achieved_epsilon == 3.98).all() and table.train_s_per_epoch.iloc[0] == 50.0 / 5
    assert table.tightness.tolist() == pytest.approx([0.5 / 3.98, 4.1 / 3.98, 0.2 / 3.98, 0.3 / 3.98])
    assert table.exceeds.tolist() == [False, True, False, False]


def test_the_summary_keeps_the_best_attack_per_run_and_compares_the_cost_with_no_dp(tmp_path):
    runs = [
        (4.0, 0, 3.98, {"loss": 0.2, "rmia": 0.3}, 50.0),
        (4.0, 1, 3.98, {"loss": 0.4, "rmia": 0.1}, 60.0),
        (math.inf, 0, None, {"loss": 2.0, "rmia": 1.0}, 10.0),
    ]
    tables = []
    for epsilon, seed, achieved, attacks, seconds in runs:
        folder = _fake_run(
            tmp_path / f"{epsilon}-{seed}",
            epsilon=achieved,
            one_run={"one_run": 0.1, "one_run_gdp": 0.2},
            attacks=attacks,
            seconds=seconds,
        )
        tables.append(bench.collect(folder, BASE, epsilon, seed))
    result = bench.summary(pd.concat(tables, ignore_index=True)).set_index(["epsilon", "method"])
    assert (result.epochs == 5).all()
    best = result.loc[(4.0, "best membership attack (Clopper-Pearson)")]
    # Per seed the larger of the two attacks: 0.3 (rmia), then 0.4 (loss).
    assert best["bound (mean)"] == pytest.approx(0.35) and best["bound (max)"] == pytest.approx(0.4)
    assert best["seeds"] == 2 and best["exceeds"] == 0
    assert best["cost vs non-private"] == pytest.approx((55.0 / 5) / (10.0 / 5))
    assert result.loc[(math.inf, "one-run canary bound")]["cost vs non-private"] == pytest.approx(1.0)


def test_the_page_block_is_replaced_and_a_page_without_one_is_refused(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(f"# T\n\n{bench.START}\nold\n{bench.END}\n\nafter\n")
    bench.write_page(page, "| a |\n|---|\n| 1 |\n")
    assert page.read_text() == f"# T\n\n{bench.START}\n| a |\n|---|\n| 1 |\n{bench.END}\n\nafter\n"
    (tmp_path / "bare.md").write_text("# T\n")
    with pytest.raises(SystemExit, match="no <!-- dp-audit:start -->"):
        bench.write_page(tmp_path / "bare.md", "x")


def test_the_privacy_meter_reference_ratio_is_its_bound_over_its_epsilon():
    text = bench.markdown(pd.DataFrame({"epsilon": [4.0], "method": ["x"]}))
    # 0.4181 / 68.51 = 0.0061; 0.1258 / 68.51 = 0.00184 (3 significant digits)
    assert "| 68.5 | Privacy Meter, mislabelled canaries | 0.418 | 0.0061 |" in text
    assert "| 68.5 | Privacy Meter, natural canaries | 0.126 | 0.00184 |" in text
    assert "| ∞ | Privacy Meter, mislabelled canaries | 5.48 |  |" in text  # no ratio to an infinite epsilon


def test_a_longer_trained_arm_is_summarised_apart_with_its_ceiling_and_drawn(tmp_path):
    tables = []
    for epochs, bound, seconds in ((5, 0.05, 10.0), (30, 1.2, 66.0)):
        config = bench.point_config(BASE, math.inf, 0, epochs)
        folder = _fake_run(
            tmp_path / f"inf-{epochs}", epsilon=None, one_run={"one_run": bound}, attacks={"loss": 0.1}, seconds=seconds
        )
        tables.append(bench.collect(folder, config, math.inf, 0))
    table = pd.concat(tables, ignore_index=True)
    result = bench.summary(table).set_index(["epochs", "method"])
    # Each length against the non-private runs of its own length: 1.0 for both, not 30/5 or 66/10.
    assert result.loc[(30, "one-run canary bound")]["bound (mean)"] == pytest.approx(1.2)
    assert result.loc[(5, "one-run canary bound")]["bound (mean)"] == pytest.approx(0.05)
    assert result.loc[(30, "one-run canary bound")]["s per epoch"] == pytest.approx(66.0 / 30)
    assert result["cost vs non-private"].tolist() == pytest.approx([1.0] * len(result))
    assert result.loc[(30, "one-run canary bound")]["ceiling"] == pytest.approx(5.4)
    assert math.isnan(result.loc[(30, "best membership attack (Clopper-Pearson)")]["ceiling"])
    bench.figure(table, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 0
