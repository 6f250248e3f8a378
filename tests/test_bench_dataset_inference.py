"""benchmarks/bench_dataset_inference.py on a hand-made results folder: synthetic attack scores, members shifted."""

import importlib.util

import numpy as np
import pandas as pd
import pytest
from conftest import REPO

spec = importlib.util.spec_from_file_location(
    "bench_dataset_inference", REPO / "benchmarks" / "bench_dataset_inference.py"
)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

N = 60  # members and as many non-members: small, and enough for every case's minimum sizes


@pytest.fixture
def run(tmp_path):
    """A results folder with a model's scores.tsv (three correlated attacks, members moved by a known shift) and
    membership.tsv, and a page with the markers between other text."""
    rng = np.random.default_rng(0)
    member = np.r_[np.ones(N, int), np.zeros(N, int)]
    base = rng.standard_normal((2 * N, 3)) + 0.5 * rng.standard_normal((2 * N, 1))
    scores = base + 1.5 * member[:, None]
    ids = [f"w{i:06d}" for i in range(2 * N)]
    results = tmp_path / "results"
    (results / "attacks" / "toy").mkdir(parents=True)
    table = pd.DataFrame(scores, columns=["loss", "zlib", "min_k"]).assign(window_id=ids, member=member)
    table[["window_id", "member", "loss", "zlib", "min_k"]].to_csv(
        results / "attacks" / "toy" / "scores.tsv", sep="\t", index=False
    )
    pd.DataFrame({"window_id": ids, "target_member": member}).to_csv(results / "membership.tsv", sep="\t", index=False)
    page = tmp_path / "page.md"
    page.write_text(f"# Page\n\nbefore\n\n{bench.START}\nold block\n{bench.END}\n\nafter\n")
    argv = [
        "--results",
        str(results),
        "--out",
        str(tmp_path / "table.tsv"),
        "--page",
        str(page),
        "--splits",
        "5",
        "--curve-repeats",
        "3",
        "--h0-splits",
        "4",
        "--duci-attacks",
        "loss",
        "--duci-size",
        "20",
        "--duci-draws",
        "3",
    ]
    return tmp_path, argv


def test_the_members_case_rejects_and_every_case_has_its_rows(run):
    tmp, argv = run
    bench.main(argv)
    table = pd.read_csv(tmp / "table.tsv", sep="\t")
    members = table[table.case == "members"].iloc[0]
    assert members.p_value < 0.01 and members.rejected
    assert members.true_share == 1.0 and members.attack == "loss"
    assert not table[table.case == "curve"].empty
    h0 = table[table.case == "h0"]
    assert h0.split.tolist() == [0, 1, 2, 3]
    assert (h0.n_suspect + h0.n_validation == N).all()
    duci = table[table.case == "duci"]
    assert sorted(duci.true_share.unique()) == [0.0, 0.25, 0.5, 1.0]
    assert (duci.groupby("true_share").size() == 3).all()
    assert (duci.n_suspect == 20).all()


def test_h0_splits_cut_the_nonmembers_into_disjoint_halves(run):
    tmp, argv = run
    args = bench.parse_args(argv)
    _, table, _ = bench.read_run(tmp / "results", None)
    rows, sets = bench.h0_splits(table, args)
    nonmembers = set(table.window_id[table.member == 0])
    assert len(rows) == len(sets) == 4
    for suspect, validation in sets:
        assert not set(suspect) & set(validation)
        assert set(suspect) | set(validation) == nonmembers
    assert len({tuple(sorted(s)) for s, _ in sets}) == 4  # each seed cuts differently


def test_the_page_block_is_replaced_and_the_rest_kept(run):
    tmp, argv = run
    bench.main(argv)
    text = (tmp / "page.md").read_text()
    assert "old block" not in text
    assert text.startswith("# Page\n\nbefore\n\n") and text.endswith("\n\nafter\n")
    block = text.split(bench.START)[1].split(bench.END)[0]
    assert "model `toy`" in block and "H0:" in block and "DUCI:" in block and "Targets:" in block


def test_a_score_table_that_disagrees_with_membership_is_refused(run):
    tmp, _ = run
    membership = pd.read_csv(tmp / "results" / "membership.tsv", sep="\t")
    membership.loc[0, "target_member"] = 0
    membership.to_csv(tmp / "results" / "membership.tsv", sep="\t", index=False)
    with pytest.raises(SystemExit, match="target_member"):
        bench.read_run(tmp / "results", None)
