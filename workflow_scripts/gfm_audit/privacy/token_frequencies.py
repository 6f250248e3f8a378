"""How often each token of a model's tokenizer occurs in the reference genome: DC-PDD's reference corpus.

DC-PDD (:mod:`.attacks.dc_pdd`) calibrates a token's probability by its frequency in a reference corpus: for a
text LM a public corpus (C4) tokenized by the model's tokenizer; here, the reference FASTA itself, read as the
workflow reads windows (upper case: :mod:`.windows` upper-cases every window, so soft-masked bases count as their
upper-case base). One streaming pass: each contig is fetched through its ``.fai`` index a chunk at a time, so
memory is that of one chunk whatever the genome's or a chromosome's size.

What is counted depends on how the tokenizer segments DNA (:func:`gfm_audit.tokens._vectorised.layout`, derived
from the tokenizer's own output):

* character tokenizers (HyenaDNA, Caduceus, the demo LM): every base is one token, so each base counts once for
  its token (N too, where the tokenizer has a token for it);
* fixed k-mer tokenizers (Nucleotide Transformer's 6-mers): **overlapping** k-mers, every k-mer of A/C/G/T that
  starts at any offset, counted once, never across an N or another base outside A/C/G/T, nor across records.
  The tokenizer cuts a window into non-overlapping k-mers from the window's start (and from the base after each
  N), and windows start at any offset of the genome: the k frames are equally likely, and the non-overlapping
  counts of the k frames add up to the overlapping count, so the overlapping counts give the same relative
  frequencies as tokenizing the genome in every frame. Chunk borders lose nothing: a chunk counts the k-mers
  that start in it, reading k - 1 bases beyond its end. A single-base token of A/C/G/T occurs only in a tail
  shorter than k (the end of a window whose length is not a multiple of k, or before an N) and counts 0 here:
  DC-PDD's smoothing gives it the frequency of a token never seen; choose windows.length a multiple of k.
  N and other bases outside A/C/G/T count once per base for their one-base token where the tokenizer has one
  (Nucleotide Transformer's N); a tokenizer that cuts them otherwise stands for no DNA there and is not counted;
* any other tokenizer (BPE: DNABERT-2, GENA-LM), whose segmentation depends on the context and cannot be
  counted from k-mers: each contig is cut into consecutive pieces of ``piece_length`` bases (windows.length: the
  unit the model scores) and every piece is tokenized by the tokenizer's own call, as a window is; the tokens
  that stand for DNA are counted. This is DC-PDD's own procedure (the reference corpus tokenized document by
  document), with the genome's pieces as the documents; its cost is a tokenizer call per base, so a genome takes
  the tokenizer's throughput (minutes to an hour for a human genome), once per tokenizer.

Special tokens (CLS, SEP, padding) and tokens that stand for no DNA are never scored and never counted. The
table (:func:`write_token_frequencies`) has one row per token id of the tokenizer, zero counts included, so that
its row count is the vocabulary size of DC-PDD's Laplace smoothing.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pysam

from ..errors import InputError
from ..outputs import atomic_outputs
from ..tokens import encode_many
from ..tokens._vectorised import Layout, layout

log = logging.getLogger(__name__)

CHUNK_BASES = 1 << 22  # bases fetched at a time: a few tens of MiB of working arrays for k-mer codes


def vocabulary_size(tokenizer) -> int:
    """Token ids run over 0 .. vocabulary_size - 1: ``len(tokenizer)`` (added tokens included)."""
    return len(tokenizer)


def count_token_frequencies(
    fasta: str | os.PathLike,
    tokenizer,
    *,
    piece_length: int,
    chunk_bases: int = CHUNK_BASES,
    model: str = "model",
) -> np.ndarray:
    """(vocabulary_size,) int64: how often each token id occurs in the indexed ``fasta`` (module docstring)."""
    size = vocabulary_size(tokenizer)
    lay = layout(tokenizer)
    counts = np.zeros(size, dtype=np.int64)
    start_time, bases = time.perf_counter(), 0
    with pysam.FastaFile(os.fspath(fasta)) as fa:
        for contig, length in zip(fa.references, fa.lengths, strict=True):
            if lay is None:
                _count_pieces(fa, contig, length, tokenizer, counts, piece_length, chunk_bases, model)
            else:
                _count_with_layout(fa, contig, length, lay, counts, chunk_bases)
            bases += length
    how = f"tokenized in pieces of {piece_length} bases" if lay is None else _describe(lay)
    log.info(
        "model %s: %d tokens counted over %d bases (%s) in %.1f s",
        model,
        int(counts.sum()),
        bases,
        how,
        time.perf_counter() - start_time,
    )
    return counts


def _describe(lay: Layout) -> str:
    return "one token per base" if lay.k == 1 else f"overlapping {lay.k}-mers"


def _chunks(fa: pysam.FastaFile, contig: str, length: int, chunk_bases: int, extra: int = 0) -> Iterator[str]:
    """The contig's bases upper-cased, ``chunk_bases`` at a time, each with up to ``extra`` bases of the next."""
    for begin in range(0, length, chunk_bases):
        end = min(begin + chunk_bases + extra, length)
        yield fa.fetch(contig, begin, end).upper()


def _count_with_layout(fa, contig: str, length: int, lay: Layout, counts: np.ndarray, chunk_bases: int) -> None:
    k = lay.k
    # The upper-case codes of A/C/G/T (the layout's code table may also fold lower case, which is gone already).
    code = np.full(256, -1, dtype=np.int64)
    for i, base in enumerate(b"ACGT"):
        code[base] = i
    # One-base tokens counted per base: every byte of a character tokenizer; for k-mers, the bytes outside
    # A/C/G/T that the layout encodes as one token each (``runs``: Nucleotide Transformer's N).
    single = lay.single.copy()
    if k > 1:
        single[code >= 0] = -1
        if lay.mode != "runs":
            single[:] = -1
    for chunk in _chunks(fa, contig, length, chunk_bases, extra=k - 1):
        buf = np.frombuffer(chunk.encode("latin-1"), dtype=np.uint8)
        own = buf[:chunk_bases]  # the bases of this chunk; the rest is the next chunk's, read for k-mers only
        per_byte = np.bincount(own, minlength=256)
        present = np.flatnonzero(per_byte)
        ids = single[present]
        np.add.at(counts, ids[ids >= 0], per_byte[present][ids >= 0])
        if k > 1:
            kmers = _kmer_values(code[buf], k, starts=len(own))
            if len(kmers):
                per_kmer = np.bincount(kmers, minlength=4**k)
                seen = np.flatnonzero(per_kmer)
                np.add.at(counts, lay.kmer[seen], per_kmer[seen])


def _kmer_values(codes: np.ndarray, k: int, *, starts: int) -> np.ndarray:
    """Base-4 values of the k-mers of A/C/G/T (``codes`` 0-3, -1 elsewhere) starting at 0 .. starts - 1."""
    n = min(starts, len(codes) - k + 1)
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    # A k-mer is valid when its k codes hold no -1: count the -1s in each k-wide window by a cumulative sum.
    bad = np.concatenate(([0], np.cumsum(codes < 0)))
    valid = (bad[k : k + n] - bad[:n]) == 0
    value = np.zeros(n, dtype=np.int64)
    for t in range(k):
        value = value * 4 + np.maximum(codes[t : t + n], 0)
    return value[valid]


def _count_pieces(fa, contig, length, tokenizer, counts, piece_length, chunk_bases, model) -> None:
    # Chunks hold whole pieces, so no piece is cut by a chunk border.
    per_chunk = max(1, chunk_bases // piece_length) * piece_length
    for begin, text in zip(range(0, length, per_chunk), _chunks(fa, contig, length, per_chunk), strict=True):
        pieces = [text[i : i + piece_length] for i in range(0, len(text), piece_length)]
        ids = [f"{contig}:{begin + i * piece_length}" for i in range(len(pieces))]
        batch = encode_many(tokenizer, pieces, seq_ids=ids, model=model)
        found = batch.ids[batch.scorable]
        if len(found) and int(found.max()) >= len(counts):
            raise InputError(
                f"model '{model}': its tokenizer gives token id {int(found.max())}, beyond its vocabulary of "
                f"{len(counts)} tokens; the tokenizer's files disagree with each other"
            )
        counts += np.bincount(found, minlength=len(counts))


# --- the table ---------------------------------------------------------------------------------------------


def write_token_frequencies(counts: np.ndarray, tokenizer, path: str | os.PathLike) -> None:
    """TSV: ``token_id``, ``token`` (the tokenizer's string for it) and ``count``, one row per token id."""
    ids = np.arange(len(counts))
    tokens = tokenizer.convert_ids_to_tokens(ids.tolist())
    table = pd.DataFrame({"token_id": ids, "token": tokens, "count": counts})
    with atomic_outputs(path) as (tmp,):
        table.to_csv(tmp, sep="\t", index=False)


def read_token_frequencies(path: str | os.PathLike, tokenizer, *, model: str) -> np.ndarray:
    """The counts of a table written by :func:`write_token_frequencies`, checked against ``tokenizer``: the same
    vocabulary size and token strings (a table counted for another tokenizer would give the wrong tokens'
    frequencies without an error)."""
    table = pd.read_csv(path, sep="\t", dtype={"token": str}, keep_default_na=False)
    size = vocabulary_size(tokenizer)
    tokens = tokenizer.convert_ids_to_tokens(list(range(size)))
    if len(table) != size or not table.token_id.eq(np.arange(len(table))).all() or table.token.tolist() != tokens:
        raise InputError(
            f"token frequency table {os.fspath(path)} was not counted for the tokenizer of model '{model}' "
            f"({len(table)} rows for {size} tokens, or other token strings); delete it so that the workflow "
            "counts it again"
        )
    return table["count"].to_numpy(np.int64)
