"""Stage 4: per-token log-probabilities of every window and neighbor under one model.

Causal models: one forward pass; the log-probability of token t comes from
the logits at t-1. Masked models: pseudo-log-likelihood (Salazar et al. 2020):
token t is replaced by the mask token and scored from that pass. ``exact``
masks every token; ``sampled`` masks only the tokens covering a seeded subset
of base offsets (the window's SNP sites plus random positions), the same
subset for a window and all its neighbors, so their scores compare like with
like; ``stride`` scores every token as ``exact`` does from k passes per sequence
(:func:`stride_passes`). A masked model is never scored without masking.

For min-k%++ every scored token also gets the mean and standard deviation of
log p under the model's predictive distribution at that position:
mu = sum_v p(v) log p(v), sigma^2 = sum_v p(v) (log p(v))^2 - mu^2
(Zhang et al. 2024).

Tokens that stand for no DNA (``tokens.Encoded.excluded``: an ``<oov>`` or
unknown token over a k-mer tail or N) are never scored; each row counts them
(``n_excluded``), and a sequence where they cover more than
``scoring.max_excluded_share`` of the bases stops the run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pysam

from ..determinism import numeric_runtime
from ..errors import InputError
from ..fasta import read_fasta
from ..gfm.loader import accepts_attention_mask, remote_code_error, runs_remote_code
from ..models import ModelSpec, load_model, load_tokenizer, max_tokens, read_checkpoint_config
from ..outputs import atomic_outputs
from ..peak_memory import peak_rss_mib
from ..prefetch import InOrder, prefetch
from ..ragged import Ragged, offsets_of, ranges, segment_ids, segment_sums
from ..sampling import sample_indices
from ..tokens import Encoded, EncodedBatch, covering_many, encode_many, tokens_covering
from .dc_pdd import smoothed_frequencies
from .features import (
    BASE_FEATURES,
    ShardWriter,
    feature_schema,
    features_many,
    needs_token_frequencies,
    own_pass,
    parse_gradnorm_feature,
    parse_recall_feature,
)
from .flanks import Flanks, read_loci, token_multiple, with_flanks
from .score_table import ScoredTokens, build_table, scored_tokens
from .token_frequencies import read_token_frequencies

log = logging.getLogger(__name__)

PAD_MULTIPLE = 8
MAX_EXCLUDED_SHARE = 0.05
# On a CPU a causal batch's statistics are computed in blocks of about this many logits (1 MiB of float32), so
# that the (rows, V) temporaries of token_statistics stay in a core's cache rather than each streaming the
# whole (B, L, V) array through memory. For Evo's 512-token vocabulary in one piece this was most of what the
# scoring path adds to the forward of the tiny fixtures (benchmarks/bench_families.py); in blocks it is about
# 2.5 times faster (2**17 to 2**19 alike; 2**14 slower, Python's share per block).
STATISTICS_BLOCK = 2**18
# Blocks only where every block's logits are a multiple of this count: then all of them take the vectorised
# loops of the elementwise kernels (exp) on any CPU, as in one piece, with no scalar tail whose rounding could
# differ, so the statistics are bit for bit those of one piece. Other vocabularies are computed in one piece.
_BLOCK_VOCAB_MULTIPLE = 64

SCHEMA = pa.schema(
    [
        ("sequence_id", pa.string()),
        ("window_id", pa.string()),
        ("kind", pa.string()),  # window | snp | control
        ("prob", pa.float64()),  # null for the window itself
        ("replicate", pa.int32()),  # null for the window itself
        ("n_tokens", pa.int32()),  # scored tokens
        ("n_excluded", pa.int32()),  # tokens that stand for no DNA (<oov>, unknown), not scored
        ("loss", pa.float64()),  # mean NLL over scored tokens
        ("snp_loss", pa.float64()),  # mean NLL over scored tokens covering SNP sites; null if none
        ("token_logprob", pa.list_(pa.float16())),
        ("token_mean", pa.list_(pa.float16())),
        ("token_std", pa.list_(pa.float16())),
        ("token_start", pa.list_(pa.int32())),
        ("token_end", pa.list_(pa.int32())),
    ]
)


@dataclass(frozen=True)
class SeqRecord:
    seq_id: str
    window_id: str
    kind: str
    prob: float | None  # None for a window
    replicate: int | None
    text: str


# --- inputs ------------------------------------------------------------------


def read_window_ids(windows_fasta: str) -> list[str]:
    with pysam.FastxFile(windows_fasta) as fh:
        return [r.name for r in fh]


def load_sequences(
    windows_fasta: str, neighbors_fasta: str, neighbors_tsv: str, *, window_ids: Sequence[str]
) -> list[SeqRecord]:
    """Each window followed by its neighbors, in the order of the input files."""
    wanted = set(window_ids)
    windows = read_fasta(windows_fasta, keep=wanted)
    table = pd.read_csv(neighbors_tsv, sep="\t", dtype={"neighbor_id": str, "window_id": str, "kind": str})
    table = table[table.window_id.isin(wanted)]
    meta = {row.neighbor_id: row for row in table.itertuples(index=False)}
    neighbors: dict[str, list[SeqRecord]] = {w: [] for w in window_ids}
    for name, text in read_fasta(neighbors_fasta, keep=meta).items():
        row = meta[name]
        neighbors[row.window_id].append(
            SeqRecord(name, row.window_id, row.kind, float(row.prob), int(row.replicate), text)
        )
    out = []
    for w in window_ids:
        out.append(SeqRecord(w, w, "window", None, None, windows[w]))
        out.extend(neighbors[w])
    return out


def read_snp_offsets(snps_path: str) -> dict[str, np.ndarray]:
    table = pd.read_csv(snps_path, sep="\t", usecols=["window_id", "offset"], dtype={"window_id": str})
    return {w: g["offset"].to_numpy(np.int64) for w, g in table.groupby("window_id", sort=False)}


def sampled_offsets(window_id: str, length: int, *, snp_offsets: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """The base offsets a masked model scores in ``sampled`` mode: SNP sites plus a seeded random fraction."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(window_id.encode())]))
    k = int(round(fraction * length))
    return np.union1d(snp_offsets, sample_indices(length, k, rng))


# --- the numbers ---------------------------------------------------------------


def stride_passes(counts: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The masked copies of the stride pseudo-log-likelihood: which copy masks each scored token.

    For a sequence x with scored tokens s_0 < s_1 < ... < s_{n-1} (the tokens ``exact`` scores), pass j
    (j = 0 .. min(k, n) - 1) masks M_j = {s_r : r ≡ j (mod k)} all at once, and

        PLL_k(x) = sum_j sum_{i in M_j} log p(x_i | x with M_j masked),

    each token scored once, from the pass that masked it: k forward passes instead of n. With k >= n every pass
    masks one token and PLL_k is the pseudo-log-likelihood of Salazar et al. (2020), ``exact``; passes beyond the
    n-th would mask nothing and do not exist. Source: the strided PLL with which GLMap (ai4nucleome/GLMap, 2026)
    profiles the masked models among its 123 genomic LMs.

    ``counts``: (S,) scored tokens per sequence, whose tokens lie end to end in the flat order. Returns ``copy``:
    (sum(counts),) int64, the masked copy of each token, copies numbered sequence by sequence and pass by pass;
    and ``passes``: (S,) int64, min(k, counts), the copies of each sequence.
    """
    counts = np.asarray(counts, dtype=np.int64)
    rank = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(offsets_of(counts)[:-1], counts)
    passes = np.minimum(counts, k)
    return np.repeat(offsets_of(passes)[:-1], counts) + rank % k, passes


def token_statistics(logits, targets):
    """log p(target), and mean and std of log p under the predictive distribution, per position.

    ``logits``: (..., V) float tensor; ``targets``: (...) long tensor.

    With ``l = log_softmax(z)`` and ``p = softmax(z)``: ``mean = sum_v p_v l_v`` and
    ``var = sum_v (p_v l_v) l_v - mean**2`` (the predictive distribution's moments of log p, as min-k%++ uses
    them; Zhang et al. 2024). ``log p(target)`` is ``l`` itself, so the loss does not depend on how ``p`` is
    formed. ``p`` comes from torch's softmax kernel rather than ``exp(l)``: torch's elementwise ``exp`` is slower
    than the one inside its softmax kernels and was the costliest step here on a CPU (over Evo's 512-token
    vocabulary, against a tiny model's forward); and ``p * l`` is reused, in place, for the second moment. Both
    change the mean and std by float32 rounding only (a few 1e-6 on the Evo 2 fixture; the tests bound both
    against float64).
    """
    import torch

    logits = logits.float()
    logp = torch.log_softmax(logits, dim=-1)
    true = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    weighted = torch.softmax(logits, dim=-1).mul_(logp)  # p * log p, a temporary of this function only
    mean = weighted.sum(-1)
    var = weighted.mul_(logp).sum(-1) - mean.square()
    return true, mean, var.clamp_min(0).sqrt()


def _blockwise(logits) -> bool:
    """Whether a causal batch's statistics are computed in blocks (:data:`STATISTICS_BLOCK`): on a CPU, for a
    batch of more than one block whose vocabulary keeps every block a whole number of vector loops."""
    batch, width, vocab = logits.shape
    return (
        logits.device.type == "cpu"
        and width > 1
        and vocab % _BLOCK_VOCAB_MULTIPLE == 0
        and batch * width * vocab > STATISTICS_BLOCK
    )


def _causal_statistics_in_blocks(logits, x, source: np.ndarray):
    """(3, n) statistics of a causal batch at ``source`` (indices into the flattened (B, width - 1) positions
    that have a token before them), as :func:`token_statistics` of ``logits[:, :-1]`` gives them, computed over
    blocks of consecutive rows of the flattened (B * width, V) logits (views, no copy); blocks holding no scored
    row are skipped.

    Every step of :func:`token_statistics` works on one row (log-softmax, sums over the vocabulary) or one element
    at a time, so a row's values do not depend on the rows computed with it. The flattened rows include each
    sequence's last position, which predicts nothing (its target is a stand-in, the next row's first token) and is
    never gathered.
    """
    import torch

    batch, width, vocab = logits.shape
    flat = logits.reshape(batch * width, vocab)
    # Position t - 1 of row b is b * (width - 1) + t - 1 in the (B, width - 1) order, b * width + t - 1 here;
    # its target, token t, is the next entry of the flattened ids.
    at = source + source // (width - 1)
    targets = torch.cat([x.reshape(-1)[1:], x.new_zeros(1)])
    rows = max(1, STATISTICS_BLOCK // vocab)
    stats = torch.empty(3, len(flat), dtype=torch.float32, device=logits.device)
    for start in (int(b) * rows for b in np.unique(at // rows)):
        stop = min(start + rows, len(flat))
        stats[:, start:stop] = torch.stack(token_statistics(flat[start:stop], targets[start:stop]))
    return stats[:, torch.from_numpy(at)]


def _pad_to(n: int, multiple: int = PAD_MULTIPLE) -> int:
    return -(-n // multiple) * multiple


@dataclass(frozen=True)
class ScoringOptions:
    """Switches for the optimisations, all on by default; benchmarks turn them off one at a time.

    ``bucketing``: batches of similar length (sorted by token count);
    ``pad_multiple``: pad batch width to a multiple on CUDA (8 suits tensor cores);
    ``inference_mode``: ``torch.inference_mode`` rather than ``no_grad``;
    ``bf16_autocast``: bf16 autocast for float32 weights on CUDA;
    ``pin_memory``: page-locked host batches for asynchronous copies to CUDA;
    ``prefetch``: batches padded (and pinned) this many ahead in a thread, overlapping the forward (0: off).
    """

    bucketing: bool = True
    pad_multiple: int = PAD_MULTIPLE
    inference_mode: bool = True
    bf16_autocast: bool = True
    pin_memory: bool = True
    prefetch: int = 2


class Scorer:
    """Batched, length-bucketed scoring of encoded sequences with one model."""

    def __init__(
        self,
        model,
        kind: str,
        *,
        pad_id: int,
        mask_id: int | None,
        batch_size: int,
        device: str,
        options: ScoringOptions | None = None,
    ) -> None:
        self.model, self.kind, self.pad_id, self.mask_id = model, kind, pad_id, mask_id
        self.batch_size, self.device = batch_size, device
        self.options = options or ScoringOptions()
        self.tokens_seen = 0
        # A model that takes no attention mask (HyenaDNA, Caduceus) is never given one, and a bidirectional one
        # never sees padding: its batches hold sequences of one length.
        self.accepts_mask = accepts_attention_mask(model)

    def _forward(self, ids: np.ndarray, attention: np.ndarray):
        import torch

        x, a = torch.from_numpy(ids), torch.from_numpy(attention)
        on_gpu = self.device.startswith("cuda")
        if on_gpu and self.options.pin_memory:
            # Page-locked host memory lets the copy run asynchronously (non_blocking) beside the GPU's work.
            x, a = x.pin_memory(), a.pin_memory()
        x, a = x.to(self.device, non_blocking=True), a.to(self.device, non_blocking=True)
        autocast = on_gpu and self.options.bf16_autocast and next(self.model.parameters()).dtype == torch.float32
        # No mask where none is needed lets attention take its fused causal / unmasked path. Causal: padding
        # is on the right and attention looks only left, so real tokens never see it. Masked: only batches
        # with padding need the mask.
        needs_mask = self.kind != "causal" and not bool(attention.all())
        inputs = {"input_ids": x, "attention_mask": a} if needs_mask and self.accepts_mask else {"input_ids": x}
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            logits = self.model(**inputs).logits
        self.tokens_seen += int(attention.sum())
        return logits, x

    def score(
        self,
        encodings: Sequence[Encoded],
        positions: Sequence[np.ndarray],
        progress=None,
        *,
        stride: int | None = None,
    ) -> Ragged:
        """For each sequence, a (3, len(positions)) array: log p, mean, std at those token positions.

        Masked models: each masked copy masks one of ``positions``, or with ``stride`` k the positions of one
        pass of :func:`stride_passes` (k copies per sequence).

        The arrays come laid end to end (:class:`gfm_audit.ragged.Ragged`, offsets those of ``positions``):
        each batch's statistics are gathered at its scored positions on the device and written into the flat
        result in one indexed copy, with no Python loop over sequences.
        """
        import torch

        batch = EncodedBatch.of(encodings)
        positions = Ragged.of(positions, empty=np.zeros(0, dtype=np.int64))
        results = np.zeros((3, len(positions.flat)), dtype=np.float32)
        grad_off = torch.inference_mode if self.options.inference_mode else torch.no_grad
        on_gpu = self.device.startswith("cuda")
        # On a CPU whose forward runs on one thread, a prefetch thread only takes turns with it on the same core.
        depth = self.options.prefetch if on_gpu or torch.get_num_threads() > 1 else 0
        pending = None
        with grad_off():
            for ids, attention, rows in prefetch(self._batches(batch, positions, stride=stride), depth, self._pinned):
                stats = self._statistics(ids, attention, rows)
                # On a GPU the statistics come back asynchronously: batch i's are stored once batch i+1's forward
                # is queued, so the device never waits for the host's bookkeeping (nor the host for the device).
                # Its host arrays stay referenced until then: their asynchronous copies may still be queued.
                if pending is not None:
                    self._store(results, *pending, progress)
                pending = (*(self._to_host(stats) if on_gpu else (stats, None)), rows, (ids, attention))
            if pending is not None:
                self._store(results, *pending, progress)
        return Ragged(results, positions.offsets)

    def _statistics(self, ids: np.ndarray, attention: np.ndarray, rows: _Rows):
        """(3, n) statistics of one batch at its scored rows, on the device."""
        import torch

        logits, x = self._forward(ids, attention)
        if self.kind == "causal" and _blockwise(logits):
            return _causal_statistics_in_blocks(logits, x, rows.source)
        source = torch.from_numpy(rows.source).to(x.device, non_blocking=True)
        if self.kind == "causal":
            # Token t is predicted by the logits at t - 1.
            stats = torch.stack(token_statistics(logits[:, :-1], x[:, 1:]))
            return stats.reshape(3, -1)[:, source]
        targets = torch.from_numpy(rows.targets).to(x.device, non_blocking=True)
        if rows.row is None:
            row = torch.arange(len(rows.source), device=x.device)
        else:
            row = torch.from_numpy(rows.row).to(x.device, non_blocking=True)
        picked = logits[row, source]
        return torch.stack(token_statistics(picked, targets))

    @staticmethod
    def _to_host(stats):
        import torch

        host = torch.empty(stats.shape, dtype=stats.dtype, pin_memory=True)
        host.copy_(stats, non_blocking=True)
        done = torch.cuda.Event()
        done.record()
        return host, done

    @staticmethod
    def _store(results: np.ndarray, stats, done, rows: _Rows, _inputs, progress) -> None:
        if done is not None:
            done.synchronize()
        results[:, rows.dest] = stats.cpu().numpy() if done is None else stats.numpy()
        if progress is not None:
            progress.update(rows.n)

    def _pinned(self, batch):
        # In the prefetch thread: page-locked arrays make the copies to the device asynchronous (non_blocking).
        if not (self.device.startswith("cuda") and self.options.pin_memory):
            return batch
        import torch

        def pin(a):
            return None if a is None else torch.from_numpy(a).pin_memory().numpy()

        ids, attention, rows = batch
        return (
            pin(ids),
            pin(attention),
            replace(rows, source=pin(rows.source), targets=pin(rows.targets), row=pin(rows.row)),
        )

    def _batches(
        self, batch: Sequence[Encoded], positions: Sequence[np.ndarray], *, stride: int | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray, _Rows]]:
        # Everything a batch needs besides the forward is computed here, in the prefetch thread: the padded ids,
        # and the index arrays that move its statistics into the flat result.
        batch = EncodedBatch.of(batch)
        positions = Ragged.of(positions, empty=np.zeros(0, dtype=np.int64))
        lengths = batch.lengths
        order = np.argsort(lengths, kind="stable") if self.options.bucketing else np.arange(len(lengths))
        counts = positions.counts
        if self.kind == "causal":
            for k in range(0, len(order), self.batch_size):
                chunk = order[k : k + self.batch_size]
                ids, attention = self._stack(batch, chunk)
                dest = ranges(positions.offsets[chunk], counts[chunk])
                # Statistics of row b at token t sit at b * (width - 1) + t - 1 of the flattened batch.
                row = np.repeat(np.arange(len(chunk), dtype=np.int64) * (ids.shape[1] - 1), counts[chunk])
                yield ids, attention, _Rows(len(chunk), _as_slice(dest), row + positions.flat[dest] - 1)
        else:
            # One row per masked copy, sequences in bucketed order, copies in order within each: a copy masks one
            # token, or with a stride the tokens of one pass. A batch holds batch_size copies, whatever the mode.
            dest, copy, seq = _masked_copies(positions, order, stride)
            where = positions.flat[dest]
            # Copies start..stop hold tokens first[start]:first[stop]: a batch is cut by copies, not tokens.
            first = offsets_of(np.bincount(copy, minlength=len(seq)))
            for start, stop in self._chunks(lengths[seq]):
                chunk = seq[start:stop]
                ids, attention = self._stack(batch, chunk)
                t0, t1 = int(first[start]), int(first[stop])
                row, p = copy[t0:t1] - start, where[t0:t1]
                targets = ids[row, p]
                ids[row, p] = self.mask_id
                rows = _Rows(t1 - t0, _as_slice(dest[t0:t1]), p, targets, None if stride is None else row)
                yield ids, attention, rows

    def _chunks(self, lengths: np.ndarray) -> Iterator[tuple[int, int]]:
        """(start, stop) of each batch of rows: ``batch_size`` rows, and for a model that takes no attention mask
        only rows of one length (it would see the padding)."""
        changes = np.flatnonzero(np.diff(lengths)) + 1
        start = 0
        while start < len(lengths):
            stop = min(start + self.batch_size, len(lengths))
            if not self.accepts_mask:
                after = changes[np.searchsorted(changes, start, side="right") :]
                if len(after):
                    stop = min(stop, int(after[0]))
            yield start, stop
            start = stop

    def _stack(self, batch: EncodedBatch, chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ids of the sequences ``chunk``, padded on the right, and their attention mask."""
        # Padding to a multiple of 8 feeds GPU tensor cores; on a CPU it would only add padding (and masks).
        # A model without an attention mask would see that padding (a bidirectional one, at every position).
        multiple = self.options.pad_multiple if self.device.startswith("cuda") and self.accepts_mask else 1
        lengths = batch.lengths[chunk]
        width = _pad_to(int(lengths.max()), multiple)
        cols = np.arange(width, dtype=np.int64)
        real = cols < lengths[:, None]
        ids = np.full((len(chunk), width), self.pad_id, dtype=np.int64)
        ids[real] = batch.ids[ranges(batch.offsets[chunk], lengths)]
        return ids, real.astype(np.int64)


def _masked_copies(
    positions: Ragged, order: np.ndarray, stride: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The masked copies of the sequences ``order``: ``dest``, the flat index of each scored token, grouped by
    copy; ``copy``, its copy (non-decreasing); ``seq``, the sequence of each copy. Without a stride every token
    is a copy of its own."""
    counts = positions.counts[order]
    dest = ranges(positions.offsets[order], counts)
    if stride is None:
        return dest, np.arange(len(dest), dtype=np.int64), np.repeat(order, counts)
    copy, passes = stride_passes(counts, stride)
    # Stable: a pass's tokens stay in position order.
    by_copy = np.argsort(copy, kind="stable")
    return dest[by_copy], copy[by_copy], np.repeat(order, passes)


def _as_slice(dest: np.ndarray) -> np.ndarray | slice:
    """``dest`` as a slice when it is one run of consecutive indices (equal-length sequences in order): storing a
    batch's statistics is then one block copy instead of a scatter."""
    if len(dest) and dest[-1] - dest[0] + 1 == len(dest) and bool((np.diff(dest) == 1).all()):
        return slice(int(dest[0]), int(dest[-1]) + 1)
    return dest


@dataclass(frozen=True)
class _Rows:
    """Where a batch's statistics go: ``n`` sequences (causal) or masked tokens; ``dest``: indices (or a slice)
    into the flat result; ``source``: causal, indices into the batch's flattened (B, width - 1) statistics;
    masked, the masked position of each scored token, whose true id is ``targets``; ``row``: the batch row of
    each scored token where a row masks several (stride), else None (row i masks token i)."""

    n: int
    dest: np.ndarray
    source: np.ndarray
    targets: np.ndarray | None = None
    row: np.ndarray | None = None


# The masking modes that score every token standing for DNA.
EVERY_TOKEN = ("exact", "stride")


def scored_positions(enc: Encoded, kind: str, *, masking: str, offsets: np.ndarray | None) -> np.ndarray:
    """Token indices that get a score.

    Causal: every token that stands for DNA and has a token before it. Masked
    exact and stride: every token that stands for DNA. Masked sampled: those covering ``offsets``.
    """
    real = enc.scorable
    if kind == "causal":
        real[0] = False
        return np.flatnonzero(real)
    if masking in EVERY_TOKEN:
        return np.flatnonzero(real)
    return np.flatnonzero(tokens_covering(enc, offsets))


def scored_positions_many(
    batch: EncodedBatch, kind: str, *, masking: str, offsets: Sequence[np.ndarray] | None = None
) -> Ragged:
    """:func:`scored_positions` of every sequence of ``batch`` (``offsets``: each one's, masked sampled only),
    laid end to end, from whole-array passes."""
    if kind != "causal" and masking not in EVERY_TOKEN:
        real = covering_many(batch, offsets)
    else:
        real = batch.scorable
        if kind == "causal":
            real[batch.offsets[:-1][batch.lengths > 0]] = False
    flat = np.flatnonzero(real)
    seq = segment_ids(batch.offsets)[flat]
    counts = np.bincount(seq, minlength=len(batch)).astype(np.int64)
    return Ragged(flat - batch.offsets[seq], offsets_of(counts))


# --- the stage -----------------------------------------------------------------


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def score_sequences(
    spec: ModelSpec,
    records: Sequence[SeqRecord],
    *,
    snp_offsets: dict[str, np.ndarray],
    batch_size: int,
    seed: int,
    device: str | None = None,
    progress: bool = False,
    options: ScoringOptions | None = None,
    max_excluded_share: float = MAX_EXCLUDED_SHARE,
) -> pa.Table:
    """Score ``records`` with the model in ``spec.path``; one row per sequence, with its per-token arrays."""
    loaded = _load(spec, batch_size=batch_size, device=device, options=options)
    encodings, positions, stats = _score_loaded(
        spec,
        loaded,
        records,
        snp_offsets=snp_offsets,
        seed=seed,
        progress=progress,
        max_excluded_share=max_excluded_share,
    )
    return _table(records, encodings, positions, stats, snp_offsets)


@dataclass
class _Loaded:
    """A model ready to score: loaded once per job, used for every chunk of its shard."""

    tokenizer: object
    scorer: Scorer
    limit: int
    device: str


def _load(spec: ModelSpec, *, batch_size: int, device: str | None, options: ScoringOptions | None) -> _Loaded:
    device = device or _device()
    log.info("numerics: %s", numeric_runtime())
    tokenizer = load_tokenizer(spec)
    model = load_model(spec, tokenizer=tokenizer).to(device)
    limit = max_tokens(spec, model, tokenizer)
    if spec.kind == "masked" and tokenizer.mask_token_id is None:
        raise InputError(f"model '{spec.name}' is masked but its tokenizer has no mask token")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    scorer = Scorer(
        model,
        spec.kind,
        pad_id=pad_id,
        mask_id=tokenizer.mask_token_id,
        batch_size=batch_size,
        device=device,
        options=options,
    )
    return _Loaded(tokenizer, scorer, limit, device)


def _score_loaded(
    spec: ModelSpec,
    loaded: _Loaded,
    records: Sequence[SeqRecord],
    *,
    snp_offsets,
    seed,
    progress,
    max_excluded_share: float = MAX_EXCLUDED_SHARE,
):
    """Encodings, scored positions and (3, n) statistics of ``records``."""
    encodings, positions = _prepare(
        spec, loaded, records, snp_offsets=snp_offsets, seed=seed, max_excluded_share=max_excluded_share
    )
    return encodings, positions, _run(spec, loaded, records, encodings, positions, progress=progress)


def score_chunks(
    spec: ModelSpec,
    loaded: _Loaded,
    chunks: Iterable[Sequence[SeqRecord]],
    *,
    snp_offsets,
    seed,
    progress,
    max_excluded_share: float = MAX_EXCLUDED_SHARE,
    overlap: bool | None = None,
    flanks: Flanks | None = None,
) -> Iterator[tuple[Sequence[SeqRecord], EncodedBatch, Ragged, Ragged]]:
    """(records, encodings, positions, statistics) of each chunk, in order.

    With ``overlap`` (default: on a GPU) chunk k+1 is tokenised, checked and given its scored positions in a
    thread while chunk k's batches run, so the device does not wait for the host between chunks. ``flanks``
    (``scoring.context``): each sequence is scored inside its window's reference flanks (:mod:`.flanks`).
    """
    if overlap is None:
        overlap = loaded.device.startswith("cuda")

    def prepare(chunk):
        return chunk, *_prepare(
            spec,
            loaded,
            chunk,
            snp_offsets=snp_offsets,
            seed=seed,
            max_excluded_share=max_excluded_share,
            flanks=flanks,
        )

    for chunk, encodings, positions in prefetch(chunks, 1 if overlap else 0, prepare):
        yield chunk, encodings, positions, _run(spec, loaded, chunk, encodings, positions, progress=progress)


def _prepare(
    spec: ModelSpec,
    loaded: _Loaded,
    records: Sequence[SeqRecord],
    *,
    snp_offsets,
    seed,
    max_excluded_share,
    flanks: Flanks | None = None,
) -> tuple[EncodedBatch, Ragged]:
    """Encodings of ``records`` (checked) and the token positions that get a score: the host's work before the
    model's."""
    tokenizer, limit = loaded.tokenizer, loaded.limit
    encodings = encode_many(tokenizer, [r.text for r in records], seq_ids=[r.seq_id for r in records], model=spec.name)
    _check_many(encodings, records, model=spec.name, max_share=max_excluded_share, tokenizer=tokenizer, limit=limit)
    if flanks is not None:
        # Read here, a chunk at a time (in the prefetch thread on a GPU): memory holds one chunk's flanks.
        texts = flanks.texts(r.window_id for r in records)
        encodings = with_flanks(tokenizer, encodings, records, flanks=texts, model=spec.name)
        check_context_fits(encodings, records, limit=limit, model=spec.name, context=flanks.context)
    offsets = None
    if spec.kind == "masked" and spec.masking == "sampled":
        offsets, sample_cache, empty = [], {}, np.zeros(0, dtype=np.int64)
        for r in records:
            if r.window_id not in sample_cache:
                sample_cache[r.window_id] = sampled_offsets(
                    r.window_id,
                    len(r.text),
                    snp_offsets=snp_offsets.get(r.window_id, empty),
                    fraction=spec.mask_fraction,
                    seed=seed,
                )
            offsets.append(sample_cache[r.window_id])
    positions = scored_positions_many(encodings, spec.kind, masking=spec.masking, offsets=offsets)

    excluded = encodings.excluded
    if excluded.any():
        excluded = segment_sums(excluded.astype(np.int64), encodings.offsets)
        log.warning(
            "model %s: %d tokens in %d of %d sequences stand for no DNA (<oov>, unknown or special tokens over "
            "bases) and are not scored; column n_excluded counts them",
            spec.name,
            int(excluded.sum()),
            int((excluded > 0).sum()),
            len(records),
        )
    return encodings, positions


def stride_of(spec: ModelSpec) -> int | None:
    """The stride k that ``spec`` scores with: its ``stride_k`` in masked stride mode, else None."""
    return int(spec.stride_k) if spec.kind == "masked" and spec.masking == "stride" else None


def _run(spec: ModelSpec, loaded: _Loaded, records, encodings: EncodedBatch, positions: Ragged, *, progress):
    """The model's part: (3, n) statistics at ``positions``, with the throughput logged."""
    import torch

    device, scorer = loaded.device, loaded.scorer
    total = len(encodings) if spec.kind == "causal" else len(positions.flat)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc=f"score {spec.name}", unit="seq" if spec.kind == "causal" else "mask")
    start = time.perf_counter()
    seen = scorer.tokens_seen
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    try:
        stats = scorer.score(encodings, positions, bar, stride=stride_of(spec))
    except (RuntimeError, TypeError, AttributeError, ValueError) as exc:
        # A checkpoint's own code may load and still fail in its forward pass (written for another transformers).
        if runs_remote_code(spec, read_checkpoint_config(spec)):
            raise remote_code_error(spec, exc, "the forward pass") from None
        raise
    elapsed = time.perf_counter() - start
    if bar is not None:
        bar.close()
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else peak_rss_mib()
    tokens = scorer.tokens_seen - seen
    log.info(
        "model %s on %s: %d sequences, %d tokens through the model in %.1f s (%.0f tokens/s), peak memory %.0f MiB",
        spec.name,
        device,
        len(records),
        tokens,
        elapsed,
        tokens / max(elapsed, 1e-9),
        peak,
    )
    return stats


def _check_many(batch: EncodedBatch, records: Sequence[SeqRecord], *, model: str, max_share, tokenizer, limit) -> None:
    """:func:`check_excluded_share` and the length limit for every sequence, in whole-array passes; the first
    sequence that fails either gets the per-sequence checks, which raise their own message."""
    bases = batch.excluded_bases()
    text_lengths = np.fromiter((len(r.text) for r in records), dtype=np.int64, count=len(records))
    failing = ((bases > 0) & (bases > max_share * text_lengths)) | (batch.lengths > limit)
    if not failing.any():
        return
    i = int(np.flatnonzero(failing)[0])
    enc, r = batch[i], records[i]
    check_excluded_share(enc, r, model=model, max_share=max_share, tokenizer=tokenizer)
    raise InputError(
        f"sequence {r.seq_id} is {len(enc.ids)} tokens, longer than model '{model}' takes ({limit}); "
        f"lower windows.length or set models.{model}.max_length if the model allows more"
    )


def check_context_fits(batch: EncodedBatch, records: Sequence[SeqRecord], *, limit: int, model: str, context: int):
    """Stop when a sequence with its flanks is longer than the model takes."""
    longer = np.flatnonzero(batch.lengths > limit)
    if len(longer):
        i = int(longer[0])
        raise InputError(
            f"sequence {records[i].seq_id} with its flanks (scoring.context: {context}) is {int(batch.lengths[i])} "
            f"tokens, longer than model '{model}' takes ({limit}); lower scoring.context or windows.length, or set "
            f"models.{model}.max_length if the model allows more"
        )


def check_excluded_share(enc: Encoded, record: SeqRecord, *, model: str, max_share: float, tokenizer) -> None:
    """Stop when tokens that stand for no DNA cover more than ``max_share`` of a sequence's bases."""
    bases = enc.excluded_bases()
    if bases == 0 or bases <= max_share * len(record.text):
        return
    first = int(np.flatnonzero(enc.excluded)[0])
    token = tokenizer.convert_ids_to_tokens(int(enc.ids[first]))
    raise InputError(
        f"sequence {record.seq_id}: {bases} of its {len(record.text)} bases fall in tokens of model '{model}' that "
        f"stand for no DNA and are not scored ('{record.text[enc.start[first] : enc.end[first]]}' at offset "
        f"{enc.start[first]} is {token}), more than scoring.max_excluded_share ({max_share}); for a k-mer "
        "tokenizer choose windows.length a multiple of k, keep N out with windows.max_n_fraction: 0, or raise "
        "scoring.max_excluded_share"
    )


def _table(records, encodings, positions, stats, snp_offsets, scored: ScoredTokens | None = None) -> pa.Table:
    return build_table(
        records, encodings, positions, stats=stats, snp_offsets=snp_offsets, schema=SCHEMA, scored=scored
    )


def write_table(table: pa.Table, path: str | os.PathLike) -> None:
    with atomic_outputs(path) as (tmp,):
        pq.write_table(table, tmp, compression="zstd")


def window_chunks(records: Sequence[SeqRecord], size: int) -> Iterator[list[SeqRecord]]:
    """Consecutive runs of whole windows (a window with all its neighbors), each of at least ``size`` sequences
    (the last one shorter): the unit that is scored, reduced and written before the next is read."""
    chunk: list[SeqRecord] = []
    for r in records:
        if r.kind == "window" and len(chunk) >= size:
            yield chunk
            chunk = []
        chunk.append(r)
    if chunk:
        yield chunk


def _feature_rows(records, scored: ScoredTokens, features, frequencies=None, own=None) -> dict[str, list]:
    columns: dict[str, list] = {
        "sequence_id": [r.seq_id for r in records],
        "window_id": [r.window_id for r in records],
        "kind": [r.kind for r in records],
        "prob": [r.prob for r in records],
        "replicate": [r.replicate for r in records],
    }
    texts = [r.text if r.kind == "window" else None for r in records]
    return columns | features_many(
        scored.values,
        scored.offsets,
        scored.snp,
        features=features,
        texts=texts,
        token_ids=scored.ids,
        frequencies=frequencies,
        own=own,
    )


# --- features with a model pass of their own: ReCaLL's conditional loss, the gradient norm ---------------------


@dataclass(frozen=True)
class Prefix:
    """ReCaLL's prefix: the non-member windows it is made of (in order) and their bases encoded as one text."""

    window_ids: tuple[str, ...]
    encoded: Encoded


def read_prefix(path: str | os.PathLike, tokenizer, *, model: str) -> Prefix:
    """The prefix FASTA (rule recall_prefix) encoded as one text: the windows' bases end to end, as ReCaLL's
    reference implementation joins its non-member shots into one string before tokenising it."""
    windows = read_fasta(path)
    text = "".join(windows.values())
    encoded = encode_many(tokenizer, [text], seq_ids=["recall_prefix"], model=model)[0]
    return Prefix(tuple(windows), encoded)


def check_prefix_fits(prefix: Prefix, window_tokens: int, limit: int, *, model: str) -> None:
    """Stop before any scoring when the prefix and the longest window do not fit in the model's context."""
    if len(prefix.encoded.ids) + window_tokens > limit:
        raise InputError(
            f"model '{model}' takes {limit} tokens, fewer than ReCaLL's prefix of {len(prefix.encoded.ids)} tokens "
            f"({len(prefix.window_ids)} windows) plus a window of {window_tokens} tokens; lower "
            "attacks.recall.prefix_windows or windows.length, or drop recall from attacks.names"
        )


def conditional_losses(scorer: Scorer, prefix: Prefix, windows: EncodedBatch) -> np.ndarray:
    """Mean NLL of every scorable token of each window after the prefix, L(x | P): one forward of P + x each.

    Every scorable token of the window is scored, its first one too (the prefix's last token predicts it), as
    the reference implementation does; NaN for a window without one.
    """
    p = prefix.encoded
    joined, positions = [], []
    for i in range(len(windows)):
        w = windows[i]
        joined.append(
            Encoded(
                np.concatenate([p.ids, w.ids]),
                np.concatenate([p.start, w.start]),
                np.concatenate([p.end, w.end]),
                np.concatenate([p.special, w.special]),
                np.concatenate([p.excluded, w.excluded]),
            )
        )
        positions.append(len(p.ids) + np.flatnonzero(w.scorable))
    stats = scorer.score(joined, positions)
    counts = np.diff(stats.offsets)
    means = segment_sums(-stats.flat[0].astype(np.float64), stats.offsets) / np.maximum(counts, 1)
    return np.where(counts > 0, means, np.nan)


def gradient_norms(model, windows: EncodedBatch, positions: Ragged, *, wrt: str, device: str) -> np.ndarray:
    """Per window, the L2 norm of the gradient of its loss (the mean NLL over ``positions``, the tokens the
    ``loss`` feature averages) w.r.t. all the model's parameters as one vector (``wrt`` parameters) or its input
    embeddings (``embeddings``); NaN for a window without a scored token.

    One forward and backward per window, in float32 without autocast: torch.func's per-sample gradients
    (vmap over grad) stop in transformers' GPT-2 forward (its padding-mask checks branch on tensor values),
    and a batch's summed loss would give the norm of the summed gradient, not each window's.
    """
    import torch

    out = np.full(len(windows), np.nan)
    params = list(model.parameters())
    was = [p.requires_grad for p in params]
    captured = []

    def keep_embeddings(_module, _inputs, output):
        # A leaf of its own: its gradient is the window's, whatever the parameters' requires_grad.
        leaf = output.detach().requires_grad_(True)
        captured.append(leaf)
        return leaf

    hook = model.get_input_embeddings().register_forward_hook(keep_embeddings) if wrt == "embeddings" else None
    try:
        for p in params:
            p.requires_grad_(wrt == "parameters")
        with torch.enable_grad():
            for i in range(len(windows)):
                where = np.asarray(positions[i], dtype=np.int64)
                if not len(where):
                    continue
                captured.clear()
                x = torch.from_numpy(np.ascontiguousarray(windows[i].ids, dtype=np.int64)).to(device)
                logits = model(input_ids=x.unsqueeze(0)).logits[0].float()
                # Token t is predicted by the logits at t - 1, as in the scoring pass.
                t = torch.from_numpy(where).to(device)
                logp = torch.log_softmax(logits[t - 1], dim=-1).gather(-1, x[t].unsqueeze(-1)).squeeze(-1)
                grads = torch.autograd.grad(-logp.mean(), params if wrt == "parameters" else captured)
                out[i] = float(torch.sqrt(sum(g.double().square().sum() for g in grads)))
    finally:
        if hook is not None:
            hook.remove()
        for p, flag in zip(params, was, strict=True):
            p.requires_grad_(flag)
    return out


@dataclass(frozen=True)
class OwnPasses:
    """The own-pass features a scoring job computes (:func:`.features.own_pass`), for windows only."""

    recall: str | None = None
    prefix: Prefix | None = None
    gradnorm: tuple[tuple[str, str], ...] = ()  # (feature, wrt)

    @property
    def wanted(self) -> bool:
        return self.recall is not None or bool(self.gradnorm)

    @classmethod
    def of(
        cls, spec: ModelSpec, features: Sequence[str], loaded: _Loaded, *, records, prefix_path, flank_tokens: int = 0
    ) -> OwnPasses:
        """What ``features`` ask for, checked before any scoring: a causal model, and a prefix that fits (beside
        a window and the ``flank_tokens`` its flanks add, which ReCaLL's pass keeps between prefix and window)."""
        wanted = [f for f in features if own_pass(f)]
        if not wanted:
            return cls()
        if spec.kind != "causal":
            raise InputError(f"feature {wanted[0]} needs a causal model; model '{spec.name}' is masked")
        recall = next((f for f in wanted if parse_recall_feature(f)), None)
        prefix = None
        if recall is not None:
            if prefix_path is None:
                raise InputError(f"feature {recall} needs the prefix windows (rule recall_prefix)")
            prefix = read_prefix(prefix_path, loaded.tokenizer, model=spec.name)
            windows = [r for r in records if r.kind == "window"]
            if windows:
                texts, ids = [r.text for r in windows], [r.seq_id for r in windows]
                lengths = encode_many(loaded.tokenizer, texts, seq_ids=ids, model=spec.name).lengths
                check_prefix_fits(prefix, int(lengths.max()) + flank_tokens, loaded.limit, model=spec.name)
        gradnorm = tuple((f, parse_gradnorm_feature(f)) for f in wanted if parse_gradnorm_feature(f))
        return cls(recall, prefix, gradnorm)

    def compute(self, loaded: _Loaded, records, encodings: EncodedBatch, *, positions: Ragged) -> dict[str, list]:
        """One column per own-pass feature: a value per window, None for a neighbor and for the prefix's own
        windows (ReCaLL scores no window conditioned on itself)."""
        out: dict[str, list] = {}
        if self.recall is not None:
            rows = [
                i for i, r in enumerate(records) if r.kind == "window" and r.window_id not in self.prefix.window_ids
            ]
            losses = conditional_losses(loaded.scorer, self.prefix, EncodedBatch.of([encodings[i] for i in rows]))
            out[self.recall] = _spread(len(records), rows, losses)
        rows = [i for i, r in enumerate(records) if r.kind == "window"]
        for name, wrt in self.gradnorm:
            windows = EncodedBatch.of([encodings[i] for i in rows])
            scored = Ragged.of([positions[i] for i in rows], empty=np.zeros(0, dtype=np.int64))
            norms = gradient_norms(loaded.scorer.model, windows, scored, wrt=wrt, device=loaded.device)
            out[name] = _spread(len(records), rows, norms)
        return out


def _spread(n: int, rows: Sequence[int], values: np.ndarray) -> list:
    """A column of ``n`` values: ``values`` at ``rows``, None elsewhere and where a value is NaN."""
    column: list = [None] * n
    for i, v in zip(rows, values.tolist(), strict=True):
        column[i] = None if np.isnan(v) else v
    return column


def score_shard(
    spec: ModelSpec,
    *,
    windows_fasta: str,
    neighbors_fasta: str,
    neighbors_tsv: str,
    snps_path: str,
    features: Sequence[str],
    batch_size: int,
    seed: int,
    features_path: str | os.PathLike,
    tokens_path: str | os.PathLike | None = None,
    chunk_size: int = 1024,
    progress: bool = True,
    max_excluded_share: float = MAX_EXCLUDED_SHARE,
    overlap: bool | None = None,
    token_frequencies: str | os.PathLike | None = None,
    recall_prefix: str | os.PathLike | None = None,
    context: int = 0,
    reference_fasta: str | os.PathLike | None = None,
    device: str | None = None,
) -> int:
    """Score one shard's windows and neighbors (the shard's own files); returns its row count.

    Writes the per-sequence ``features`` (the map step, :mod:`.features`) to ``features_path`` and, when
    ``tokens_path`` is given, the per-token table there too. Both are written a chunk of whole windows at a time
    (Parquet row groups) under temporary names renamed at the end: per-token memory is that of one chunk, and a
    killed job leaves no file under either final name. ``overlap`` (default: on a GPU) tokenises the next chunk
    and reduces and writes the last one in threads while a chunk is scored; the files are the same either way.
    ``token_frequencies``: the reference's token frequency table of the model's tokenizer
    (:mod:`.token_frequencies`), read only for a DC-PDD feature. Own-pass features (ReCaLL's conditional loss,
    from the prefix FASTA ``recall_prefix``; the gradient norm) are computed on the job's own thread for each
    chunk's windows, after its scoring (:class:`OwnPasses`). ``context`` > 0 (``scoring.context``): every sequence
    is scored inside its window's reference flanks of that many bases, read from the indexed ``reference_fasta``
    (:mod:`.flanks`); 0 scores the sequences alone. ``device``: default CUDA where available, else the CPU.
    """
    features = [*BASE_FEATURES, *(f for f in features if f not in BASE_FEATURES)]
    window_ids = read_window_ids(windows_fasta)
    records = load_sequences(windows_fasta, neighbors_fasta, neighbors_tsv, window_ids=window_ids)
    snp_offsets = read_snp_offsets(snps_path)
    loaded = _load(spec, batch_size=batch_size, device=device, options=None)
    frequencies = _frequencies(spec, loaded.tokenizer, features, token_frequencies)
    flanks = _flanks(
        spec, loaded, records, windows_fasta=windows_fasta, reference_fasta=reference_fasta, context=context
    )
    own = OwnPasses.of(
        spec,
        features,
        loaded,
        records=records,
        prefix_path=recall_prefix,
        flank_tokens=flanks.flank_tokens() if flanks is not None else 0,
    )
    if overlap is None:
        overlap = loaded.device.startswith("cuda")
    with contextlib.ExitStack() as stack:
        feature_writer = stack.enter_context(ShardWriter(features_path, feature_schema(features)))
        token_writer = stack.enter_context(ShardWriter(tokens_path, SCHEMA)) if tokens_path is not None else None
        # On a GPU the reduction and the writes of chunk k run in a thread while chunk k+1 is scored.
        background = stack.enter_context(InOrder(enabled=overlap))
        if flanks is not None:
            stack.callback(flanks.close)

        def reduce_and_write(chunk, encodings, positions, stats, own_columns):
            scored = scored_tokens(chunk, encodings, positions, stats=stats, snp_offsets=snp_offsets)
            feature_writer.write(_feature_rows(chunk, scored, features, frequencies, own_columns))
            if token_writer is not None:
                token_writer.write(_table(chunk, encodings, positions, stats, snp_offsets, scored))

        for scored_chunk in score_chunks(
            spec,
            loaded,
            window_chunks(records, chunk_size),
            snp_offsets=snp_offsets,
            seed=seed,
            progress=progress,
            max_excluded_share=max_excluded_share,
            overlap=overlap,
            flanks=flanks,
        ):
            # The own-pass features' model passes run here, on the job's thread, not beside the next chunk's.
            own_columns = own.compute(loaded, *scored_chunk[:2], positions=scored_chunk[2]) if own.wanted else None
            background.submit(reduce_and_write, *scored_chunk, own_columns)
    if flanks is not None:
        log.info(
            "scoring.context %d (%s): %d of %d windows got a shorter flank at a contig end",
            context,
            "both sides" if flanks.right else "left flank only: a causal model's scores cannot see the right one",
            len(flanks.clipped),
            len(flanks.seen),
        )
    return feature_writer.rows


def _flanks(spec: ModelSpec, loaded: _Loaded, records, *, windows_fasta, reference_fasta, context) -> Flanks | None:
    """The shard's flank reader for ``scoring.context`` > 0 (None at 0), after the checks that need no scoring: a
    tokenizer that keeps the window's tokens, and the longest window with full flanks within the model's context."""
    if not context:
        return None
    if reference_fasta is None:
        raise InputError("scoring.context needs the indexed reference FASTA the windows come from")
    multiple = token_multiple(loaded.tokenizer, context, model=spec.name)
    # A causal model's scores depend on the tokens before each one only: the right flank could change none of them.
    right = spec.kind != "causal"
    flanks = Flanks(reference_fasta, read_loci(windows_fasta), context=context, right=right, multiple=multiple)
    windows = [r for r in records if r.kind == "window"]
    if windows:
        lengths = encode_many(
            loaded.tokenizer, [r.text for r in windows], seq_ids=[r.seq_id for r in windows], model=spec.name
        ).lengths
        longest = int(np.argmax(lengths))
        total = int(lengths[longest]) + flanks.flank_tokens()
        if total > loaded.limit:
            raise InputError(
                f"window {windows[longest].seq_id} with its flanks (scoring.context: {context}) is {total} tokens, "
                f"longer than model '{spec.name}' takes ({loaded.limit}); lower scoring.context or windows.length, "
                f"or set models.{spec.name}.max_length if the model allows more"
            )
    return flanks


def _frequencies(spec: ModelSpec, tokenizer, features: Sequence[str], path: str | os.PathLike | None):
    """The smoothed token frequencies of DC-PDD (:mod:`.dc_pdd`) when ``features`` ask for them, else None."""
    if not needs_token_frequencies(features):
        return None
    if path is None:
        raise InputError(f"model '{spec.name}': the dc_pdd attack needs the reference's token frequency table")
    return smoothed_frequencies(read_token_frequencies(path, tokenizer, model=spec.name))
