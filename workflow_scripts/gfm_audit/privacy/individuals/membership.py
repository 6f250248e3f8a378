"""Who each model trains on: a seeded split of the individuals, and the haplotype windows that gives a model."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ...errors import InputError
from ...sampling import sample_labels
from ..haplotypes import MIN_INDIVIDUALS
from ..membership import reference_names


def individuals_split(samples: Sequence[str], *, member_fraction: float, n_references: int, seed: int) -> pd.DataFrame:
    """``sample, target_member, ref_0_member, ..``: 1 = the model trained on this person's haplotypes.

    The target takes round(n * member_fraction) people; each reference model a random half, each from
    its own child of the seed (as in finetune mode), so the same seed gives the same split.
    """
    n = len(samples)
    if n < MIN_INDIVIDUALS:
        raise InputError(f"{n} individuals: the individuals mode needs at least {MIN_INDIVIDUALS}")
    n_members = int(round(n * member_fraction))
    if n_members in (0, n):
        raise InputError(
            f"membership.member_fraction={member_fraction} of {n} individuals leaves no members or no "
            "non-members; select more individuals or a fraction nearer 0.5"
        )
    streams = np.random.SeedSequence(seed).spawn(1 + n_references)
    table: dict[str, Any] = {"sample": list(samples)}
    table["target_member"] = sample_labels(n, n_members, streams[0])
    for name, stream in zip(reference_names(n_references), streams[1:], strict=True):
        table[f"{name}_member"] = sample_labels(n, n // 2, stream)
    return pd.DataFrame(table)


def read_individual_membership(path: str | os.PathLike) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"sample": str})


def member_haplotypes(index: pd.DataFrame, membership: pd.DataFrame, column: str) -> list[str]:
    """seq_ids of the haplotype windows of the people labelled 1 in ``column``, in index order."""
    members = set(membership["sample"][membership[column] == 1])
    return index.seq_id[index["sample"].isin(members)].tolist()
