"""Stage 3a: membership ground truth for every window.

``finetune``: the workflow itself trains the target on a seeded half of the
windows (members) and K reference models each on its own seeded random half
of all windows, so every window is IN for about half of the references and
OUT for the rest (the LiRA protocol, Carlini et al. 2022; Privacy Meter).
``regions``: member and non-member BED files label the windows of a model
whose training split is published.

``membership.train_on: neighbor`` (finetune mode) trains every model on one seeded SNP neighbor of each of its
member windows instead of the window (:func:`trained_neighbors`): the same neighbor of a window for every model,
one that differs from the window where any does. ``target_member`` then labels the window's *range* (some
haplotype variant of this locus was trained on, RaMIA's label, attacks/ramia.py), not the window itself, which
no model saw verbatim; every attack is evaluated against it. In the other modes the range label is
``target_member`` too: a trained window is a point of its own range, and the neighbors of a held-out window are
variants no model trained on.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from ..outputs import atomic_outputs
from ..sampling import sample_labels
from .reference import ContigMatch
from .windows import read_bed


def reference_names(k: int) -> list[str]:
    return [f"ref_{i}" for i in range(k)]


def finetune_split(window_ids: Sequence[str], *, member_fraction: float, n_references: int, seed: int) -> pd.DataFrame:
    """``window_id, target_member, ref_0_member, ..``: 1 = trained on, 0 = held out.

    Each model draws from its own child of the seed, so adding references
    does not change the target's split.
    """
    n = len(window_ids)
    streams = np.random.SeedSequence(seed).spawn(1 + n_references)
    table = {"window_id": list(window_ids)}
    n_members = int(round(n * member_fraction))
    if n_members in (0, n):
        raise InputError(
            f"membership.member_fraction={member_fraction} of {n} windows leaves no members or no non-members; "
            "use more windows or a fraction nearer 0.5"
        )
    table["target_member"] = sample_labels(n, n_members, streams[0])
    for name, stream in zip(reference_names(n_references), streams[1:], strict=True):
        table[f"{name}_member"] = sample_labels(n, n // 2, stream)
    return pd.DataFrame(table)


def trained_neighbors(neighbors_tsv: str | os.PathLike, window_ids: Sequence[str], *, seed: int) -> list[str]:
    """Per window of ``window_ids``, the id of the SNP neighbor that the models train on instead of it.

    Drawn uniformly among the window's snp neighbors (every p and replicate) that change at least one base, or
    among all its snp neighbors when none does (a window without SNP sites: its neighbors are the window itself);
    from a stream of (``seed``, window id) of its own, so a window's choice depends neither on the other windows
    nor on the order of the table. Read in chunks: memory is that of the windows' candidate ids.
    """
    wanted = set(window_ids)
    changed: dict[str, list[str]] = {}
    unchanged: dict[str, list[str]] = {}
    columns = ["neighbor_id", "window_id", "kind", "n_changed"]
    for chunk in pd.read_csv(
        neighbors_tsv, sep="\t", usecols=columns, dtype={"neighbor_id": str, "window_id": str}, chunksize=500_000
    ):
        chunk = chunk[(chunk.kind == "snp") & chunk.window_id.isin(wanted)]
        for nid, wid, n in zip(chunk.neighbor_id, chunk.window_id, chunk.n_changed, strict=True):
            (changed if n > 0 else unchanged).setdefault(wid, []).append(nid)
    chosen = []
    for wid in window_ids:
        # Sorted: the draw does not depend on the order the shards wrote the neighbors in.
        candidates = sorted(changed.get(wid) or unchanged.get(wid) or [])
        if not candidates:
            raise InputError(
                f"window {wid} has no snp neighbor in {os.fspath(neighbors_tsv)}; membership.train_on neighbor "
                "needs the neighbors stage's snp neighbors of every window (re-run make_neighbors)"
            )
        rng = np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(wid.encode())]))
        chosen.append(candidates[int(rng.integers(len(candidates)))])
    return chosen


def _overlaps(windows: pd.DataFrame, intervals: Sequence[tuple[str, int, int]]) -> np.ndarray:
    hit = np.zeros(len(windows), dtype=bool)
    by_contig: dict[str, list[tuple[int, int]]] = {}
    for chrom, s, e in intervals:
        by_contig.setdefault(chrom, []).append((s, e))
    for chrom, spans in by_contig.items():
        spans.sort()
        starts = np.array([s for s, _ in spans])
        ends = np.maximum.accumulate(np.array([e for _, e in spans]))
        rows = np.flatnonzero(windows.chrom.to_numpy() == chrom)
        # The last interval starting before a window's end overlaps it iff the running max end passes its start.
        i = np.searchsorted(starts, windows.end.to_numpy()[rows], side="left") - 1
        ok = i >= 0
        hit[rows[ok]] = ends[i[ok]] > windows.start.to_numpy()[rows[ok]]
    return hit


def region_labels(
    windows: pd.DataFrame, *, member_bed: str, nonmember_bed: str, contigs: Sequence[ContigMatch]
) -> tuple[pd.DataFrame, int]:
    """Label windows by overlap with the member / non-member BED files.

    Returns the labelled windows and how many were in neither file (dropped).
    """
    member = _overlaps(windows, read_bed(member_bed, contigs))
    nonmember = _overlaps(windows, read_bed(nonmember_bed, contigs))
    both = windows.window_id[member & nonmember].tolist()
    if both:
        raise InputError(
            f"windows {', '.join(both[:3])} overlap both membership.member_bed {member_bed} and "
            f"membership.nonmember_bed {nonmember_bed}; the two BED files must not overlap"
        )
    keep = member | nonmember
    labelled = pd.DataFrame({"window_id": windows.window_id[keep], "target_member": member[keep].astype(np.int8)})
    if labelled.target_member.nunique() < 2:
        raise InputError(
            f"the BED files label {len(labelled)} windows but not both members and non-members; "
            "check membership.member_bed / nonmember_bed against windows.chromosomes"
        )
    return labelled.reset_index(drop=True), int((~keep).sum())


def write_membership(table: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_outputs(path) as (tmp,):
        table.to_csv(tmp, sep="\t", index=False)


def read_membership(path: str | os.PathLike) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"window_id": str})
