"""Map and reduce of the genome-scale data flow: per-token scores -> per-sequence features -> per-window table.

Map (in each scoring shard): the per-token arrays of a sequence are reduced to the few numbers the attacks use,
so that no later job needs per-token data:
  n_tokens      scored tokens;
  loss          L(x) = -(1/n) sum_t log p(x_t | context), the mean NLL (Yeom et al. 2018);
  snp_loss      the same mean over the tokens covering the window's SNP sites (null if none);
  min_k_k<k>    mean of the max(1, floor(k n)) lowest log p(x_t) (Min-k% prob, Shi et al. 2024);
  min_k_pp_k<k> the same over z_t = (log p(x_t) - mu_t) / sigma_t (Min-K%++, Zhang et al. 2024);
  dc_pdd_a<a>   mean of min(p(x_t) log(1/f(x_t)), a) over each token id's first occurrence, f its smoothed
                frequency in the reference genome (DC-PDD, Zhang et al. 2024; :mod:`.dc_pdd`);
  zlib_bytes    size of the zlib-compressed window sequence (zlib attack, Carlini et al. 2021), windows only;
  recall_loss_n<n>_seed<s>  mean NLL of the window's tokens after a prefix of n non-member windows (ReCaLL,
                Xie et al. 2024), windows only, null for the prefix's own windows: a forward pass of its own;
  gradnorm_<wrt>  L2 norm of the gradient of the window's loss w.r.t. the parameters or the input embeddings
                (gradient-norm attack), windows only: a backward pass of its own.
The last two are not reductions of the per-token arrays: the scoring job computes them in passes of their own
(:mod:`.scoring`) and only for the audited models, never for the reference models (no attack reads them there).
The min-k features are computed from the float16 values that the per-token table stores, so that they are the
same numbers whether or not that table is kept.

Reduce (one job per model): one row per window with its own features and, for every neighbor kind and for every
(kind, p), the mean, standard deviation (ddof 1) and count of each neighbor feature:
``nbr_<kind>_<feature>_mean``, ``nbr_<kind>_p<p>_<feature>_std``, ``nbr_<kind>_n``, ... Its memory is
O(windows x features): the shards are read one at a time. Only when an attack asks for them (the ramia attack),
range statistics follow: trimmed means over each window and its neighbors, ``range_<kind>[_p<p>]_trim<q>_loss``
(:mod:`.ranges`).
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
from ..ragged import length_groups, offsets_of, segment_ids, segment_means, segment_rows
from .dc_pdd import dc_pdd_means
from .ranges import RangeSpec, parse_range_column, range_aggregates
from .score_table import _float16

# Computed for every sequence whatever the attacks: the neighbor figure and the report rely on them.
BASE_FEATURES = ("n_tokens", "loss", "snp_loss")
ID_COLUMNS = ("sequence_id", "window_id", "kind", "prob", "replicate")
_MIN_K = re.compile(r"^min_k(_pp)?_k(?P<k>[0-9.]+(?:e-?[0-9]+)?)$")
_DC_PDD = re.compile(r"^dc_pdd_a(?P<a>[0-9.]+(?:e[-+]?[0-9]+)?)$")
_RECALL = re.compile(r"^recall_loss_n(?P<n>[0-9]+)_seed(?P<seed>[0-9]+)$")
_GRADNORM = re.compile(r"^gradnorm_(?P<wrt>parameters|embeddings)$")


def min_k_feature(k: float) -> str:
    return f"min_k_k{k:g}"


def min_k_pp_feature(k: float) -> str:
    return f"min_k_pp_k{k:g}"


def dc_pdd_feature(a: float) -> str:
    return f"dc_pdd_a{a:g}"


def needs_token_frequencies(features: Sequence[str]) -> bool:
    """Whether ``features`` hold a DC-PDD feature, which reads the reference's token frequency table."""
    return any(_DC_PDD.match(name) for name in features)


def recall_feature(prefix_windows: int, seed: int) -> str:
    """The ReCaLL feature of a prefix of ``prefix_windows`` non-member windows drawn with ``seed``: both in the
    name, so that changing either re-runs the scoring jobs (the rule's params are the feature names)."""
    return f"recall_loss_n{prefix_windows}_seed{seed}"


def parse_recall_feature(name: str) -> tuple[int, int] | None:
    """(prefix windows, seed) of a ReCaLL feature name, None for another feature."""
    match = _RECALL.match(name)
    return (int(match["n"]), int(match["seed"])) if match else None


def gradnorm_feature(wrt: str) -> str:
    return f"gradnorm_{wrt}"


def parse_gradnorm_feature(name: str) -> str | None:
    """``parameters`` or ``embeddings`` of a gradient-norm feature name, None for another feature."""
    match = _GRADNORM.match(name)
    return match["wrt"] if match else None


def own_pass(name: str) -> bool:
    """Features that need a model pass of their own (not a reduction of the per-token arrays): windows only, and
    only on the audited models."""
    return bool(_RECALL.match(name) or _GRADNORM.match(name))


def reference_features(features: Sequence[str]) -> list[str]:
    """What a reference model's scoring jobs compute of ``features``: all but the own-pass features, which only
    the attacked models' tables are read for."""
    return [name for name in features if not own_pass(name)]


def known_feature(name: str) -> bool:
    return name in (*BASE_FEATURES, "zlib_bytes") or bool(_MIN_K.match(name) or _DC_PDD.match(name)) or own_pass(name)


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


def lowest_fraction_means(values: np.ndarray, offsets: np.ndarray, k: float) -> np.ndarray:
    """:func:`lowest_fraction_mean` of every float64 segment ``values[offsets[i]:offsets[i+1]]``, without a loop
    over segments.

    Segments of one length n are stacked into a 2-D array, sorted along rows, and the first max(1, floor(k n))
    columns averaged row by row: the same values in the same order, summed as NumPy sums a 1-D array, so the
    same means bit for bit as the loop (a test compares them)."""
    counts = np.diff(offsets)
    out = np.full(len(counts), np.nan)
    for length, rows in length_groups(counts):
        take = max(1, int(k * length))
        block = np.sort(segment_rows(values, offsets, rows, length=length), axis=1)  # a copy: values may be a view
        out[rows] = np.ascontiguousarray(block[:, :take]).sum(axis=1) / take
    return out


def sequence_features(
    stats: np.ndarray, snp_tokens: np.ndarray, features: Sequence[str], *, text: str | None = None
) -> dict[str, float | int | None]:
    """The features of one sequence from its (3, n) array of log p, mu, sigma at the scored tokens.

    ``snp_tokens``: (n,) bool, the scored tokens that cover a SNP site; ``text``: the sequence, for zlib_bytes
    (None for a neighbor, whose zlib_bytes is null). :func:`features_many` for one sequence.
    """
    offsets = np.array([0, stats.shape[1]], dtype=np.int64)
    columns = features_many(
        np.asarray(stats), offsets, np.asarray(snp_tokens, dtype=bool), features=features, texts=[text]
    )
    return {name: values[0] for name, values in columns.items()}


def features_many(
    values: np.ndarray,
    offsets: np.ndarray,
    snp: np.ndarray,
    *,
    features: Sequence[str],
    texts: Sequence[str | None],
    own: Mapping[str, Sequence] | None = None,
    token_ids: np.ndarray | None = None,
    frequencies: np.ndarray | None = None,
) -> dict[str, list]:
    """The ``features`` of many sequences, as columns of Python values (None where null), in whole-array passes.

    ``values``: (3, N) log p, mu, sigma at the scored tokens of all sequences laid end to end, sequence ``i``
    at ``offsets[i]:offsets[i+1]``; ``snp``: (N,) bool, the scored tokens that cover a SNP site; ``texts``: each
    sequence's bases for zlib_bytes (None for a neighbor, whose zlib_bytes is null); ``own``: the own-pass
    features (:func:`own_pass`), one value per sequence, as the scoring job computed them; ``token_ids``: (N,)
    the scored tokens' ids and ``frequencies`` the smoothed frequency of every token id, for DC-PDD.
    """
    for name in features:
        if not known_feature(name):
            raise InputError(f"unknown per-sequence feature '{name}' (an attack module declares it)")
    counts = np.diff(offsets)
    logp = values[0].astype(np.float64)
    out: dict[str, list] = {}
    stored = None  # the float16 values of the per-token table, as float64
    for name in features:
        if name == "n_tokens":
            out[name] = counts.tolist()
        elif name == "loss":
            out[name] = _nulls(segment_means(-logp, offsets), counts == 0)
        elif name == "snp_loss":
            snp_counts = np.bincount(segment_ids(offsets)[snp], minlength=len(counts)).astype(np.int64)
            out[name] = _nulls(segment_means(-logp[snp], offsets_of(snp_counts)), snp_counts == 0)
        elif name == "zlib_bytes":
            out[name] = [len(zlib.compress(t.encode(), 9)) if t is not None else None for t in texts]
        elif own_pass(name):
            if own is None or name not in own:
                raise InputError(f"feature '{name}' needs a model pass of its own, which the caller did not run")
            out[name] = list(own[name])
        elif match := _DC_PDD.match(name):
            if token_ids is None or frequencies is None:
                raise InputError(f"feature '{name}' needs the token ids and the reference's token frequencies")
            means = dc_pdd_means(logp, token_ids, offsets, frequencies=frequencies, a=float(match["a"]))
            out[name] = _nulls(means, counts == 0)
        else:
            match = _MIN_K.match(name)
            if stored is None:
                half = _float16(values) if values.dtype == np.float32 else values.astype(np.float16)
                stored = half.astype(np.float64)
            k = float(match["k"])
            if match.group(1):
                z = (stored[0] - stored[1]) / np.maximum(stored[2], 1e-6)
                out[name] = lowest_fraction_means(z, offsets, k).tolist()
            else:
                out[name] = lowest_fraction_means(stored[0], offsets, k).tolist()
    return out


def _nulls(values: np.ndarray, null: np.ndarray) -> list:
    out = values.tolist()
    for i in np.flatnonzero(null).tolist():
        out[i] = None
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

    def write(self, columns: Mapping[str, list] | pa.Table) -> None:
        """Append ``columns`` (a table of this schema, or its columns as lists) as one row group."""
        if isinstance(columns, pa.Table):
            table = columns.select(self.schema.names)
        else:
            table = pa.Table.from_pydict(dict(columns), schema=self.schema)
        if table.num_rows:
            self._writer.write_table(table)
            self.rows += table.num_rows

    def close(self, exc: BaseException | None = None) -> None:
        try:
            self._writer.close()  # writes the footer, which may find the disk full
        except BaseException as error:
            self._atomic.__exit__(type(error), error, error.__traceback__)  # removes the temporary at once
            raise
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


# Window-only features: no neighbor aggregates.
_NOT_AGGREGATED = ("n_tokens", "zlib_bytes")


def _aggregated(feature: str) -> bool:
    """Whether the per-window table holds neighbor aggregates of ``feature``: not of window-only features."""
    return feature not in _NOT_AGGREGATED and not own_pass(feature)


def _groups_in_order(probs_by_kind: Mapping[str, Iterable[float]]) -> list[tuple[str, float | None]]:
    """The (kind, p) groups of the per-window table in column order: snp first, each kind pooled, then by p."""
    order: list[tuple[str, float | None]] = []
    for kind in sorted(probs_by_kind, key=lambda k: (k != "snp", k)):
        order += [(kind, None), *((kind, p) for p in sorted(set(probs_by_kind[kind])))]
    return order


def _aggregate(neighbors: pd.DataFrame, features: Sequence[str], window_ids) -> dict[str, np.ndarray]:
    """Per window: mean, std and count of each feature over each kind and each (kind, p)."""
    out: dict[str, np.ndarray] = {}
    probs = {kind: of_kind.dropna().unique().tolist() for kind, of_kind in neighbors.groupby("kind").prob}
    for kind, prob in _groups_in_order(probs):
        of_kind = neighbors[neighbors.kind == kind]
        grouped = (of_kind if prob is None else of_kind[of_kind.prob == prob]).groupby("window_id", sort=False)
        out[neighbor_count_column(kind, prob)] = grouped.size().reindex(window_ids, fill_value=0).to_numpy(np.int64)
        for feature in features:
            for stat in ("mean", "std"):
                values = getattr(grouped[feature], stat)()
                out[neighbor_column(kind, prob, feature, stat=stat)] = values.reindex(window_ids).to_numpy(np.float64)
    return out


def window_table(sequences: pd.DataFrame, ranges: Sequence[str] = ()) -> pd.DataFrame:
    """One row per window: its own features and the neighbor aggregates (one shard's sequences at a time), then
    the range statistics named in ``ranges`` (:mod:`.ranges`, RaMIA's trimmed means; none unless configured)."""
    features = [c for c in sequences.columns if c not in ID_COLUMNS]
    windows = sequences[sequences.kind == "window"]
    window_ids = windows.window_id.to_numpy()
    table = {"window_id": window_ids}
    for feature in features:
        table[feature] = windows[feature].to_numpy()
    neighbor_features = [f for f in features if _aggregated(f)]
    table |= _aggregate(sequences[sequences.kind != "window"], neighbor_features, window_ids)
    table |= range_aggregates(sequences, window_ids, _range_specs(ranges))
    return pd.DataFrame(table)


def _range_specs(ranges: Sequence[str]) -> list[RangeSpec]:
    specs = [parse_range_column(name) for name in ranges]
    unknown = [name for name, spec in zip(ranges, specs, strict=True) if spec is None]
    if unknown:
        raise InputError(f"unknown range statistic '{unknown[0]}' (an attack module declares it in reductions)")
    return specs


def reduce_shards(paths: Sequence[str | os.PathLike], out_path: str | os.PathLike, ranges: Sequence[str] = ()) -> int:
    """The per-window table of a model from its per-sequence feature shards; returns its row count.

    Streamed: a first pass reads only the shards' ``kind`` and ``prob`` columns to fix the table's columns (the
    union of every shard's neighbor groups); the second reduces one shard at a time to its windows' rows and
    writes them as one Parquet row group before reading the next. Memory is that of one shard, whatever the
    number of windows. A shard that lacks a group another has (a tiny shard) gets count 0 and null statistics
    for it.
    """
    with atomic_outputs(out_path) as (tmp,):
        if not paths:
            pq.write_table(pa.table({"window_id": pa.array([], pa.string())}), tmp, compression="zstd")
            return 0
        schema = _window_schema(paths, ranges)
        counts = [f.name for f in schema if f.name.startswith("nbr_") and f.name.endswith("_n")]
        rows = 0
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for path in paths:
                part = window_table(pd.read_parquet(path), ranges).reindex(columns=schema.names)
                part[counts] = part[counts].fillna(0)
                writer.write_table(pa.Table.from_pandas(part, schema=schema, preserve_index=False))
                rows += len(part)
    return rows


def _window_schema(paths: Sequence[str | os.PathLike], ranges: Sequence[str] = ()) -> pa.Schema:
    """Columns of the per-window table of these shards: window id, own features, then each neighbor group's
    count, mean and std per feature, in :func:`window_table`'s order over the union of the shards' groups."""
    source = pq.read_schema(paths[0])
    features = [name for name in source.names if name not in ID_COLUMNS]
    groups: dict[str, set[float]] = {}
    for path in paths:
        ids = pq.read_table(path, columns=["kind", "prob"]).to_pandas()
        neighbors = ids[ids.kind != "window"]
        for kind, probs in neighbors.groupby("kind", sort=False).prob:
            groups.setdefault(kind, set()).update(probs.dropna().unique().tolist())
    fields = [pa.field("window_id", pa.string()), *(source.field(f) for f in features)]
    for kind, prob in _groups_in_order(groups):
        fields.append(pa.field(neighbor_count_column(kind, prob), pa.int64()))
        for feature in (f for f in features if _aggregated(f)):
            for stat in ("mean", "std"):
                fields.append(pa.field(neighbor_column(kind, prob, feature, stat=stat), pa.float64()))
    # Range statistics last, as window_table adds them; a shard without a range's points holds NaN there.
    fields += [pa.field(spec.column, pa.float64()) for spec in _range_specs(ranges)]
    return pa.schema(fields)


def read_window_features(
    path: str | os.PathLike, window_ids: Sequence[str], columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """A model's per-window table (``columns`` only, if given), indexed by window id, in ``window_ids`` order.

    Read a row group at a time into one preallocated array per column, then put in order column by column: the
    job holds the table about once (plus one row group and one column), not the three or four copies that a
    whole-table read, its pandas conversion and its reordering make.
    """
    source = pq.ParquetFile(path)
    names = source.schema_arrow.names
    wanted = [c for c in (columns if columns is not None else names) if c != "window_id" and c in names]
    ids = source.read(columns=["window_id"]).column(0).to_numpy(zero_copy_only=False)
    order = pd.Index(ids).get_indexer(list(window_ids))
    if (order < 0).any():
        missing = list(window_ids)[int(np.flatnonzero(order < 0)[0])]
        raise InputError(f"{path} has no features for window {missing}; re-run the scoring of that model")
    del ids
    values: dict[str, np.ndarray] = {}
    start = 0
    for group in range(source.num_row_groups):
        part = source.read_row_group(group, columns=wanted)
        for name in wanted:
            column = part.column(name)
            # Nulls (a window without SNP tokens) become NaN, as pandas reads them.
            array = column.to_numpy(zero_copy_only=False) if column.null_count else column.to_numpy()
            if name not in values:
                values[name] = np.empty(source.metadata.num_rows, dtype=array.dtype)
            elif array.dtype.kind == "f" and values[name].dtype.kind != "f":
                values[name] = values[name].astype(np.float64)  # an integer column with nulls, as pandas reads it
            values[name][start : start + part.num_rows] = array
        start += part.num_rows
    for name in wanted:  # a table without rows
        values.setdefault(name, np.empty(0))
    identity = np.array_equal(order, np.arange(len(order))) and len(order) == source.metadata.num_rows
    frame = pd.DataFrame(
        {name: values.pop(name) if identity else values.pop(name)[order] for name in wanted},
        index=pd.Index(list(window_ids), name="window_id"),
        copy=False,
    )
    return frame
