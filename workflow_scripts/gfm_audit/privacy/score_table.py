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

import numpy as np
import pyarrow as pa

from ..tokens import Encoded


def build_table(
    records: Sequence,
    encodings: Sequence[Encoded],
    positions: Sequence[np.ndarray],
    *,
    stats: Sequence[np.ndarray],
    snp_offsets: Mapping[str, np.ndarray],
    schema: pa.Schema,
) -> pa.Table:
    """Rows of ``records`` (``SeqRecord``) with the (3, n) ``stats`` (log p, mean, std) at token ``positions``."""
    n = len(records)
    counts = np.fromiter((len(p) for p in positions), dtype=np.int64, count=n)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    values = np.concatenate([np.asarray(s, dtype=np.float32).reshape(3, -1) for s in stats], axis=1) if n else None
    if values is None:
        values = np.zeros((3, 0), dtype=np.float32)
    logp = values[0].astype(np.float64)

    # Token spans at the scored positions, from the encodings laid end to end.
    n_ids = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=n)
    first_id = np.cumsum(n_ids) - n_ids
    flat = (np.concatenate(positions).astype(np.int64) if n else np.zeros(0, np.int64)) + np.repeat(first_id, counts)
    start = _cat([e.start for e in encodings], np.int32)[flat]
    end = _cat([e.end for e in encodings], np.int32)[flat]
    special = _cat([e.special for e in encodings], bool)
    # Tokens over bases that stand for no DNA (where Encoded flags them): counted, never SNP tokens.
    excluded = _cat([e.excluded for e in encodings], bool) if n and hasattr(encodings[0], "excluded") else None
    not_scorable = special[flat] if excluded is None else special[flat] | excluded[flat]

    seq_of = np.repeat(np.arange(n, dtype=np.int64), counts)
    loss = _segment_means(-logp, offsets, counts)
    snp = _covers_snp(records, snp_offsets, seq_of, start, end) & ~not_scorable
    snp_counts = np.bincount(seq_of[snp], minlength=n).astype(np.int64)
    snp_offsets_flat = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(snp_counts, out=snp_offsets_flat[1:])
    snp_loss = _segment_means(-logp[snp], snp_offsets_flat, snp_counts)

    half = _float16(values)
    list_offsets = pa.array(offsets.astype(np.int32))
    columns = {
        "sequence_id": pa.array([r.seq_id for r in records], pa.string()),
        "window_id": pa.array([r.window_id for r in records], pa.string()),
        "kind": pa.array([r.kind for r in records], pa.string()),
        "prob": pa.array([r.prob for r in records], pa.float64()),
        "replicate": pa.array([r.replicate for r in records], pa.int32()),
        "n_tokens": pa.array(counts.astype(np.int32)),
        "n_excluded": None,
        "loss": pa.array(loss, pa.float64(), mask=counts == 0),
        "snp_loss": pa.array(snp_loss, pa.float64(), mask=snp_counts == 0),
        "token_logprob": pa.ListArray.from_arrays(list_offsets, pa.array(half[0])),
        "token_mean": pa.ListArray.from_arrays(list_offsets, pa.array(half[1])),
        "token_std": pa.ListArray.from_arrays(list_offsets, pa.array(half[2])),
        "token_start": pa.ListArray.from_arrays(list_offsets, pa.array(start)),
        "token_end": pa.ListArray.from_arrays(list_offsets, pa.array(end)),
    }
    if "n_excluded" in schema.names:
        token_seq = np.repeat(np.arange(n, dtype=np.int64), n_ids)
        n_excluded = np.zeros(n, np.int64) if excluded is None else np.bincount(token_seq[excluded], minlength=n)
        columns["n_excluded"] = pa.array(n_excluded.astype(np.int32))
    return pa.Table.from_arrays([columns[name] for name in schema.names], schema=schema)


def _float16(values: np.ndarray) -> np.ndarray:
    """``values.astype(np.float16)``, through torch's vectorised conversion: the same IEEE round-to-nearest-even
    halves bit for bit (a test compares them), about 20 times faster than NumPy's on x86."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32)).half().numpy()


def _cat(arrays: list[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(arrays).astype(dtype, copy=False) if arrays else np.zeros(0, dtype=dtype)


def _segment_means(x: np.ndarray, offsets: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Mean of each segment ``x[offsets[i]:offsets[i+1]]``; 0 where a segment is empty (masked by the caller).

    ``np.add.reduceat`` sums each segment with the same pairwise summation as ``x[a:b].mean()``, so the means
    are bit for bit those of a loop over segments."""
    out = np.zeros(len(counts), dtype=np.float64)
    full = counts > 0
    if full.any():
        out[full] = np.add.reduceat(x, offsets[:-1][full]) / counts[full]
    return out


def _covers_snp(records, snp_offsets, seq_of, start, end) -> np.ndarray:
    """Whether each token's span ``[start, end)`` holds a SNP site of its sequence's window.

    Offsets of every sequence are keyed by (sequence index, offset) in one sorted array, so that one
    ``searchsorted`` counts, per token, the sites below its end minus those below its start."""
    empty = np.zeros(0, dtype=np.int64)
    per_seq = [np.asarray(snp_offsets.get(r.window_id, empty), dtype=np.int64) for r in records]
    if not per_seq or not any(len(o) for o in per_seq):
        return np.zeros(len(start), dtype=bool)
    shift = np.int64(1) << np.int64(32)  # window offsets are far below 2**32
    keys = np.sort(
        np.concatenate(per_seq) + np.repeat(np.arange(len(per_seq), dtype=np.int64) * shift, [len(o) for o in per_seq])
    )
    base = seq_of * shift
    hits = np.searchsorted(keys, base + end, side="left") - np.searchsorted(keys, base + start, side="left")
    return hits > 0
