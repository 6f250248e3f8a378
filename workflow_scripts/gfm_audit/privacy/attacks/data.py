"""What an attack sees: per-window feature tables of every model, and membership."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..features import neighbor_column, neighbor_groups


@dataclass
class AttackData:
    """Inputs shared by all attacks on one attacked model.

    ``features`` maps every scored model to its per-window table (:mod:`..features`: one row per window, in
    ``window_ids`` order, indexed by window id: the window's own features and its neighbors' means and counts;
    the workflow leaves the neighbors' standard deviations on disk, as no attack reads them); no
    attack sees per-token or per-neighbor data, so the attacks' memory is O(windows x features).
    ``references`` are the reference models the workflow trained, with their membership in ``ref_member``.
    """

    target: str
    window_ids: list[str]
    member: np.ndarray  # 0/1 per window: the attacked model's ground truth
    features: Mapping[str, pd.DataFrame]
    references: Sequence[str] = ()
    ref_member: Mapping[str, np.ndarray] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)

    def windows(self, model: str) -> pd.DataFrame:
        """The model's per-window table, in ``window_ids`` order."""
        return self.features[model]

    def losses(self, models: Sequence[str]) -> np.ndarray:
        """(len(models), n_windows) mean NLL of each window under each model."""
        return np.stack([self.windows(m)["loss"].to_numpy(np.float64) for m in models])

    def neighbor_groups(self, model: str) -> list[tuple[str, float | None]]:
        """The model's neighbor (kind, p) groups, p None for a kind pooled over p."""
        return neighbor_groups(self.windows(model).columns)

    def neighbor_mean(self, model: str, group: tuple[str, float | None], feature: str) -> np.ndarray:
        """Per window, the mean of ``feature`` over its neighbors of ``group``."""
        return self.windows(model)[neighbor_column(*group, feature, stat="mean")].to_numpy(np.float64)
