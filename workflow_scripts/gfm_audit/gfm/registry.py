"""Which code reads a checkpoint: one of our native family modules, or transformers' own classes.

Family modules (``gfm_audit.gfm.<family>``) are imported by name when first
asked, so that the library works with whichever families are present and a
family's torch code is not loaded for a run that does not use it. Each module
follows the contract in its docstring: ``ARCHITECTURE``, ``KINDS``,
``ACCEPTS_ATTENTION_MASK``, ``claims(config)``, ``check_supported(config, name=)``,
``build_lm(config, kind=)``, ``TIED_WEIGHTS`` and ``load_tokenizer(folder)``; optionally
``DERIVED_BUFFERS``, ``UNUSED_WEIGHT_PREFIXES``, ``SHARED_COPIES`` (see ``weights.load_weights``) and
``max_positions(config)`` (see ``fit.position_limit``); for a checkpoint layout without ``config.json``,
``read_folder_config(folder, name=)`` (asked by ``models.read_checkpoint_config``),
``read_state_dict(folder, owner)`` (its weight files) and ``config_file_name(config)`` (the file named in
messages).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from ..errors import InputError

# In the order ``auto`` asks them; a checkpoint claimed by none is read by transformers' classes.
FAMILIES = ("hyenadna", "caduceus", "dnabert2", "nt_v2", "gena_lm", "evo1", "evo2", "nt_v3")
TRANSFORMERS = "transformers"
AUTO = "auto"
ARCHITECTURES = (AUTO, *FAMILIES, TRANSFORMERS)

_modules: dict[str, ModuleType | None] = {}


def family_module(architecture: str) -> ModuleType | None:
    """The family's module, or None when this installation does not have it."""
    if architecture not in FAMILIES:
        raise ValueError(f"{architecture} is not a native family ({', '.join(FAMILIES)})")
    if architecture not in _modules:
        name = f"{__package__}.{architecture}"
        try:
            _modules[architecture] = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # the module exists but something it imports does not: a real error
                raise
            _modules[architecture] = None
    return _modules[architecture]


def available_families() -> list[str]:
    """The native families this installation has, in ``FAMILIES`` order."""
    return [f for f in FAMILIES if family_module(f) is not None]


def detect(config: Mapping[str, Any]) -> str:
    """The first family whose module claims this ``config.json``, else ``transformers``."""
    for family in available_families():
        if family_module(family).claims(dict(config)):
            return family
    return TRANSFORMERS


def resolve(architecture: str, config: Mapping[str, Any], *, name: str) -> str:
    """The architecture that reads model ``name``: the configured one, or the detected one for ``auto``."""
    if architecture == AUTO:
        return detect(config)
    if architecture == TRANSFORMERS:
        return TRANSFORMERS
    if architecture not in FAMILIES:
        raise InputError(
            f"model '{name}': models.{name}.architecture is {architecture}; use one of {', '.join(ARCHITECTURES)}"
        )
    if family_module(architecture) is None:
        raise InputError(
            f"model '{name}': models.{name}.architecture is {architecture}, which this installation of gfm-audit "
            f"does not implement (it has: {', '.join(available_families()) or 'none'}); set architecture: auto"
        )
    return architecture
