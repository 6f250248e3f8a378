"""Map and reduce of the genome-scale data flow: per-token scores -> per-sequence features -> per-window table.

Map (in each scoring shard): the per-token arrays of a sequence are reduced to the few numbers the attacks use,
so that no later job needs per-token data:
  n_tokens      scored tokens;
  loss          L(x) = -(1/n) sum_t log p(x_t | context), the mean NLL (Yeom et al. 2018);
  snp_loss      the same mean over the tokens covering the window's SNP sites (null if none);
  min_k_k<k>    mean of the max(1, floor(k n)) lowest log p(x_t) (Min-k% prob, Shi et al. 2024);
  min_k_pp_k<k> the same over z_t = (log p(x_t) - mu_t) / sigma_t (Min-K%++, Zhang et al. 2024);
  zlib_bytes    size of the zlib-compressed window sequence (zlib attack, Carlini et al. 2021), windows only.
The min-k features are computed from the float16 values that the per-token table stores, so that they are the
same numbers whether or not that table is kept.

Reduce (one job per model): one row per window with its own features and, for every neighbor kind and for every
(kind, p), the mean, standard deviation (ddof 1) and count of each neighbor feature:
``nbr_<kind>_<feature>_mean``, ``nbr_<kind>_p<p>_<feature>_std``, ``nbr_<kind>_n``, ... Its memory is
O(windows x features): the shards are read one at a time.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InputError
from ..outputs import atomic_outputs

# Computed for every sequence whatever the attacks: the neighbor figure and the report rely on them.
BASE_FEATURES = ("n_tokens", "loss", "snp_loss")
ID_COLUMNS = ("sequence_id", "window_id", "kind", "prob", "replicate")
_MIN_K = re.compile(r"^min_k(_pp)?_k(?P<k>[0-9.]+(?:e-?[0-9]+)?)$")


def min_k_feature(k: float) -> str:
    return f"min_k_k{k:g}"


def min_k_pp_feature(k: float) -> str:
    return f"min_k_pp_k{k:g}"


def known_feature(name: str) -> bool:
    return name in (*BASE_FEATURES, "zlib_bytes") or bool(_MIN_K.match(name))


def feature_schema(features: Sequence[str]) -> pa.Schema:
    """Columns of a per-sequence feature shard: the ids, then ``features`` in order."""
    fields = [
        ("sequence_id", pa.string()),
        ("window_id", pa.string()),
        ("kind", pa.string()),
        ("prob", pa.float64()),
        ("replicate", pa.int32()),
    ]
    for name in features:
        fields.append((name, pa.int32() if name in ("n_tokens", "zlib_bytes") else pa.float64()))
    return pa.schema(fields)


def lowest_fraction_mean(values: np.ndarray, k: float) -> float:
    """Mean of the max(1, floor(k * n)) smallest values; NaN for no values."""
    n = max(1, int(k * len(values)))
    return float(np.sort(values)[:n].mean()) if len(values) else float("nan")


def sequence_features(
    stats: np.ndarray, snp_tokens: np.ndarray, features: Sequence[str], *, text: str | None = None
) -> dict[str, float | int | None]:
    """The features of one sequence from its (3, n) array of log p, mu, sigma at the scored tokens.

    ``snp_tokens``: (n,) bool, the scored tokens that cover a SNP site; ``text``: the sequence, for zlib_bytes
    (None for a neighbor, whose zlib_bytes is null).
    """
    logp = stats[0].astype(np.float64)
    out: dict[str, float | int | None] = {}
    stored = None  # the float16 values of the per-token table, as float64
    for name in features:
        if name == "n_tokens":
            out[name] = int(stats.shape[1])
        elif name == "loss":
            out[name] = float(-logp.mean()) if len(logp) else None
        elif name == "snp_loss":
            out[name] = float(-logp[snp_tokens].mean()) if snp_tokens.any() else None
        elif name == "zlib_bytes":
            out[name] = len(zlib.compress(text.encode(), 9)) if text is not None else None
        else:
            match = _MIN_K.match(name)
            if match is None:
                raise InputError(f"unknown per-sequence feature '{name}' (an attack module declares it)")
            if stored is None:
                stored = stats.astype(np.float16).astype(np.float64)
            k = float(match["k"])
            if match.group(1):
                z = (stored[0] - stored[1]) / np.maximum(stored[2], 1e-6)
                out[name] = lowest_fraction_mean(z, k)
            else:
                out[name] = lowest_fraction_mean(stored[0], k)
    return out


class ShardWriter:
    """Parquet row groups written as batches finish, under a temporary name renamed only when all is written.

    A killed job leaves only the temporary file (``.<name>.partial-<pid>``), never the final name, so the
    workflow re-runs that shard and no other.
    """

    def __init__(self, path: str | os.PathLike, schema: pa.Schema) -> None:
        self.schema = schema
        self._atomic = atomic_outputs(path)
        (self._tmp,) = self._atomic.__enter__()
        self._writer = pq.ParquetWriter(self._tmp, schema, compression="zstd")
        self.rows = 0

    def write(self, columns: Mapping[str, list]) -> None:
        table = pa.Table.from_pydict(dict(columns), schema=self.schema)
        if table.num_rows:
            self._writer.write_table(table)
            self.rows += table.num_rows

    def close(self, exc: BaseException | None = None) -> None:
        self._writer.close()
        if exc is None:
            self._atomic.__exit__(None, None, None)
        else:
            self._atomic.__exit__(type(exc), exc, exc.__traceback__)

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(exc)


# --- reduce ----------------------------------------------------------------------------------------


def _group(kind: str, prob: float | None) -> str:
    return kind if prob is None else f"{kind}_p{prob:g}"


def neighbor_column(kind: str, prob: float | None, feature: str, *, stat: str) -> str:
    """Column of the per-window table: ``stat`` (mean, std) of neighbor ``feature`` of ``kind`` (and ``prob``)."""
    return f"nbr_{_group(kind, prob)}_{feature}_{stat}"


def neighbor_count_column(kind: str, prob: float | None) -> str:
    """Column of the per-window table: how many neighbors of ``kind`` (and ``prob``) the window has."""
    return f"nbr_{_group(kind, prob)}_n"


_NEIGHBOR = re.compile(r"^nbr_(?P<kind>[a-z]+)(?:_p(?P<p>[0-9.]+(?:e-?[0-9]+)?))?_n$")


def neighbor_groups(columns: Iterable[str]) -> list[tuple[str, float | None]]:
    """The (kind, p) groups of a per-window table, p None for a kind pooled over p; in column order."""
    groups = []
    for column in columns:
        match = _NEIGHBOR.match(column)
        if match:
            groups.append((match["kind"], None if match["p"] is None else float(match["p"])))
    return groups


def _aggregate(neighbors: pd.DataFrame, features: Sequence[str], window_ids) -> dict[str, np.ndarray]:
    """Per window: mean, std and count of each feature over each kind and each (kind, p)."""
    out: dict[str, np.ndarray] = {}
    kinds = sorted(neighbors.kind.unique(), key=lambda k: (k != "snp", k))
    for kind in kinds:
        of_kind = neighbors[neighbors.kind == kind]
        groups = [(None, of_kind)] + [(p, of_kind[of_kind.prob == p]) for p in sorted(of_kind.prob.unique())]
        for prob, sub in groups:
            grouped = sub.groupby("window_id", sort=False)
            out[neighbor_count_column(kind, prob)] = grouped.size().reindex(window_ids, fill_value=0).to_numpy(np.int64)
            for feature in features:
                for stat in ("mean", "std"):
                    values = getattr(grouped[feature], stat)()
                    out[neighbor_column(kind, prob, feature, stat=stat)] = values.reindex(window_ids).to_numpy(
                        np.float64
                    )
    return out


def window_table(sequences: pd.DataFrame) -> pd.DataFrame:
    """One row per window: its own features and the neighbor aggregates (one shard's sequences at a time)."""
    features = [c for c in sequences.columns if c not in ID_COLUMNS]
    windows = sequences[sequences.kind == "window"]
    window_ids = windows.window_id.to_numpy()
    table = {"window_id": window_ids}
    for feature in features:
        table[feature] = windows[feature].to_numpy()
    neighbor_features = [f for f in features if f not in ("n_tokens", "zlib_bytes")]
    table |= _aggregate(sequences[sequences.kind != "window"], neighbor_features, window_ids)
    return pd.DataFrame(table)


def reduce_shards(paths: Sequence[str | os.PathLike], out_path: str | os.PathLike) -> int:
    """The per-window table of a model from its per-sequence feature shards; returns its row count.

    A shard is read, reduced to its windows' rows and dropped before the next, so memory is that of one shard's
    sequences plus the per-window rows.
    """
    parts = [window_table(pd.read_parquet(p)) for p in paths]
    columns = [c for c in parts[0].columns] if parts else ["window_id"]
    for part in parts[1:]:
        # A shard may lack a (kind, p) group another has (a tiny shard): align on the union of columns.
        columns += [c for c in part.columns if c not in columns]
    table = pd.concat([p.reindex(columns=columns) for p in parts], ignore_index=True)
    with atomic_outputs(out_path) as (tmp,):
        table.to_parquet(tmp, index=False, compression="zstd")
    return len(table)


def read_window_features(path: str | os.PathLike, window_ids: Sequence[str]) -> pd.DataFrame:
    """A model's per-window table, indexed by window id, in ``window_ids`` order."""
    table = pd.read_parquet(path).set_index("window_id")
    missing = pd.Index(window_ids).difference(table.index)
    if len(missing):
        raise InputError(f"{path} has no features for window {missing[0]}; re-run the scoring of that model")
    return table.loc[list(window_ids)]
