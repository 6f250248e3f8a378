"""Membership mode ``genome``: pretraining-like splits of the whole reference into training and held-out blocks.

Each model (the target, then each reference model) is trained from scratch on the whole reference FASTA except its
own seeded held-out blocks, the way HyenaDNA (Nguyen et al. 2023) splits a genome into contiguous training and test
intervals rather than into random short sequences. Every contig is cut into consecutive blocks of
``block_length`` bp (the last one of a contig shorter); a seeded permutation of all blocks is walked, holding blocks
out until the held-out bases reach ``heldout_fraction`` of the genome (so the held-out share exceeds its target by
less than one block). Model ``i`` draws from the ``i``-th child of the membership seed, so adding reference models
does not change the target's split. All models share the block grid, so they differ only in which blocks they hold
out.

Labels (:func:`label_windows`): a window is a member of a model if it lies wholly inside that model's training
intervals, a non-member if it lies wholly inside one of its held-out blocks. A window that straddles a
training/held-out boundary of *any* model is left out (and counted): its label would be neither, and every attack
reads a 0/1 label of every reference model. Members then outnumber non-members about (1 - f) / f to one and may
differ from them in composition, so :func:`match_windows` draws an equal number of each from every cell of a
GC-content x SNP-density grid (quantile bins of the labelled windows): exact stratified matching on the two
covariates at bin resolution (the coarsened exact matching of Iacus, King & Porro 2012), seeded.

Training (:func:`training_chunks`, :func:`training_schedule`): each training interval is tiled into consecutive
chunks of ``chunk_length`` bp (the last one shorter), so a chunk never covers a held-out base; each chunk is put
``duplication`` times into every epoch's shuffled order, so every training base is seen ``epochs x duplication``
times (the duplication of pretraining corpora that Kandpal et al. 2022 show drives memorisation).
Nothing here holds the genome's sequence: blocks and chunks are coordinates, read from the indexed FASTA per batch.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from ..errors import InputError
from ..outputs import atomic_outputs

log = logging.getLogger(__name__)

HELDOUT_COLUMNS = ("model", "chrom", "start", "end")

# A non-member RMIA puts in its population is left unscored (attacks/rmia.py): at least one there and one scored;
# every metric needs one member. ReCaLL's prefix windows come out of the non-members too (minimum_per_class).
BASE_MINIMUM_PER_CLASS = 2


def heldout_blocks(
    contigs: Sequence[tuple[str, int]], *, fraction: float, block_length: int, seed: np.random.SeedSequence | int
) -> list[tuple[str, int, int]]:
    """The held-out blocks ``(chrom, start, end)`` of one split, sorted; 0-based half-open.

    Blocks tile each contig from its start; a seeded permutation of all of them is walked, holding each out, until
    the held-out bases reach ``fraction`` of the genome: the share is at least ``fraction`` and exceeds it by less
    than one block's length divided by the genome's.
    """
    blocks = [(c, s, min(s + block_length, n)) for c, n in contigs for s in range(0, n, block_length)]
    total = sum(n for _, n in contigs)
    wanted = fraction * total
    rng = np.random.default_rng(seed)
    held, chosen = 0, []
    for i in rng.permutation(len(blocks)):
        if held >= wanted:
            break
        chosen.append(blocks[i])
        held += blocks[i][2] - blocks[i][1]
    order = {c: k for k, (c, _) in enumerate(contigs)}
    return sorted(chosen, key=lambda b: (order[b[0]], b[1]))


def split_table(
    contigs: Sequence[tuple[str, int]], models: Sequence[str], *, params: Mapping, seed: int
) -> pd.DataFrame:
    """``model, chrom, start, end``: the held-out blocks of every model, from its own child of ``seed``."""
    streams = np.random.SeedSequence(seed).spawn(len(models))
    rows = []
    for model, stream in zip(models, streams, strict=True):
        blocks = heldout_blocks(
            contigs, fraction=params["heldout_fraction"], block_length=params["block_length"], seed=stream
        )
        rows += [(model, *b) for b in blocks]
    return pd.DataFrame(rows, columns=list(HELDOUT_COLUMNS))


def write_heldout(table: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_outputs(path) as (tmp,):
        table.to_csv(tmp, sep="\t", index=False)


def read_heldout(path: str | os.PathLike) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"model": str, "chrom": str})


def blocks_of(table: pd.DataFrame, model: str) -> list[tuple[str, int, int]]:
    rows = table[table.model == model]
    return list(zip(rows.chrom, rows.start.astype(int), rows.end.astype(int), strict=True))


def _inside_and_touching(windows: pd.DataFrame, blocks: Sequence[tuple[str, int, int]]) -> tuple[np.ndarray, ...]:
    """Per window: lies wholly inside a held-out region (blocks merged), and overlaps one at all."""
    n = len(windows)
    inside, touching = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    by_contig: dict[str, list[tuple[int, int]]] = {}
    for chrom, s, e in blocks:
        spans = by_contig.setdefault(chrom, [])
        # Adjacent held-out blocks form one held-out region: a window across their shared edge is inside it.
        if spans and spans[-1][1] == s:
            spans[-1] = (spans[-1][0], e)
        else:
            spans.append((s, e))
    chroms, starts, ends = windows.chrom.to_numpy(), windows.start.to_numpy(), windows.end.to_numpy()
    for chrom, spans in by_contig.items():
        rows = np.flatnonzero(chroms == chrom)
        lo = np.array([s for s, _ in spans])
        hi = np.array([e for _, e in spans])
        # The last region starting at or before the window's start holds it wholly if it ends at or after its end.
        i = np.searchsorted(lo, starts[rows], side="right") - 1
        ok = i >= 0
        inside[rows[ok]] = hi[i[ok]] >= ends[rows[ok]]
        # The last region starting before the window's end overlaps it iff it ends after the window's start.
        j = np.searchsorted(lo, ends[rows], side="left") - 1
        ok = j >= 0
        touching[rows[ok]] = hi[j[ok]] > starts[rows[ok]]
    return inside, touching


def label_windows(windows: pd.DataFrame, heldout: pd.DataFrame, models: Sequence[str]) -> tuple[pd.DataFrame, dict]:
    """``window_id, <model>_member...`` (1 inside the model's training intervals, 0 inside its held-out blocks),
    ``models[0]``'s column named ``target_member``; windows straddling a boundary of any model are left out.

    Returns the table and counts: ``straddling_target`` (left out for the target's own boundary) and
    ``straddling_reference`` (clean for the target, straddling a reference model's boundary).
    """
    table = {"window_id": windows.window_id.to_numpy()}
    clean = np.ones(len(windows), dtype=bool)
    counts = {}
    for k, model in enumerate(models):
        inside, touching = _inside_and_touching(windows, blocks_of(heldout, model))
        straddles = touching & ~inside
        if k == 0:
            counts["straddling_target"] = int(straddles.sum())
        else:
            counts["straddling_reference"] = counts.get("straddling_reference", 0) + int((straddles & clean).sum())
        clean &= ~straddles
        column = "target_member" if k == 0 else f"{model}_member"
        table[column] = (~touching).astype(np.int8)
    labelled = pd.DataFrame(table)
    return labelled[clean].reset_index(drop=True), counts


def match_windows(
    labelled: pd.DataFrame, covariates: pd.DataFrame, *, bins: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Equal numbers of target members and non-members in every GC x SNP-density cell, drawn seeded.

    ``covariates`` holds ``window_id, gc_fraction, snp_fraction`` (windows.tsv). Each covariate is cut at the
    ``1/bins .. (bins-1)/bins`` quantiles of the labelled windows (members and non-members pooled; ties share a
    bin); in each cell the larger class is subsampled without replacement to the smaller one's count. Returns the
    kept rows (in their input order) and a per-cell table ``gc_bin, snp_bin, members, nonmembers, kept``.
    """
    data = labelled.merge(covariates[["window_id", "gc_fraction", "snp_fraction"]], on="window_id", how="left")
    cells = np.zeros(len(data), dtype=np.int64)
    for column in ("gc_fraction", "snp_fraction"):
        values = data[column].to_numpy(float)
        edges = np.unique(np.quantile(values, np.arange(1, bins) / bins)) if len(values) else np.array([])
        cells = cells * bins + np.searchsorted(edges, values, side="right")
    rng = np.random.default_rng(seed)
    member = data.target_member.to_numpy() == 1
    keep = np.zeros(len(data), dtype=bool)
    summary = []
    for cell in np.unique(cells):
        rows_in = np.flatnonzero((cells == cell) & member)
        rows_out = np.flatnonzero((cells == cell) & ~member)
        k = min(len(rows_in), len(rows_out))
        for rows in (rows_in, rows_out):
            keep[rng.choice(rows, size=k, replace=False) if k < len(rows) else rows] = True
        summary.append((int(cell // bins), int(cell % bins), len(rows_in), len(rows_out), k))
    cells_table = pd.DataFrame(summary, columns=["gc_bin", "snp_bin", "members", "nonmembers", "kept"])
    return labelled[keep].reset_index(drop=True), cells_table


def minimum_per_class(attacks: Mapping) -> int:
    """Windows of each class the configured attacks need: RMIA's population and a scored non-member, plus
    ReCaLL's prefix windows (drawn from the non-members, then not scored) when recall runs."""
    extra = attacks.get("recall", {}).get("prefix_windows", 1) if "recall" in attacks.get("names", []) else 0
    return BASE_MINIMUM_PER_CLASS + extra


def check_enough(table: pd.DataFrame, *, needed: int, params: Mapping, n_windows: int) -> None:
    """One line when matching leaves fewer than ``needed`` windows of a class."""
    members = int(table.target_member.sum())
    nonmembers = len(table) - members
    if min(members, nonmembers) < needed:
        raise InputError(
            f"membership.genome.heldout_fraction={params['heldout_fraction']:g} (blocks of "
            f"{params['block_length']} bp) leaves {members} member and {nonmembers} non-member windows of the "
            f"{n_windows} windows after matching; the configured attacks need at least {needed} of each: raise "
            "heldout_fraction or windows.n, or use shorter blocks"
        )


# --- training chunks ----------------------------------------------------------------------------------------


def training_intervals(
    contigs: Sequence[tuple[str, int]], blocks: Sequence[tuple[str, int, int]]
) -> list[tuple[str, int, int]]:
    """The complement of ``blocks`` in the contigs: maximal intervals with no held-out base, in contig order."""
    by_contig: dict[str, list[tuple[int, int]]] = {}
    for chrom, s, e in blocks:
        by_contig.setdefault(chrom, []).append((s, e))
    out = []
    for chrom, n in contigs:
        cursor = 0
        for s, e in sorted(by_contig.get(chrom, [])):
            if s > cursor:
                out.append((chrom, cursor, s))
            cursor = max(cursor, e)
        if cursor < n:
            out.append((chrom, cursor, n))
    return out


@dataclass(frozen=True)
class ChunkPlan:
    """The training chunks, as coordinates: chunk ``i`` is ``chunk(i)``. Memory: a few numbers per interval."""

    intervals: tuple[tuple[str, int, int], ...]
    chunk_length: int

    @cached_property
    def _offsets(self) -> np.ndarray:
        counts = [-(-(e - s) // self.chunk_length) for _, s, e in self.intervals]
        return np.cumsum(np.array(counts, dtype=np.int64))

    def __len__(self) -> int:
        return int(self._offsets[-1]) if len(self._offsets) else 0

    def chunk(self, i: int) -> tuple[str, int, int]:
        offsets = self._offsets
        k = int(np.searchsorted(offsets, i, side="right"))
        chrom, s, e = self.intervals[k]
        first = i - (int(offsets[k - 1]) if k else 0)
        start = s + first * self.chunk_length
        return chrom, start, min(start + self.chunk_length, e)

    @property
    def bases(self) -> int:
        return sum(e - s for _, s, e in self.intervals)


def training_chunks(
    contigs: Sequence[tuple[str, int]], blocks: Sequence[tuple[str, int, int]], *, chunk_length: int
) -> ChunkPlan:
    """Chunks of ``chunk_length`` bp tiling the training intervals (the last of each interval shorter)."""
    return ChunkPlan(tuple(training_intervals(contigs, blocks)), chunk_length)


def training_schedule(
    n_chunks: int, *, epochs: int, duplication: int, batch_size: int, generator
) -> Iterator[tuple[int, np.ndarray]]:
    """``(epoch, chunk indices of one batch)`` in training order: each epoch a shuffled order of every chunk
    ``duplication`` times (``torch.randperm`` from ``generator``), cut into batches."""
    import torch

    for epoch in range(epochs):
        order = torch.randperm(n_chunks * duplication, generator=generator).numpy() % n_chunks
        for k in range(0, len(order), batch_size):
            yield epoch, order[k : k + batch_size]


def genome_membership(
    windows: pd.DataFrame, heldout: pd.DataFrame, *, params: Mapping, seed: int, needed: int
) -> tuple[pd.DataFrame, dict, pd.DataFrame]:
    """results/membership.tsv of mode genome: the labels of :func:`label_windows` (models in the order of
    ``heldout``, the target first) matched by :func:`match_windows`; stops in one line below ``needed`` windows
    of a class. Returns the table, the counts of left-out windows and the matching's cells."""
    models = list(dict.fromkeys(heldout.model))
    labelled, counts = label_windows(windows, heldout, models)
    # A seed of its own for the matching draw, apart from the splits' children of the same seed.
    matched, cells = match_windows(labelled, windows, bins=params["match_bins"], seed=seed + 1_000_003)
    counts["labelled"] = len(labelled)
    counts["unmatched"] = len(labelled) - len(matched)
    check_enough(matched, needed=needed, params=params, n_windows=len(windows))
    return matched, counts, cells
