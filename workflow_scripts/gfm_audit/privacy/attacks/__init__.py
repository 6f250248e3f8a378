"""Membership-inference attacks behind a small registry.

Each module in this package is one attack: it defines ``NAME``, ``missing(data)``
(why it cannot run on these inputs, or None) and ``run(data)`` returning
``{variant column: score per window}`` where a higher score means "more
likely a member". Adding an attack is adding one file here.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from .data import AttackData

__all__ = ["AttackData", "registry"]


def registry() -> dict[str, ModuleType]:
    """Attack name -> module, for every attack module in this package."""
    found = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "NAME") and hasattr(module, "run"):
            found[module.NAME] = module
    return found
