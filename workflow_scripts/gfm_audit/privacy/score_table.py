"""The per-sequence score table built from concatenated arrays and offsets.

One row per sequence, with its per-token arrays as Arrow list columns. The
lists are built from one flat array of values and one array of offsets
(``ListArray.from_arrays``) and the per-sequence means from segment sums
(``np.add.reduceat``), so the cost is a few NumPy passes over all tokens, not
NumPy calls per sequence. The table is the one
:func:`gfm_audit.privacy.scoring._table` built with a loop over sequences:
same schema, values and chunking (a test compares them).

``loss`` is the mean negative log-likelihood over a sequence's scored tokens,
-(1/n) sum_t log p(x_t | context); ``snp_loss`` the same mean over the scored
tokens that cover a SNP site of the sequence's window (null if none).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ..ragged import Ragged, segment_ids, segment_means
from ..tokens import Encoded, EncodedBatch, covering_many


@dataclass(frozen=True)
class ScoredTokens:
    """The scored tokens of many sequences laid end to end: what the score table and the per-sequence features
    are built from. Sequence ``i`` holds ``offsets[i]:offsets[i+1]`` of the flat arrays."""

    offsets: np.ndarray  # (n + 1,) int64
    values: np.ndarray  # (3, N) float32: log p, mean, std
    start: np.ndarray  # (N,) int32 base span of each scored token
    end: np.ndarray  # (N,) int32
    snp: np.ndarray  # (N,) bool: the token covers a SNP site of its sequence's window
    n_excluded: np.ndarray  # (n,) int64 tokens that stand for no DNA
    ids: np.ndarray | None = None  # (N,) int64 token id of each scored token (DC-PDD's frequencies are per id)

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def logp(self) -> np.ndarray:
        return self.values[0].astype(np.float64)


def scored_tokens(
    records: Sequence,
    encodings: Sequence[Encoded],
    positions: Sequence[np.ndarray],
    *,
    stats: Sequence[np.ndarray],
    snp_offsets: Mapping[str, np.ndarray],
) -> ScoredTokens:
    """Lay ``stats`` (log p, mean, std at token ``positions``) of ``records`` end to end with their token spans,
    SNP flags and excluded counts."""
    batch = EncodedBatch.of(encodings)
    positions = Ragged.of(positions, empty=np.zeros(0, dtype=np.int64))
    values = Ragged.of(stats, empty=np.zeros((3, 0), dtype=np.float32)).flat
    offsets = positions.offsets
    # Token indices of the scored positions within the flat encodings.
    flat = positions.flat.astype(np.int64, copy=False) + np.repeat(batch.offsets[:-1], positions.counts)
    empty = np.zeros(0, dtype=np.int64)
    snp_of = [snp_offsets.get(r.window_id, empty) for r in records]
    # Tokens over bases that stand for no DNA are counted, never SNP tokens (covering_many keeps scorable ones).
    snp = covering_many(batch, snp_of)[flat]
    n_excluded = np.zeros(len(batch), dtype=np.int64)
    if batch.excluded.any():
        n_excluded = np.bincount(segment_ids(batch.offsets)[batch.excluded], minlength=len(batch)).astype(np.int64)
    return ScoredTokens(offsets, values, batch.start[flat], batch.end[flat], snp, n_excluded, batch.ids[flat])


def build_table(
    records: Sequence,
    encodings: Sequence[Encoded],
    positions: Sequence[np.ndarray],
    *,
    stats: Sequence[np.ndarray],
    snp_offsets: Mapping[str, np.ndarray],
    schema: pa.Schema,
    scored: ScoredTokens | None = None,
) -> pa.Table:
    """Rows of ``records`` (``SeqRecord``) with the (3, n) ``stats`` (log p, mean, std) at token ``positions``
    (``scored``: the same laid end to end, when the caller has it already)."""
    if scored is None:
        scored = scored_tokens(records, encodings, positions, stats=stats, snp_offsets=snp_offsets)
    n = len(records)
    counts, offsets = scored.counts, scored.offsets
    logp = scored.logp
    loss = segment_means(-logp, offsets)
    snp_counts = np.bincount(segment_ids(offsets)[scored.snp], minlength=n).astype(np.int64)
    snp_loss = segment_means(-logp[scored.snp], np.concatenate(([0], np.cumsum(snp_counts))))

    half = _float16(scored.values)
    list_offsets = pa.array(offsets.astype(np.int32))
    columns = {
        "sequence_id": pa.array([r.seq_id for r in records], pa.string()),
        "window_id": pa.array([r.window_id for r in records], pa.string()),
        "kind": pa.array([r.kind for r in records], pa.string()),
        "prob": pa.array([r.prob for r in records], pa.float64()),
        "replicate": pa.array([r.replicate for r in records], pa.int32()),
        "n_tokens": pa.array(counts.astype(np.int32)),
        "n_excluded": pa.array(scored.n_excluded.astype(np.int32)),
        "loss": pa.array(loss, pa.float64(), mask=counts == 0),
        "snp_loss": pa.array(snp_loss, pa.float64(), mask=snp_counts == 0),
        "token_logprob": pa.ListArray.from_arrays(list_offsets, pa.array(half[0])),
        "token_mean": pa.ListArray.from_arrays(list_offsets, pa.array(half[1])),
        "token_std": pa.ListArray.from_arrays(list_offsets, pa.array(half[2])),
        "token_start": pa.ListArray.from_arrays(list_offsets, pa.array(scored.start)),
        "token_end": pa.ListArray.from_arrays(list_offsets, pa.array(scored.end)),
    }
    return pa.Table.from_arrays([columns[name] for name in schema.names], schema=schema)


def _float16(values: np.ndarray) -> np.ndarray:
    """``values.astype(np.float16)``, through torch's vectorised conversion: the same IEEE round-to-nearest-even
    halves bit for bit (a test compares them), about 20 times faster than NumPy's on x86."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32)).half().numpy()
