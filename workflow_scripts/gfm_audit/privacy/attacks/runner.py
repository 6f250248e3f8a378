"""Run the configured attacks on one model and collect one score column per variant."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ...errors import InputError
from ...outputs import atomic_outputs
from ..features import read_window_features
from ..membership import read_membership
from . import registry
from .data import AttackData

log = logging.getLogger(__name__)


def load_attack_data(
    target: str,
    *,
    feature_paths: Mapping[str, str],
    membership_path: str,
    references: Sequence[str],
    params: Mapping[str, Any],
) -> AttackData:
    """Everything the attacks need: per-window tables only; windows without a membership label are left out."""
    membership = read_membership(membership_path)
    if membership.target_member.nunique() < 2:
        raise InputError(
            f"{membership_path} labels only {'members' if membership.target_member.iloc[0] else 'non-members'}; "
            "attacks need both members and non-members (membership ground truth)"
        )
    window_ids = membership.window_id.tolist()
    features = {m: read_window_features(p, window_ids, columns=attack_columns(p)) for m, p in feature_paths.items()}
    ref_member = {r: membership[f"{r}_member"].to_numpy() for r in references if f"{r}_member" in membership}
    return AttackData(
        target=target,
        window_ids=window_ids,
        member=membership.target_member.to_numpy(),
        features=features,
        references=[r for r in references if r in ref_member and r in features],
        ref_member=ref_member,
        params=params,
    )


def attack_columns(path: str | os.PathLike) -> list[str]:
    """The per-window table's columns that attacks read: the window's own features and its neighbors' means and
    counts. The standard deviations (for figures and research) are left on disk: a third of the table's memory."""
    return [c for c in pq.read_schema(path).names if not c.endswith("_std")]


def run_attacks(data: AttackData, names: Sequence[str]) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Score table (``window_id, member``, then one column per variant) and the skipped attacks."""
    attacks = registry()
    unknown = [n for n in names if n not in attacks]
    if unknown:
        raise InputError(f"unknown attack {unknown[0]} in attacks.names; known: {', '.join(sorted(attacks))}")
    table = pd.DataFrame({"window_id": data.window_ids, "member": data.member})
    skipped = []
    for name in names:
        reason = attacks[name].missing(data)
        if reason:
            log.warning("attack %s skipped: %s", name, reason)
            skipped.append((name, reason))
            continue
        for column, values in attacks[name].run(data).items():
            table[column] = np.asarray(values, dtype=float)
    return table, skipped


def write_attack_outputs(
    table: pd.DataFrame,
    skipped: Sequence[tuple[str, str]],
    *,
    scores_path: str | os.PathLike,
    skipped_path: str | os.PathLike,
) -> None:
    with atomic_outputs(scores_path, skipped_path) as (s, k):
        table.to_csv(s, sep="\t", index=False, float_format="%.8g")
        pd.DataFrame(skipped, columns=["attack", "reason"]).to_csv(k, sep="\t", index=False)
