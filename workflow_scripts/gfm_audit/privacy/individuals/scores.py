"""Scoring the haplotype windows, and reading the scores back: the one adapter to the scoring stage's tables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from ...models import ModelSpec


def score_haplotypes(
    spec: ModelSpec,
    *,
    fasta_path: str,
    alleles_path: str,
    batch_size: int,
    seed: int,
    out_path: str | os.PathLike,
) -> int:
    """Score every haplotype window with one model (scoring.score_sequences); the alt alleles are its SNP sites.

    Masked models in ``sampled`` mode thus always score the tokens over the haplotype's own alt alleles.
    """
    from ...fasta import read_fasta
    from ..haplotypes import read_alleles
    from ..scoring import SeqRecord, score_sequences, write_table

    sequences = read_fasta(fasta_path)
    records = [SeqRecord(sid, sid, "haplotype", None, None, seq) for sid, seq in sequences.items()]
    offsets = alt_offsets(read_alleles(alleles_path))
    table = score_sequences(spec, records, snp_offsets=offsets, batch_size=batch_size, seed=seed)
    write_table(table, out_path)
    return table.num_rows


def sequence_features(scores: pd.DataFrame, offsets: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Per sequence: mean NLL ``loss`` and the summed / counted log p of tokens covering ``offsets[seq_id]``.

    The only place that reads the scoring stage's per-token columns (``token_logprob``, ``token_start``,
    ``token_end``); a token covers offset o when start <= o < end.
    """
    rows = []
    empty = np.zeros(0, dtype=np.int64)
    for r in scores.itertuples(index=False):
        where = offsets.get(r.sequence_id, empty)
        logp = np.asarray(r.token_logprob, dtype=np.float64)
        if len(where):
            start, end = np.asarray(r.token_start), np.asarray(r.token_end)
            cover = ((start[:, None] <= where[None, :]) & (where[None, :] < end[:, None])).any(axis=1)
        else:
            cover = np.zeros(len(logp), dtype=bool)
        rows.append((r.sequence_id, float(r.loss), float(logp[cover].sum()), int(cover.sum()), float(logp.sum())))
    return pd.DataFrame(rows, columns=["seq_id", "loss", "alt_logprob", "alt_tokens", "logprob"]).set_index("seq_id")


def alt_offsets(alleles: pd.DataFrame) -> dict[str, np.ndarray]:
    """{seq_id: offsets of the non-reference alleles that haplotype carries}."""
    alt = alleles[alleles.allele != alleles.ref]
    return {sid: g.offset.to_numpy(np.int64) for sid, g in alt.groupby("seq_id", sort=False)}
