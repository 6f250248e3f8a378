"""benchmarks/same_tables.py: two runs are the same when every result file is, wall-clock columns aside."""

import importlib.util

from conftest import REPO

spec = importlib.util.spec_from_file_location("same_tables", REPO / "benchmarks" / "same_tables.py")
same_tables = importlib.util.module_from_spec(spec)
spec.loader.exec_module(same_tables)


def _run(folder, cost_seconds, auc):
    results = folder / "results"
    (results / "attacks" / "m").mkdir(parents=True)
    (results / "logs").mkdir()
    (results / "attacks" / "m" / "metrics.tsv").write_text(f"attack\tauc\nloss\t{auc}\n")
    (results / "cost.tsv").write_text(f"iteration\tseconds\taccuracy\n0\t{cost_seconds}\t0.5\n")
    (results / "logs" / "job.log").write_text(f"took {cost_seconds} s\n")
    return folder


def test_runs_differing_only_in_times_and_logs_are_the_same(tmp_path):
    before = _run(tmp_path / "a", 12.5, 0.9)
    after = _run(tmp_path / "b", 99.0, 0.9)
    assert same_tables.compare(same_tables.results_dir(before), same_tables.results_dir(after)) == []


def test_a_changed_value_or_a_missing_file_is_named(tmp_path):
    before = _run(tmp_path / "a", 1.0, 0.9)
    after = _run(tmp_path / "b", 1.0, 0.91)
    (after / "results" / "extra.tsv").write_text("x\n")
    assert same_tables.main([str(before), str(after)]) == 1
    assert same_tables.compare(before / "results", after / "results") == [
        f"only in {after / 'results'}: extra.tsv",
        "differs: attacks/m/metrics.tsv",
    ]
