"""Range membership (RaMIA) with people's haplotypes as the range points, and its ground truth.

RaMIA (Tao & Shokri 2024, "Range Membership Inference Attacks"; privacy/ranges.py) asks whether a model trained on
*any* point of a range. In mode individuals a person's haplotype at a locus is a point: the range of (person p,
window w) is p's haplotype sequences at w (two for a diploid person, one distinct sequence when p is homozygous
there). Its score is RaMIA's trimmed mean of the points' LOSS scores -L(x) under the target, the lowest-scoring
share q (``attacks.ramia.trim``) dropped: mean of the max(1, floor((1 - q) n)) highest -L(x) of the n points.

The label is the range's own: 1 when some point of the range is a sequence the target trained on, that is a
haplotype of a member individual at w with the same bases. A member's ranges are all members; a non-member's range
is a member too wherever one of their haplotypes equals a member's (common haplotypes, a homozygous reference
genotype): the model saw those exact bases, from someone else. The person's own label is kept beside it
(``person_member``), so the two can be compared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ...ragged import offsets_of
from ..ranges import check_trim, trimmed_means

RANGE_COLUMNS = ("range_id", "sample", "window_id", "member", "person_member", "n_points")


def trained_sequences(index: pd.DataFrame, membership: pd.DataFrame, sequences: Mapping[str, str]) -> set:
    """(window_id, bases) of every haplotype window the target trained on: its member individuals'."""
    members = set(membership["sample"][membership.target_member == 1])
    rows = index[index["sample"].isin(members)]
    return {(w, sequences[sid].upper()) for sid, w in zip(rows.seq_id, rows.window_id, strict=True)}


def haplotype_ranges(
    losses: pd.Series,
    index: pd.DataFrame,
    membership: pd.DataFrame,
    *,
    sequences: Mapping[str, str],
    trims: Sequence[float] = (0.5,),
) -> pd.DataFrame:
    """One row per (person, window): :data:`RANGE_COLUMNS` and a score ``ramia_trim<q>`` per trim q.

    ``losses``: the target's mean token NLL per ``seq_id``; ``index``: the haplotype index (``seq_id, sample,
    window_id``); ``sequences``: the haplotype bases per ``seq_id`` (results/individuals/haplotypes.fa). A point
    without a loss (a sequence with no scored token) is not in its range; a range without a point scores NaN.
    """
    for q in trims:
        check_trim(q)
    trained = trained_sequences(index, membership, sequences)
    person = membership.set_index("sample").target_member
    seqs = index.sort_values(["sample", "window_id"], kind="stable").reset_index(drop=True)
    keys = seqs["sample"].astype(str) + ":" + seqs.window_id.astype(str)
    ranges = pd.Index(pd.unique(keys))
    position = ranges.get_indexer(keys)
    bases = [sequences[sid].upper() for sid in seqs.seq_id]
    hit = np.array([(w, b) in trained for w, b in zip(seqs.window_id, bases, strict=True)])
    values = losses.reindex(seqs.seq_id).to_numpy(float)
    scored = ~np.isnan(values)
    first = np.unique(position, return_index=True)[1]
    table = pd.DataFrame(
        {
            "range_id": ranges,
            "sample": seqs["sample"].to_numpy()[first],
            "window_id": seqs.window_id.to_numpy()[first],
            "member": np.bincount(position, weights=hit, minlength=len(ranges)) > 0,
            "person_member": person.reindex(seqs["sample"].to_numpy()[first]).to_numpy(int),
            "n_points": np.bincount(position[scored], minlength=len(ranges)),
        }
    )
    table["member"] = table.member.astype(int)
    # Points grouped by range in range order (positions are already sorted: seqs is sorted by its key).
    offsets = offsets_of(table.n_points.to_numpy())
    for q in trims:
        table[f"ramia_trim{q:g}"] = -trimmed_means(values[scored], offsets, q)
    return table
