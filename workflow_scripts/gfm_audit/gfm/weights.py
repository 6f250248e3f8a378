"""Reading checkpoint weights without running code, and loading them with nothing left to chance.

A weight that the file lacks is never left at its random initial value: the
load stops with one line naming the model and the first such keys, unless the
config opts out with ``allow_missing_weights``. Weights the file has and the
model does not are refused the same way: they mean the file is another
architecture, or another variant of this one. A weight that is NaN or infinite
anywhere stops the load too, naming the first such tensor: such a model scores
every token NaN without failing.
"""

from __future__ import annotations

import json
import pickle
import re
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import InputError, first_line, listed

SAFETENSORS = ("model.safetensors", "model.safetensors.index.json")
PICKLES = ("pytorch_model.bin", "pytorch_model.bin.index.json")


def weight_format(folder: str | Path) -> str | None:
    """``safetensors``, ``pickle`` (only a ``pytorch_model.bin``) or None when the folder holds no weights."""
    folder = Path(folder)
    if any((folder / f).exists() for f in SAFETENSORS):
        return "safetensors"
    if any((folder / f).exists() for f in PICKLES):
        return "pickle"
    return None


def _shards(folder: Path, single: str, index: str, owner: str) -> list[Path]:
    if (folder / single).is_file():
        return [folder / single]
    try:
        shards = set(json.loads((folder / index).read_text())["weight_map"].values())
    except (json.JSONDecodeError, KeyError, AttributeError, TypeError):
        raise InputError(
            f"{owner}: {folder / index} is not a shard index (JSON with a weight_map of tensor name -> file); "
            "convert the checkpoint to model.safetensors"
        ) from None
    missing = sorted(s for s in shards if not (folder / s).is_file())
    if missing:
        raise InputError(f"{owner}: {folder / index} names {missing[0]}, which is not in {folder}; download it")
    return [folder / s for s in sorted(shards)]


def pickled_weight_files(folder: str | Path, owner: str) -> list[Path]:
    """The ``pytorch_model.bin`` file or the shards its index names."""
    return _shards(Path(folder), PICKLES[0], PICKLES[1], owner)


def check_plain_state_dict(file: Path, owner: str) -> None:
    """Refuse, in one line, a pickled checkpoint that is anything but a mapping of names to tensors.

    torch's own refusal spans many lines and advises ``weights_only=False``, i.e. running
    whatever code the file carries. A mapping that nests the tensors one level down (say
    under ``state_dict``) is refused too: its keys would match none of the model's.
    """
    import torch

    what_to_do = (
        "convert the checkpoint to model.safetensors where you trust its origin, or re-save it as a plain "
        "state dict: torch.save(model.state_dict(), path)"
    )
    try:
        # Tensors on the meta device: only names, shapes and dtypes are read, not the data.
        state = torch.load(file, map_location="meta", weights_only=True, mmap=zipfile.is_zipfile(file))
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        reason = f"it pickles the Python object {found.group(1)}" if found else "it cannot be unpickled as tensors"
        raise InputError(
            f"{owner}: {file} is not a plain state dict ({reason}) and is not loaded; {what_to_do}"
        ) from None
    except (EOFError, RuntimeError) as exc:
        raise InputError(f"{owner}: {file} is empty or damaged ({first_line(exc)}); {what_to_do}") from None
    if not isinstance(state, Mapping):
        raise InputError(
            f"{owner}: {file} holds a {type(state).__name__}, not a state dict (tensor name -> tensor); {what_to_do}"
        )
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise InputError(
                f"{owner}: {file} is not a plain state dict: its entry {key!r} is a {type(value).__name__}, "
                f"not a tensor; {what_to_do}"
            )


def read_state_dict(folder: str | Path, owner: str) -> dict[str, Any]:
    """All tensors of the checkpoint in ``folder``, by name, on the CPU (safetensors, else a weights-only bin)."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    fmt = weight_format(folder)
    if fmt is None:
        raise InputError(f"{owner}: {folder} holds no weights (model.safetensors)")
    state: dict[str, Any] = {}
    if fmt == "safetensors":
        for file in _shards(folder, SAFETENSORS[0], SAFETENSORS[1], owner):
            try:
                state.update(load_file(file, device="cpu"))
            except (SafetensorError, OSError) as exc:
                raise InputError(f"{owner}: {file} is not a readable safetensors file ({first_line(exc)})") from None
        return state
    for file in pickled_weight_files(folder, owner):
        check_plain_state_dict(file, owner)
        state.update(torch.load(file, map_location="cpu", weights_only=True))
    return state


def check_weight_names(
    *,
    missing: Iterable[str],
    unexpected: Iterable[str],
    name: str,
    folder: str | Path,
    allow_missing: bool,
    config_file: str = "config.json",
) -> None:
    """Stop, in one line naming the model and the first keys, when the file lacks weights or has extra ones.

    ``config_file``: the file that describes the model, named in the message (config.json, or Evo 2's YAML)."""
    missing, unexpected = sorted(missing), sorted(unexpected)
    if unexpected:
        raise InputError(
            f"model '{name}': the weights in {folder} have {len(unexpected)} tensors the model does not "
            f"({listed(unexpected)}); the checkpoint is another architecture or variant than its {config_file} says"
        )
    if missing and not allow_missing:
        raise InputError(
            f"model '{name}': the weights in {folder} lack {len(missing)} tensors ({listed(missing)}), which would "
            f"be left randomly initialised; use a complete checkpoint, or set models.{name}.allow_missing_weights: "
            "true to run with random values there"
        )


def non_finite(tensors: Iterable[tuple[str, Any]]) -> tuple[str, Any] | None:
    """The first floating-point (name, tensor) holding a NaN or an infinity, else None.

    Cost: one summation over each tensor, at memory speed (about 3 s for the 28 GB of a 7B model in float32;
    reading the file takes far longer), with no temporary of the tensor's size. NaN and infinities always
    reach the sum; a finite tensor whose sum overflows (float16) is then confirmed element by element.
    """
    import torch

    for name, tensor in tensors:
        if tensor.is_floating_point() and not torch.isfinite(tensor.sum()) and not bool(torch.isfinite(tensor).all()):
            return name, tensor
    return None


def check_finite(tensors: Iterable[tuple[str, Any]], *, name: str, folder: str | Path) -> None:
    """Stop in one line naming the first tensor with a NaN or an infinity."""
    import torch

    found = non_finite(tensors)
    if found is None:
        return
    key, tensor = found
    count = int((~torch.isfinite(tensor)).sum())
    raise InputError(
        f"model '{name}': the weights in {folder} are not finite: {key} holds {count} NaN or infinite values "
        f"(of {tensor.numel()}); the checkpoint is damaged or was saved from a diverged training run: download "
        "or export it again"
    )


def merge_copies(
    state: dict[str, Any], expected: set[str], copies: Iterable[tuple[str, str]], *, name: str, folder: str | Path
) -> None:
    """Drop, in place, the file's extra names of a tensor the architecture shares, once they hold its values.

    ``copies``: (regular expression of a copy's name, template of the name the model keeps it under), as
    ``re.Match.expand`` takes it. ``torch.save(model.state_dict())`` writes a module used at several places of
    the model once per place; a copy whose values differ means the file is not what it says, and stops.
    """
    import torch

    patterns = [(re.compile(p), template) for p, template in copies]
    for key in sorted(set(state) - expected):
        for pattern, template in patterns:
            match = pattern.fullmatch(key)
            owner = match.expand(template) if match else None
            if owner is None or owner == key or owner not in expected:
                continue
            copy = state.pop(key)
            if owner not in state:
                state[owner] = copy
            elif not (state[owner].shape == copy.shape and torch.equal(state[owner], copy)):
                raise InputError(
                    f"model '{name}': the weights in {folder} hold {key} and {owner}, which this architecture "
                    "shares as one tensor, with different values; the file is damaged or not this model's: "
                    "export it again from the original model"
                )
            break


def _tie(module, key: str, target: str) -> None:
    """Make ``key`` the same parameter as ``target`` (so that training keeps them equal too)."""
    import torch

    parent_name, _, leaf = key.rpartition(".")
    parent = module.get_submodule(parent_name)
    shared = module.get_parameter(target)
    if isinstance(getattr(parent, leaf, None), torch.nn.Parameter) and getattr(parent, leaf) is not shared:
        setattr(parent, leaf, shared)


def load_weights(
    module,
    state: Mapping[str, Any],
    *,
    tied: Mapping[str, str],
    name: str,
    folder: str | Path,
    allow_missing: bool = False,
    derived: Iterable[str] = (),
    unused: Iterable[str] = (),
    copies: Iterable[tuple[str, str]] = (),
    config_file: str = "config.json",
) -> list[str]:
    """Load ``state`` into ``module`` by exact names; returns the keys left at their initial values.

    A weight the file lacks is taken from the weight it is tied to: one the module
    itself shares it with (the same parameter under two names, as the original ties
    it for this config), or its partner in ``tied`` (which it is then tied to).
    ``derived``: regular expressions of buffers that config.json alone fixes (the
    module computes them; a file may lack them). ``unused``: prefixes of weights a
    file may carry that this model never uses (a pretraining head), dropped. ``copies``: extra names of a
    shared tensor (:func:`merge_copies`). A tensor with NaN or infinite values stops the load (:func:`check_finite`).
    ``config_file``: the file that describes the model, for the messages.
    """
    import torch

    variables = module.state_dict(keep_vars=True)
    expected = set(variables)
    state = {k: v for k, v in state.items() if k in expected or not k.startswith(tuple(unused))}
    check_finite(state.items(), name=name, folder=folder)
    merge_copies(state, expected, copies, name=name, folder=folder)
    shared: dict[int, list[str]] = {}
    for key, value in variables.items():
        shared.setdefault(id(value), []).append(key)
    filled = []
    for key in sorted(expected - set(state)):
        partners = [k for k in shared[id(variables[key])] if k in state]
        if partners:
            state[key] = state[partners[0]]
        elif key in tied and tied[key] in state:
            state[key] = state[tied[key]]
            filled.append(key)
    patterns = [re.compile(p) for p in derived]
    computed = {k for k in expected - set(state) if any(p.fullmatch(k) for p in patterns)}
    missing = expected - set(state) - computed
    check_weight_names(
        missing=missing,
        unexpected=set(state) - expected,
        name=name,
        folder=folder,
        allow_missing=allow_missing,
        config_file=config_file,
    )
    try:
        module.load_state_dict(state, strict=not (missing or computed))
    except RuntimeError as exc:
        detail = re.search(r"size mismatch for [^\n]*", str(exc))
        raise InputError(
            f"model '{name}': the weights in {folder} do not fit the model that its {config_file} describes "
            f"({detail.group(0).rstrip('.') if detail else first_line(exc)})"
        ) from None
    for key in filled:
        if isinstance(variables.get(tied[key]), torch.nn.Parameter):
            _tie(module, key, tied[key])
    return sorted(missing)
