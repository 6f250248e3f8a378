"""How person-level attacks gain with the number of windows per person."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ...sampling import sample_indices
from .person_attacks import PERSON_ATTACKS, person_scores


def window_counts(n_windows: int) -> list[int]:
    """1, 4, 16, ... below ``n_windows``, then ``n_windows`` itself."""
    counts, k = [], 1
    while k < n_windows:
        counts.append(k)
        k *= 4
    return [*counts, n_windows]


def windows_curve(
    features: Mapping[str, pd.DataFrame],
    index: pd.DataFrame,
    membership: pd.DataFrame,
    *,
    target: str,
    repeats: int,
    seed: int,
    centre: bool = True,
) -> pd.DataFrame:
    """AUC of each person-level attack using k windows per person (k = 1, 4, 16, .., all).

    Each repeat draws k windows at random (seeded), the same for every person; rows give the mean
    and standard deviation of the AUC over the repeats (one draw only for k = all).
    """
    from sklearn.metrics import roc_auc_score

    window_ids = list(dict.fromkeys(index.window_id))
    rng = np.random.default_rng(seed)
    rows = []
    for k in window_counts(len(window_ids)):
        aucs: dict[str, list[float]] = {a: [] for a in PERSON_ATTACKS}
        for _ in range(1 if k == len(window_ids) else repeats):
            subset = [window_ids[i] for i in sample_indices(len(window_ids), k, rng)]
            table = person_scores(features, index, membership, target=target, windows=subset, centre=centre)
            for attack in PERSON_ATTACKS:
                ok = table[attack].notna()
                if table.member[ok].nunique() == 2:
                    aucs[attack].append(float(roc_auc_score(table.member[ok], table[attack][ok])))
        for attack, values in aucs.items():
            rows.append(
                {
                    "attack": attack,
                    "windows": k,
                    "auc_mean": float(np.mean(values)) if values else np.nan,
                    "auc_sd": float(np.std(values)) if values else np.nan,
                    "draws": len(values),
                }
            )
    return pd.DataFrame(rows)
