"""Config validation against ``config/config.schema.yaml``, with defaults filled in."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .errors import InputError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "config" / "config.schema.yaml"


def _with_defaults(validator_class: type) -> type:
    """Extend a validator so that ``properties`` inserts each missing ``default``.

    Defaults are set before the sub-schemas run, so an absent block given
    ``default: {}`` is itself filled from its own properties' defaults.
    """
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def _one_line(error: jsonschema.ValidationError, source: str) -> str:
    where = _key_path(error)
    prefix = "" if where == "<top level>" else f"{where}."
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        return (
            f"config error in {source}: unknown key {prefix}{unknown[0]}; allowed keys here are: {', '.join(allowed)}"
        )
    if error.validator == "required":
        missing = error.message.split("'")[1]
        return f"config error in {source}: missing required key {prefix}{missing}"
    if error.instance is None:
        return f"config error in {source}: key {where} must be set here ({error.message})"
    return f"config error in {source}: key {where}: {error.message}"


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    with open(path) as fh:
        return yaml.safe_load(fh)


def validate_config(
    config: dict[str, Any], schema: Mapping | None = None, source: str = "the config"
) -> dict[str, Any]:
    """Fill defaults into ``config`` in place and validate it.

    Raises :class:`InputError` with one line naming the first offending key.
    Returns the same (now completed) dict.
    """
    schema = load_schema() if schema is None else schema
    validator = _Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (list(e.absolute_path), e.message))
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        raise InputError(_one_line(best, source))
    check_consistency(config, source)
    return config


def check_consistency(config: dict[str, Any], source: str = "the config") -> None:
    """Rules that span several keys, which the schema cannot say in one line."""
    models, target = config.get("models", {}), config.get("target")
    membership = config.get("membership", {})
    mode = membership.get("mode", "none")
    where = f"config error in {source}:"
    if target is not None and target not in models:
        raise InputError(f"{where} target '{target}' is not a key of models (have: {', '.join(models) or 'none'})")
    if models and mode != "none" and target is None:
        raise InputError(f"{where} membership.mode {mode} needs target: the name of the audited model")
    if mode == "regions" and not (membership.get("member_bed") and membership.get("nonmember_bed")):
        raise InputError(f"{where} membership.mode regions needs membership.member_bed and membership.nonmember_bed")
    for name, spec in models.items():
        if spec.get("init") == "scratch" and not (mode == "finetune" and name == target):
            raise InputError(
                f"{where} models.{name}.init is scratch, which only the target can use in membership.mode finetune"
            )
    _check_ga(config, where)
    _check_fimba(config, where)


def _check_ga(config: dict[str, Any], where: str) -> None:
    ga = config.get("robustness", {}).get("ga", {})
    classifiers = ga.get("classifiers", {})
    if not classifiers:
        return
    for key in ("train", "test"):
        if not ga.get(key):
            raise InputError(f"{where} robustness.ga.{key} must name a sequence,label CSV when classifiers are set")
    models = config.get("models", {})
    for name, spec in classifiers.items():
        if spec["kind"] == "huggingface" and not spec.get("path"):
            raise InputError(f"{where} robustness.ga.classifiers.{name}: kind huggingface needs path (a local folder)")
        if spec["kind"] == "gfm_head" and spec.get("model") not in models:
            raise InputError(
                f"{where} robustness.ga.classifiers.{name}: kind gfm_head needs model, one of the models block "
                f"(have: {', '.join(models) or 'none'})"
            )
    attack = ga.get("attack", {})
    if attack.get("elitism", 0) >= attack.get("population", 2):
        raise InputError(f"{where} robustness.ga.attack.elitism must be smaller than population")


def _check_fimba(config: dict[str, Any], where: str) -> None:
    fimba = config.get("robustness", {}).get("fimba", {})
    if not fimba.get("data"):
        return
    if fimba.get("position", 8) >= fimba.get("n_points", 10):
        raise InputError(f"{where} robustness.fimba.position must be below n_points (0 .. n_points-1)")


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file and validate it (library use, outside Snakemake)."""
    try:
        with open(path) as fh:
            config = yaml.safe_load(fh) or {}
    except FileNotFoundError:
        raise InputError(f"config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        raise InputError(f"config file {path} is not valid YAML{line}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(config, dict):
        raise InputError(f"config file {path} must hold a mapping of keys, not {type(config).__name__}")
    return validate_config(config, source=str(path))
