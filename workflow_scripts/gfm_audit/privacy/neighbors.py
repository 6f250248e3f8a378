"""Stage 2: SNP neighbors of each window, and matched random-position controls.

A neighbor copies a window and, independently at each of its SNP sites,
replaces the reference base with an alternative allele with probability p
(the SNP-neighborhood attack's perturbation; Mattern et al. 2023 use
language-model rewrites, here the rewrites are real human variation).

A control neighbor makes as many substitutions, with the same numbers of
transitions and transversions, at random positions that are *not* SNP sites.
Comparing the two separates "a known variant" from "any change of this kind".
"""

from __future__ import annotations

import logging
import os
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pysam

from ..errors import InputError
from ..outputs import atomic_outputs

log = logging.getLogger(__name__)

NEIGHBOR_COLUMNS = ("neighbor_id", "window_id", "prob", "replicate", "kind", "n_changed", "changed_offsets")

_TRANSITION = np.zeros(256, dtype=np.uint8)
_TRANSVERSIONS = np.zeros((256, 2), dtype=np.uint8)
for _a, _b in ("AG", "GA", "CT", "TC"):
    _TRANSITION[ord(_a)] = ord(_b)
for _a, _pair in (("A", "CT"), ("G", "CT"), ("C", "AG"), ("T", "AG")):
    _TRANSVERSIONS[ord(_a)] = [ord(_pair[0]), ord(_pair[1])]
_IS_ACGT = np.zeros(256, dtype=bool)
_IS_ACGT[list(b"ACGT")] = True


@dataclass(frozen=True)
class SiteTable:
    """SNP sites of one window as arrays: offsets, padded ALT bases, cumulative draw weights."""

    offsets: np.ndarray  # (n_sites,) int64
    alts: np.ndarray  # (n_sites, max_alts) uint8 ASCII, 0 = padding
    cum_weights: np.ndarray  # (n_sites, max_alts) float64, last real entry exactly 1


def allele_weights(alts: Sequence[str], afs: Sequence[float | None], mode: str) -> np.ndarray:
    """Probability of each ALT once a site is chosen.

    ``uniform``: 1/len(alts). ``af``: proportional to the ALT frequencies,
    a missing frequency counting as 0; uniform when no frequency is known or
    all are 0.
    """
    k = len(alts)
    if mode == "af":
        w = np.array([a if a is not None and a > 0 else 0.0 for a in afs[:k]] + [0.0] * (k - len(afs)))
        if w.sum() > 0:
            return w / w.sum()
    return np.full(k, 1.0 / k)


def _parse_afs(field: str, k: int) -> list[float | None]:
    if not field:
        return [None] * k
    return [None if v in ("", ".") else float(v) for v in field.split(",")]


def site_table(offsets: Sequence[int], alts: Sequence[str], afs: Sequence[str], *, mode: str) -> SiteTable:
    """Build a :class:`SiteTable` from ``snps.tsv`` columns (alt and af comma-separated)."""
    n = len(offsets)
    split = [a.split(",") for a in alts]
    width = max((len(s) for s in split), default=1)
    alt_codes = np.zeros((n, width), dtype=np.uint8)
    cum = np.ones((n, width), dtype=np.float64)
    for i, (choices, af) in enumerate(zip(split, afs, strict=True)):
        alt_codes[i, : len(choices)] = [ord(c) for c in choices]
        c = np.cumsum(allele_weights(choices, _parse_afs(af, len(choices)), mode))
        c[-1] = 1.0
        cum[i, : len(choices)] = c
    return SiteTable(np.asarray(offsets, dtype=np.int64), alt_codes, cum)


def snp_neighbor(
    seq: np.ndarray, sites: SiteTable, p: float, *, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Each site independently takes an ALT with probability ``p``.

    Returns the new sequence (uint8 ASCII) and the sorted changed offsets.
    """
    n = len(sites.offsets)
    chosen = rng.random(n) < p
    u = rng.random(n)
    which = (u[:, None] >= sites.cum_weights).sum(axis=1)
    out = seq.copy()
    changed = sites.offsets[chosen]
    out[changed] = sites.alts[np.flatnonzero(chosen), which[chosen]]
    return out, changed


def control_neighbor(
    seq: np.ndarray, snp_offsets: np.ndarray, *, n_transitions: int, n_transversions: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Substitute at random non-SNP A/C/G/T positions: that many transitions, then transversions."""
    allowed = _IS_ACGT[seq].copy()
    allowed[snp_offsets] = False
    candidates = np.flatnonzero(allowed)
    k = n_transitions + n_transversions
    if k > len(candidates):
        raise InputError(f"a control neighbor needs {k} non-SNP positions but the window has {len(candidates)}")
    picked = rng.choice(candidates, size=k, replace=False)
    out = seq.copy()
    ts, tv = picked[:n_transitions], picked[n_transitions:]
    out[ts] = _TRANSITION[seq[ts]]
    out[tv] = _TRANSVERSIONS[seq[tv], rng.integers(0, 2, size=len(tv))]
    return out, np.sort(picked)


def is_transition(ref: np.ndarray, alt: np.ndarray) -> np.ndarray:
    """True where ``ref -> alt`` is a purine-purine or pyrimidine-pyrimidine change."""
    return _TRANSITION[ref] == alt


def neighbor_rng(seed: int, window_id: str, p: float, *, replicate: int) -> np.random.Generator:
    """A stream per (window, p, replicate): a window's neighbors do not depend on the other windows."""
    return np.random.default_rng(
        np.random.SeedSequence([seed, zlib.crc32(window_id.encode()), round(p * 1_000_000), replicate])
    )


def read_snps(path: str | os.PathLike) -> dict[str, pd.DataFrame]:
    """``snps.tsv.gz`` grouped by window."""
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    missing = {"window_id", "offset", "alt", "af"} - set(table.columns)
    if missing:
        raise InputError(f"{path} lacks columns {', '.join(sorted(missing))}; re-run select_windows")
    table["offset"] = table["offset"].astype(np.int64)
    return {wid: g for wid, g in table.groupby("window_id", sort=False)}


def make_neighbors(
    windows_fasta: str,
    snps_path: str,
    *,
    params: Mapping[str, Any],
    out_fasta: str | os.PathLike,
    out_tsv: str | os.PathLike,
) -> Counter[str]:
    """Write the neighbor FASTA and TSV of every window of ``windows_fasta`` (one shard's); return counts.

    A shard may hold no window (few windows, many shards): its outputs are then empty but for the TSV header.
    """
    by_window = read_snps(snps_path)
    probs, per_prob, seed = params["probs"], params["per_prob"], params["seed"]
    kinds = ("snp", "control") if params["control"] else ("snp",)
    counts: Counter[str] = Counter()
    empty = SiteTable(np.zeros(0, np.int64), np.zeros((0, 1), np.uint8), np.ones((0, 1)))
    with atomic_outputs(out_fasta, out_tsv) as (fa_tmp, tsv_tmp), open(fa_tmp, "w") as fa, open(tsv_tmp, "w") as tsv:
        tsv.write("\t".join(NEIGHBOR_COLUMNS) + "\n")
        with pysam.FastxFile(windows_fasta) as windows:
            for record in windows:
                wid = record.name
                seq = np.frombuffer(record.sequence.encode(), dtype=np.uint8)
                g = by_window.get(wid)
                sites = (
                    empty
                    if g is None
                    else site_table(g["offset"].tolist(), g["alt"].tolist(), g["af"].tolist(), mode=params["allele"])
                )
                if len(sites.offsets) == 0:
                    counts["windows_without_snps"] += 1
                for p in probs:
                    for rep in range(per_prob):
                        rng = neighbor_rng(seed, wid, p, replicate=rep)
                        new, changed = snp_neighbor(seq, sites, p, rng=rng)
                        results = [("snp", new, changed)]
                        if "control" in kinds:
                            ts = int(is_transition(seq[changed], new[changed]).sum())
                            results.append(
                                (
                                    "control",
                                    *control_neighbor(
                                        seq, sites.offsets, n_transitions=ts, n_transversions=len(changed) - ts, rng=rng
                                    ),
                                )
                            )
                        for kind, s, ch in results:
                            nid = f"{wid}_{kind}_p{p:g}_r{rep}"
                            fa.write(f">{nid} {wid}\n{s.tobytes().decode()}\n")
                            tsv.write(
                                f"{nid}\t{wid}\t{p:g}\t{rep}\t{kind}\t{len(ch)}\t{','.join(map(str, ch.tolist()))}\n"
                            )
                            counts[f"{kind}_neighbors"] += 1
                            counts[f"{kind}_substitutions"] += len(ch)
                counts["windows"] += 1
    return counts


def merge_neighbor_tables(paths: Sequence[str | os.PathLike], out_path: str | os.PathLike) -> int:
    """Concatenate the shards' neighbor TSVs (one header), streaming line by line; returns the neighbor count."""
    rows = 0
    with atomic_outputs(out_path) as (tmp,), open(tmp, "w") as out:
        out.write("\t".join(NEIGHBOR_COLUMNS) + "\n")
        for path in paths:
            with open(path) as fh:
                header = fh.readline().rstrip("\n").split("\t")
                if header != list(NEIGHBOR_COLUMNS):
                    raise InputError(f"{path} is not a neighbor table (columns {header}); re-run make_neighbors")
                for line in fh:
                    out.write(line)
                    rows += 1
    return rows


def neighbor_summary(path: str | os.PathLike, chunksize: int = 1_000_000) -> pd.DataFrame:
    """Per (kind, prob): neighbor count and total substitutions, read in chunks (memory flat in the genome)."""
    parts = [
        chunk.groupby(["kind", "prob"]).n_changed.agg(["size", "sum"])
        for chunk in pd.read_csv(path, sep="\t", usecols=["kind", "prob", "n_changed"], chunksize=chunksize)
    ]
    if not parts:
        return pd.DataFrame(columns=["kind", "prob", "n", "n_changed"])
    total = pd.concat(parts).groupby(level=[0, 1]).sum()
    return total.rename(columns={"size": "n", "sum": "n_changed"}).reset_index()
