"""The reduce step: per-sequence feature shards -> one per-window table, streamed shard by shard."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from gfm_audit.errors import InputError
from gfm_audit.privacy.features import feature_schema, read_window_features, reduce_shards, window_table

FEATURES = ["n_tokens", "loss", "snp_loss"]


def _shard(path, windows, groups, seed):
    """A feature shard: each window with neighbors of each (kind, p, count) in ``groups``, random features."""
    rng = np.random.default_rng(seed)
    rows = []
    for w in windows:
        members = [("window", None)] + [(kind, p) for kind, p, n in groups for _ in range(n)]
        for i, (kind, p) in enumerate(members):
            rows.append(
                {
                    "sequence_id": f"{w}:{i}",
                    "window_id": w,
                    "kind": kind,
                    "prob": p,
                    "replicate": i,
                    "n_tokens": int(rng.integers(50, 60)),
                    "loss": float(rng.normal(1.3, 0.1)),
                    "snp_loss": None if kind == "control" else float(rng.normal(1.4, 0.2)),
                }
            )
    frame = pd.DataFrame(rows)
    pq.write_table(pa.Table.from_pandas(frame, schema=feature_schema(FEATURES), preserve_index=False), path)
    return frame


def test_streamed_table_equals_the_reduction_of_all_shards_at_once(tmp_path):
    groups = [("snp", 0.1, 3), ("snp", 0.5, 2), ("control", 0.1, 2)]
    frames = [_shard(tmp_path / f"{i}.parquet", [f"w{i}_{j}" for j in range(5)], groups, i) for i in range(3)]
    rows = reduce_shards([tmp_path / f"{i}.parquet" for i in range(3)], tmp_path / "windows.parquet")
    streamed = pd.read_parquet(tmp_path / "windows.parquet")
    whole = window_table(pd.concat(frames, ignore_index=True))
    assert rows == 15 and list(streamed.columns) == list(whole.columns)
    pd.testing.assert_frame_equal(streamed, whole, check_dtype=False)
    # One row group per shard: nothing but one shard's windows was ever held.
    assert pq.ParquetFile(tmp_path / "windows.parquet").metadata.num_row_groups == 3
    # By hand, one aggregate: the mean and std (ddof 1) of w1_2's three snp p=0.1 neighbors' loss.
    by_hand = frames[1].query("window_id == 'w1_2' and kind == 'snp' and prob == 0.1").loss
    row = streamed.set_index("window_id").loc["w1_2"]
    assert row["nbr_snp_p0.1_loss_mean"] == pytest.approx(by_hand.mean())
    assert row["nbr_snp_p0.1_loss_std"] == pytest.approx(by_hand.std(ddof=1))
    assert row["nbr_snp_n"] == 5


def test_a_shard_without_a_group_gets_count_zero_and_null_statistics(tmp_path):
    _shard(tmp_path / "a.parquet", ["a1", "a2"], [("snp", 0.1, 2), ("control", 0.1, 1)], 0)
    _shard(tmp_path / "b.parquet", ["b1"], [("snp", 0.1, 2)], 1)  # a tiny shard: no control neighbor
    reduce_shards([tmp_path / "a.parquet", tmp_path / "b.parquet"], tmp_path / "w.parquet")
    table = pd.read_parquet(tmp_path / "w.parquet").set_index("window_id")
    assert table.loc["b1", "nbr_control_n"] == 0 and table["nbr_control_n"].dtype == np.int64
    assert np.isnan(table.loc["b1", "nbr_control_loss_mean"])
    assert table.loc["a1", "nbr_control_n"] == 1


def test_window_features_come_in_the_asked_order_and_a_missing_window_is_named(tmp_path):
    _shard(tmp_path / "a.parquet", ["w1", "w2", "w3"], [("snp", 0.1, 2)], 0)
    reduce_shards([tmp_path / "a.parquet"], tmp_path / "w.parquet")
    table = read_window_features(tmp_path / "w.parquet", ["w3", "w1"], columns=["loss"])
    assert list(table.index) == ["w3", "w1"] and list(table.columns) == ["loss"]
    full = pd.read_parquet(tmp_path / "w.parquet").set_index("window_id")
    assert table.loc["w3", "loss"] == full.loc["w3", "loss"]
    with pytest.raises(InputError, match="no features for window w9"):
        read_window_features(tmp_path / "w.parquet", ["w1", "w9"])


def test_window_features_equal_a_whole_pandas_read_across_row_groups_nulls_and_order(tmp_path):
    # Three row groups; an integer column whose nulls appear only in the last one (pandas then reads it as
    # float64 with NaN); windows asked for in another order and a subset.
    path = tmp_path / "w.parquet"
    groups = [
        pa.table({"window_id": ["a", "b"], "loss": [1.0, 2.0], "n": pa.array([1, 2], pa.int64())}),
        pa.table({"window_id": ["c"], "loss": pa.array([None], pa.float64()), "n": pa.array([3], pa.int64())}),
        pa.table({"window_id": ["d", "e"], "loss": [4.0, 5.0], "n": pa.array([None, 5], pa.int64())}),
    ]
    with pq.ParquetWriter(path, groups[0].schema) as writer:
        for table in groups:
            writer.write_table(table)
    asked = ["e", "c", "a", "d"]
    expected = pd.read_parquet(path).set_index("window_id").loc[asked]
    got = read_window_features(path, asked)
    pd.testing.assert_frame_equal(got, expected)
    assert got["n"].dtype == np.float64 and np.isnan(got.loc["d", "n"]) and np.isnan(got.loc["c", "loss"])
    whole = read_window_features(path, ["a", "b", "c", "d", "e"], columns=["n"])
    assert list(whole.columns) == ["n"] and whole["n"].tolist()[:3] == [1.0, 2.0, 3.0]
