"""One model of the config's ``models`` block: what every loading step is handed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelSpec:
    """One entry of the config's ``models`` block (with its name)."""

    name: str
    path: str
    kind: str  # causal | masked
    trust_remote_code: bool = False
    dtype: str = "auto"  # auto | float32 | bfloat16
    max_length: int | None = None
    init: str = "pretrained"  # pretrained | scratch
    masking: str = "sampled"  # exact | sampled | stride (masked models)
    mask_fraction: float = 0.15
    stride_k: int = 6  # forward passes per sequence in stride mode
    architecture: str = "auto"  # auto | a native family | transformers
    allow_missing_weights: bool = False

    @classmethod
    def from_config(cls, name: str, block: Mapping[str, Any]) -> ModelSpec:
        fields = {k: block[k] for k in cls.__dataclass_fields__ if k in block and k != "name"}
        return cls(name=name, **fields)
