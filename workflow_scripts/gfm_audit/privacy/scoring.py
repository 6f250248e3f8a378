"""Stage 4: per-token log-probabilities of every window and neighbor under one model.

Causal models: one forward pass; the log-probability of token t comes from
the logits at t-1. Masked models: pseudo-log-likelihood (Salazar et al. 2020):
token t is replaced by the mask token and scored from that pass. ``exact``
masks every token; ``sampled`` masks only the tokens covering a seeded subset
of base offsets (the window's SNP sites plus random positions), the same
subset for a window and all its neighbors, so their scores compare like with
like. A masked model is never scored without masking.

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
import resource
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

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
from ..prefetch import prefetch
from ..tokens import Encoded, encode_many, tokens_covering
from .features import BASE_FEATURES, ID_COLUMNS, ShardWriter, feature_schema, sequence_features
from .score_table import build_table

log = logging.getLogger(__name__)

PAD_MULTIPLE = 8
MAX_EXCLUDED_SHARE = 0.05

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
    extra = rng.choice(length, size=min(k, length), replace=False)
    return np.union1d(snp_offsets, extra)


# --- the numbers ---------------------------------------------------------------


def token_statistics(logits, targets):
    """log p(target), and mean and std of log p under the predictive distribution, per position.

    ``logits``: (..., V) float tensor; ``targets``: (...) long tensor.
    """
    import torch

    logp = torch.log_softmax(logits.float(), dim=-1)
    true = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    p = logp.exp()
    mean = (p * logp).sum(-1)
    var = (p * logp.square()).sum(-1) - mean.square()
    return true, mean, var.clamp_min(0).sqrt()


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

    def score(self, encodings: Sequence[Encoded], positions: Sequence[np.ndarray], progress=None) -> list[np.ndarray]:
        """For each sequence, a (3, len(positions)) array: log p, mean, std at those token positions."""
        import torch

        results = [np.zeros((3, len(p)), dtype=np.float32) for p in positions]
        grad_off = torch.inference_mode if self.options.inference_mode else torch.no_grad
        with grad_off():
            batches = prefetch(self._batches(encodings, positions), self.options.prefetch, self._pinned)
            for ids, attention, rows in batches:
                logits, x = self._forward(ids, attention)
                if self.kind == "causal":
                    # Token t is predicted by the logits at t - 1.
                    stats = torch.stack(token_statistics(logits[:, :-1], x[:, 1:])).cpu().numpy()
                    for b, (i, pos) in enumerate(rows):
                        results[i][:] = stats[:, b, pos - 1]
                else:
                    where = torch.tensor([p for _, _, p in rows], device=x.device)
                    targets = torch.tensor([encodings[i].ids[p] for i, _, p in rows], device=x.device)
                    picked = logits[torch.arange(len(rows), device=x.device), where]
                    stats = torch.stack(token_statistics(picked, targets)).cpu().numpy()
                    for b, (i, j, _) in enumerate(rows):
                        results[i][:, j] = stats[:, b]
                if progress is not None:
                    progress.update(len(rows))
        return results

    def _pinned(self, batch):
        # In the prefetch thread: page-locked arrays make _forward's pin_memory a no-op and its copy asynchronous.
        if not (self.device.startswith("cuda") and self.options.pin_memory):
            return batch
        import torch

        ids, attention, rows = batch
        return torch.from_numpy(ids).pin_memory().numpy(), torch.from_numpy(attention).pin_memory().numpy(), rows

    def _batches(self, encodings, positions) -> Iterator[tuple[np.ndarray, np.ndarray, list]]:
        order = list(range(len(encodings)))
        if self.options.bucketing:
            order.sort(key=lambda i: len(encodings[i].ids))
        if self.kind == "causal":
            for k in range(0, len(order), self.batch_size):
                chunk = order[k : k + self.batch_size]
                ids, attention = self._stack([encodings[i].ids for i in chunk])
                yield ids, attention, [(i, positions[i]) for i in chunk]
        else:
            rows = [(i, j, int(p)) for i in order for j, p in enumerate(positions[i])]
            for chunk in self._chunks(rows, [len(encodings[i].ids) for i, _, _ in rows]):
                ids, attention = self._stack([encodings[i].ids for i, _, _ in chunk])
                for b, (_, _, p) in enumerate(chunk):
                    ids[b, p] = self.mask_id
                yield ids, attention, chunk

    def _chunks(self, rows: list, lengths: list[int]) -> Iterator[list]:
        start = 0
        while start < len(rows):
            stop = min(start + self.batch_size, len(rows))
            if not self.accepts_mask:
                same = start + 1
                while same < stop and lengths[same] == lengths[start]:
                    same += 1
                stop = same
            yield rows[start:stop]
            start = stop

    def _stack(self, seqs: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        # Padding to a multiple of 8 feeds GPU tensor cores; on a CPU it would only add padding (and masks).
        # A model without an attention mask would see that padding (a bidirectional one, at every position).
        multiple = self.options.pad_multiple if self.device.startswith("cuda") and self.accepts_mask else 1
        width = _pad_to(max(len(s) for s in seqs), multiple)
        ids = np.full((len(seqs), width), self.pad_id, dtype=np.int64)
        attention = np.zeros((len(seqs), width), dtype=np.int64)
        for b, s in enumerate(seqs):
            ids[b, : len(s)] = s
            attention[b, : len(s)] = 1
        return ids, attention


def scored_positions(enc: Encoded, kind: str, *, masking: str, offsets: np.ndarray | None) -> np.ndarray:
    """Token indices that get a score.

    Causal: every token that stands for DNA and has a token before it. Masked
    exact: every token that stands for DNA. Masked sampled: those covering ``offsets``.
    """
    real = enc.scorable
    if kind == "causal":
        real[0] = False
        return np.flatnonzero(real)
    if masking == "exact":
        return np.flatnonzero(real)
    return np.flatnonzero(tokens_covering(enc, offsets))


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
    model = load_model(spec).to(device)
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
    import torch

    tokenizer, limit, device, scorer = loaded.tokenizer, loaded.limit, loaded.device, loaded.scorer
    encodings, positions, sample_cache = [], [], {}
    empty = np.zeros(0, dtype=np.int64)
    all_encodings = encode_many(
        tokenizer, [r.text for r in records], seq_ids=[r.seq_id for r in records], model=spec.name
    )
    for r, enc in zip(records, all_encodings, strict=True):
        check_excluded_share(enc, r, model=spec.name, max_share=max_excluded_share, tokenizer=tokenizer)
        if len(enc.ids) > limit:
            raise InputError(
                f"sequence {r.seq_id} is {len(enc.ids)} tokens, longer than model '{spec.name}' takes ({limit}); "
                f"lower windows.length or set models.{spec.name}.max_length if the model allows more"
            )
        offsets = None
        if spec.kind == "masked" and spec.masking == "sampled":
            if r.window_id not in sample_cache:
                sample_cache[r.window_id] = sampled_offsets(
                    r.window_id,
                    len(r.text),
                    snp_offsets=snp_offsets.get(r.window_id, empty),
                    fraction=spec.mask_fraction,
                    seed=seed,
                )
            offsets = sample_cache[r.window_id]
        encodings.append(enc)
        positions.append(scored_positions(enc, spec.kind, masking=spec.masking, offsets=offsets))

    excluded = [int(e.excluded.sum()) for e in encodings]
    if any(excluded):
        log.warning(
            "model %s: %d tokens in %d of %d sequences stand for no DNA (<oov>, unknown or special tokens over "
            "bases) and are not scored; column n_excluded counts them",
            spec.name,
            sum(excluded),
            sum(n > 0 for n in excluded),
            len(records),
        )
    total = len(encodings) if spec.kind == "causal" else sum(len(p) for p in positions)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc=f"score {spec.name}", unit="seq" if spec.kind == "causal" else "mask")
    start = time.perf_counter()
    seen = scorer.tokens_seen
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    try:
        stats = scorer.score(encodings, positions, bar)
    except (RuntimeError, TypeError, AttributeError, ValueError) as exc:
        # A checkpoint's own code may load and still fail in its forward pass (written for another transformers).
        if runs_remote_code(spec, read_checkpoint_config(spec)):
            raise remote_code_error(spec, exc, "the forward pass") from None
        raise
    elapsed = time.perf_counter() - start
    if bar is not None:
        bar.close()
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if device.startswith("cuda")
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
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
    return encodings, positions, stats


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


def _table(records, encodings, positions, stats, snp_offsets) -> pa.Table:
    return build_table(records, encodings, positions, stats=stats, snp_offsets=snp_offsets, schema=SCHEMA)


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


def _feature_rows(records, encodings, positions, stats, snp_offsets, features) -> dict[str, list]:
    columns: dict[str, list] = {name: [] for name in (*ID_COLUMNS, *features)}
    empty = np.zeros(0, dtype=np.int64)
    for r, enc, pos, s in zip(records, encodings, positions, stats, strict=True):
        snp_tokens = tokens_covering(enc, snp_offsets.get(r.window_id, empty))[pos]
        values = sequence_features(s, snp_tokens, features, text=r.text if r.kind == "window" else None)
        for name, value in zip(ID_COLUMNS, (r.seq_id, r.window_id, r.kind, r.prob, r.replicate), strict=True):
            columns[name].append(value)
        for name in features:
            columns[name].append(values[name])
    return columns


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
    chunk_size: int = 4096,
    progress: bool = True,
    max_excluded_share: float = MAX_EXCLUDED_SHARE,
) -> int:
    """Score one shard's windows and neighbors (the shard's own files); returns its row count.

    Writes the per-sequence ``features`` (the map step, :mod:`.features`) to ``features_path`` and, when
    ``tokens_path`` is given, the per-token table there too. Both are written a chunk of whole windows at a time
    (Parquet row groups) under temporary names renamed at the end: per-token memory is that of one chunk, and a
    killed job leaves no file under either final name.
    """
    features = [*BASE_FEATURES, *(f for f in features if f not in BASE_FEATURES)]
    window_ids = read_window_ids(windows_fasta)
    records = load_sequences(windows_fasta, neighbors_fasta, neighbors_tsv, window_ids=window_ids)
    snp_offsets = read_snp_offsets(snps_path)
    loaded = _load(spec, batch_size=batch_size, device=None, options=None)
    with contextlib.ExitStack() as stack:
        feature_writer = stack.enter_context(ShardWriter(features_path, feature_schema(features)))
        token_writer = stack.enter_context(ShardWriter(tokens_path, SCHEMA)) if tokens_path is not None else None
        for chunk in window_chunks(records, chunk_size):
            encodings, positions, stats = _score_loaded(
                spec,
                loaded,
                chunk,
                snp_offsets=snp_offsets,
                seed=seed,
                progress=progress,
                max_excluded_share=max_excluded_share,
            )
            feature_writer.write(_feature_rows(chunk, encodings, positions, stats, snp_offsets, features))
            if token_writer is not None:
                token_writer.write(_table(chunk, encodings, positions, stats, snp_offsets).to_pydict())
            del encodings, positions, stats
    return feature_writer.rows
