"""The grid of a study (config ``study.grid``): its points, their names, seeds and per-point configs.

A point is one combination of the grid's values; its config is the workflow config with those values put in
place (``epochs`` into ``membership.training.epochs`` and so on; in membership mode genome ``duplication`` into
``membership.genome.duplication`` and ``heldout_fraction`` in place of ``member_fraction``), and every point is a
full privacy audit (training, scoring, attacks) under ``results/study/<point>/``, sharing the windows and
neighbors.

Points are ordered by key (``GRID_KEYS`` or ``GENOME_KEYS`` order, then ``model_config`` keys by name) and,
within a key, by the order of its values in the config: the first key varies slowest. Names join
``<short>-<value>`` with ``_``, e.g. ``epochs-4_dup-1``.

Seeds: a point's membership split and training seeds are ``membership.seed`` unless the grid has a ``seed``
key, whose value then replaces it. Points that differ only in epochs, duplication, model or size therefore share
their members and their initialisation seed: a curve over epochs compares like with like, and its noise shows
along the ``seed`` key.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import InputError

# Grid key -> (short name in point names, where the value goes in the config). The model key is the target's
# name, and model_config.<key> a key of its config.json: both handled apart from these paths.
GRID_KEYS: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "model": ("model", None),
    "epochs": ("epochs", ("membership", "training", "epochs")),
    "duplication": ("dup", ("membership", "training", "duplication")),
    "member_fraction": ("members", ("membership", "member_fraction")),
    "seed": ("seed", ("membership", "seed")),
}
# Mode genome (pretraining-like: from scratch on the reference minus held-out blocks) repeats every chunk
# membership.genome.duplication times an epoch, and holds out a share of the genome instead of a member fraction.
GENOME_KEYS: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "model": GRID_KEYS["model"],
    "epochs": GRID_KEYS["epochs"],
    "duplication": ("dup", ("membership", "genome", "duplication")),
    "heldout_fraction": ("heldout", ("membership", "genome", "heldout_fraction")),
    "seed": GRID_KEYS["seed"],
}
MODEL_CONFIG = "model_config."
# Membership modes whose points train models (the grid varies how): a mode that trains nothing has nothing to vary.
STUDY_MODES = ("finetune", "genome")


def mode_keys(config: Mapping[str, Any]) -> dict[str, tuple[str, tuple[str, ...] | None]]:
    """The grid keys of the config's membership mode, with their short names and config paths."""
    return GENOME_KEYS if config.get("membership", {}).get("mode") == "genome" else GRID_KEYS


@dataclass(frozen=True)
class StudyPoint:
    """One grid point: its name (a folder under results/study/), its values by grid key and its seed."""

    name: str
    values: dict[str, Any]
    seed: int
    target: str


def grid_keys(grid: Mapping[str, Sequence], keys: Mapping[str, Any] = GRID_KEYS) -> list[str]:
    """The grid's keys in point order: ``keys`` order (the mode's), then model_config keys by name."""
    fixed = [k for k in keys if k in grid]
    return fixed + sorted(k for k in grid if k.startswith(MODEL_CONFIG))


def expand_grid(config: Mapping[str, Any]) -> list[StudyPoint]:
    """Every point of ``config["study"]["grid"]`` (empty grid: no study), checked; see the module docstring.

    Stops in one line on an unknown key, a bad value, or more points than ``study.max_points``, before any job is
    scheduled.
    """
    study = config.get("study") or {}
    grid = study.get("grid") or {}
    if not grid:
        return []
    _check_keys(config, grid)
    known = mode_keys(config)
    keys = grid_keys(grid, known)
    count = 1
    for key in keys:
        count *= len(grid[key])
    limit = study.get("max_points", 64)
    if count > limit:
        sizes = " x ".join(f"{len(grid[k])} {k}" for k in keys)
        raise InputError(
            f"config error: study.grid has {count} points ({sizes}), more than study.max_points {limit}; shorten "
            "the grid's lists or raise study.max_points"
        )
    membership = config["membership"]
    points = []
    for combination in itertools.product(*(grid[k] for k in keys)):
        values = dict(zip(keys, combination, strict=True))
        name = "_".join(f"{_short(k, known)}-{_format(v)}" for k, v in values.items())
        points.append(
            StudyPoint(
                name=name,
                values=values,
                seed=int(values.get("seed", membership["seed"])),
                target=values.get("model", config["target"]),
            )
        )
    return points


def point_config(config: Mapping[str, Any], point: StudyPoint) -> dict[str, Any]:
    """The workflow config with the point's values in place (a deep copy; ``config`` is left alone).

    The grid's other models are left out of the point's ``models``: each is another point's target, and an
    ``init: scratch`` model that is not the target is refused by the config's own checks."""
    out = copy.deepcopy(dict(config))
    grid_models = (out.pop("study", None) or {}).get("grid", {}).get("model", [])
    out["target"] = point.target
    out["models"] = {k: v for k, v in out.get("models", {}).items() if k == point.target or k not in grid_models}
    for key, value in point.values.items():
        path = mode_keys(config).get(key, (None, None))[1]
        if path is None:
            continue
        block = out
        for part in path[:-1]:
            block = block.setdefault(part, {})
        block[path[-1]] = value
    return out


def model_config_overrides(point: StudyPoint) -> dict[str, Any]:
    """The point's config.json keys of the target (``model_config.<key>`` grid keys), by key."""
    return {k[len(MODEL_CONFIG) :]: v for k, v in point.values.items() if k.startswith(MODEL_CONFIG)}


def _short(key: str, keys: Mapping[str, Any]) -> str:
    return key[len(MODEL_CONFIG) :] if key.startswith(MODEL_CONFIG) else keys[key][0]


def _format(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _check_keys(config: Mapping[str, Any], grid: Mapping[str, Sequence]) -> None:
    where = "config error: study.grid"
    mode = config.get("membership", {}).get("mode", "none")
    if mode not in STUDY_MODES:
        why = "has no study rules yet" if mode == "individuals" else "trains no model"
        raise InputError(
            f"{where} varies how a model is trained, but membership.mode {mode} {why}; use mode "
            f"{' or '.join(STUDY_MODES)}, or remove study.grid"
        )
    keys = mode_keys(config)
    known = [*keys, f"{MODEL_CONFIG}<key>"]
    for key, values in grid.items():
        if key not in keys and not (key.startswith(MODEL_CONFIG) and len(key) > len(MODEL_CONFIG)):
            other = next((m for m, k in (("finetune", GRID_KEYS), ("genome", GENOME_KEYS)) if key in k), None)
            why = f" in membership.mode {mode} (it is mode {other}'s)" if other else ""
            raise InputError(f"{where} has an unknown key {key}{why}; use one of {', '.join(known)}")
        if not isinstance(values, list) or not values:
            raise InputError(f"{where}.{key} must be a non-empty list of values, e.g. {key}: [1, 2]")
        if len({repr(v) for v in values}) < len(values):
            raise InputError(f"{where}.{key} lists a value twice; each point must be distinct")
        for value in values:
            _check_value(config, key, value)
    if config.get("membership", {}).get("training", {}).get("dp") and any(v > 1 for v in grid.get("duplication", [1])):
        raise InputError(
            f"{where}.duplication above 1 with membership.training.dp: the DP claim is per training row, and a "
            "window repeated k times is a group of k; remove one of them"
        )


def _check_value(config: Mapping[str, Any], key: str, value: Any) -> None:
    where = f"config error: study.grid.{key}"
    integer = isinstance(value, int) and not isinstance(value, bool)
    if key in ("epochs", "duplication") and not (integer and value >= 1):
        raise InputError(f"{where} has {value!r}; use whole numbers of at least 1")
    if key == "seed" and not (integer and value >= 0):
        raise InputError(f"{where} has {value!r}; use whole numbers of at least 0")
    if key in ("member_fraction", "heldout_fraction") and not (isinstance(value, (int, float)) and 0 < value < 1):
        raise InputError(f"{where} has {value!r}; use fractions strictly between 0 and 1")
    if key == "model":
        _check_trainable(config, value)
    if key.startswith(MODEL_CONFIG):
        _check_model_config(config, key, value)


def _check_trainable(config: Mapping[str, Any], name: Any) -> None:
    """A grid model must be in models and trainable here: a checkpoint whose architecture gfm-audit reads. Every
    such architecture trains: init pretrained from its weights, init scratch from its config.json (a
    transformers class through ``from_config``, a native family such as HyenaDNA with its layers' seeded default
    initialisation; ``models.model_from_scratch``)."""
    from ...models import ModelSpec, architecture_of, read_checkpoint_config

    models = config.get("models", {})
    if name not in models:
        raise InputError(
            f"config error: study.grid.model names {name!r}, which is not a key of models (have: "
            f"{', '.join(models) or 'none'})"
        )
    spec = ModelSpec.from_config(name, models[name])
    try:
        architecture_of(spec, read_checkpoint_config(spec))
    except InputError as exc:
        raise InputError(f"config error: study.grid.model {name} cannot be trained here: {exc}") from None


def _check_model_config(config: Mapping[str, Any], key: str, value: Any) -> None:
    """Size keys change the architecture: only a model built from scratch can take them, and only keys its
    config.json has (a misspelt key would silently build the same model)."""
    import json
    from pathlib import Path

    where = f"config error: study.grid.{key}"
    grid_models = (config.get("study") or {}).get("grid", {}).get("model") or [config["target"]]
    for name in grid_models:
        block = config["models"].get(name, {})
        if block.get("init", "pretrained") != "scratch":
            raise InputError(
                f"{where} changes the size of model {name}, whose init is pretrained (its weights fix the size); "
                f"set models.{name}.init: scratch or remove the key"
            )
        config_json = Path(block["path"]) / "config.json"
        present = json.loads(config_json.read_text()) if config_json.is_file() else {}
        if key[len(MODEL_CONFIG) :] not in present:
            raise InputError(
                f"{where}: {config_json} has no key {key[len(MODEL_CONFIG) :]}; use a key of that file "
                "(e.g. n_layer, n_embd for GPT-2)"
            )
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise InputError(f"{where} has {value!r}; use numbers")
