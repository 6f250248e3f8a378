"""What an attack sees: per-window scores of every model, neighbors, and membership."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class AttackData:
    """Inputs shared by all attacks on one attacked model.

    ``scores`` maps every scored model to its table from the scoring stage
    (one row per window or neighbor). ``references`` are the reference
    models the workflow trained, with their membership in ``ref_member``.
    """

    target: str
    window_ids: list[str]
    member: np.ndarray  # 0/1 per window: the attacked model's ground truth
    sequences: Mapping[str, str]
    scores: Mapping[str, pd.DataFrame]
    references: Sequence[str] = ()
    ref_member: Mapping[str, np.ndarray] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)

    def windows(self, model: str) -> pd.DataFrame:
        """The model's rows for the windows themselves, in ``window_ids`` order."""
        table = self.scores[model]
        return table[table.kind == "window"].set_index("window_id").loc[self.window_ids]

    def neighbors(self, model: str) -> pd.DataFrame:
        table = self.scores[model]
        return table[table.kind != "window"]

    def losses(self, models: Sequence[str]) -> np.ndarray:
        """(len(models), n_windows) mean NLL of each window under each model."""
        return np.stack([self.windows(m)["loss"].to_numpy(np.float64) for m in models])
