"""Membership-inference attacks behind a small registry.

Each module in this package is one attack: it defines ``NAME``, ``features(params)``
(the per-sequence features it reads, :mod:`..features`, computed in the scoring jobs),
``missing(data)`` (why it cannot run on these inputs, or None) and ``run(data)``
returning ``{variant column: score per window}`` where a higher score means "more
likely a member". Adding an attack is adding one file here (and, for a new kind of
feature, its reduction in :func:`..features.sequence_features`).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

from .data import AttackData

__all__ = ["AttackData", "registry", "required_features", "required_reductions"]


def registry() -> dict[str, ModuleType]:
    """Attack name -> module, for every attack module in this package."""
    found = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "NAME") and hasattr(module, "run"):
            found[module.NAME] = module
    return found


def required_features(names: Sequence[str], params: Mapping[str, Any]) -> list[str]:
    """The per-sequence features the attacks ``names`` read, sorted: what the scoring jobs compute.

    Only the configured attacks count: a parameter of an attack that is not run (``min_k.k`` without min_k)
    asks for nothing, so it changes no scoring job.
    """
    attacks = registry()
    wanted: set[str] = set()
    for name in names:
        if name in attacks and hasattr(attacks[name], "features"):
            wanted |= set(attacks[name].features(params))
    return sorted(wanted)


def required_reductions(names: Sequence[str], params: Mapping[str, Any]) -> list[str]:
    """The per-window statistics beyond the neighbor means that the attacks ``names`` read, sorted: what the
    reduce step (rule window_features) adds to each model's table. An attack declares them in ``reductions(params)``
    (ramia: trimmed means over each window's range, :mod:`..ranges`); none unless such an attack is configured, so
    the table of any other configuration keeps its columns."""
    attacks = registry()
    wanted: set[str] = set()
    for name in names:
        if name in attacks and hasattr(attacks[name], "reductions"):
            wanted |= set(attacks[name].reductions(params))
    return sorted(wanted)
