"""Stage 3a: membership ground truth for every window.

``finetune``: the workflow itself trains the target on a seeded half of the
windows (members) and K reference models each on its own seeded random half
of all windows, so every window is IN for about half of the references and
OUT for the rest (the LiRA protocol, Carlini et al. 2022; Privacy Meter).
``regions``: member and non-member BED files label the windows of a model
whose training split is published.
"""

from __future__ import annotations

import os
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
