"""Loading DNA language models and their tokenizers from local checkpoint folders.

Everything goes through ``AutoTokenizer`` and ``AutoModelForCausalLM`` /
``AutoModelForMaskedLM`` with ``local_files_only=True``: nothing is fetched
from a hub at run time. Remote code runs only where the config says
``trust_remote_code: true`` for that model. Weights load from safetensors;
a checkpoint with only a ``pytorch_model.bin`` is first opened here with
``torch.load(weights_only=True)`` and must be a plain state dict (pickled code
is refused in one line) before transformers reads it.
"""

from __future__ import annotations

import json
import logging
import pickle
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InputError

log = logging.getLogger(__name__)

SAFETENSORS = ("model.safetensors", "model.safetensors.index.json")
PICKLES = ("pytorch_model.bin", "pytorch_model.bin.index.json")


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
    masking: str = "sampled"  # exact | sampled (masked models)
    mask_fraction: float = 0.15

    @classmethod
    def from_config(cls, name: str, block: Mapping[str, Any]) -> ModelSpec:
        fields = {k: block[k] for k in cls.__dataclass_fields__ if k in block and k != "name"}
        return cls(name=name, **fields)


def read_checkpoint_config(spec: ModelSpec) -> dict[str, Any]:
    """Check the folder and its ``config.json`` before transformers sees them."""
    path = Path(spec.path)
    if not path.is_dir():
        raise InputError(
            f"model '{spec.name}': checkpoint folder {spec.path} does not exist; set models.{spec.name}.path "
            "to a local folder (hub ids are not downloaded at run time: download the checkpoint first)"
        )
    config_file = path / "config.json"
    if not config_file.is_file():
        raise InputError(
            f"model '{spec.name}': {spec.path} has no config.json; is it a Hugging Face checkpoint folder?"
        )
    try:
        config = json.loads(config_file.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(
            f"model '{spec.name}': {config_file} is not valid JSON ({exc.msg}, line {exc.lineno})"
        ) from None
    if config.get("auto_map") and not spec.trust_remote_code:
        raise InputError(
            f"model '{spec.name}': checkpoint {spec.path} needs its own Python code (config.json has auto_map) "
            f"and models.{spec.name}.trust_remote_code is false; set it to true only if you trust that code: "
            "it runs with your permissions"
        )
    architectures = config.get("architectures") or []
    masked = any(a.endswith("ForMaskedLM") for a in architectures)
    causal = any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures)
    if spec.kind == "causal" and masked and not causal:
        raise InputError(
            f"model '{spec.name}': {spec.path} is a masked LM ({', '.join(architectures)}) "
            f"but models.{spec.name}.kind is causal; set kind: masked"
        )
    if spec.kind == "masked" and causal and not masked:
        raise InputError(
            f"model '{spec.name}': {spec.path} is a causal LM ({', '.join(architectures)}) "
            f"but models.{spec.name}.kind is masked; set kind: causal"
        )
    return config


def quiet_transformers() -> None:
    """Loading bars and notices from transformers would flood the rule logs; our own logging reports progress."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def load_tokenizer(spec: ModelSpec):
    """The checkpoint's tokenizer, through ``AutoTokenizer``."""
    from transformers import AutoTokenizer

    read_checkpoint_config(spec)
    try:
        return AutoTokenizer.from_pretrained(spec.path, trust_remote_code=spec.trust_remote_code, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise InputError(
            f"model '{spec.name}': cannot load the tokenizer from {spec.path}: {first_line(exc)}"
        ) from None


def _auto_class(kind: str):
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    return AutoModelForCausalLM if kind == "causal" else AutoModelForMaskedLM


def torch_dtype(spec: ModelSpec):
    import torch

    return torch.bfloat16 if spec.dtype == "bfloat16" else torch.float32


def load_model(spec: ModelSpec):
    """The model in eval mode, from safetensors (or a weights-only ``.bin``)."""
    read_checkpoint_config(spec)
    quiet_transformers()
    path = Path(spec.path)
    has_safetensors = any((path / f).exists() for f in SAFETENSORS)
    has_pickle = any((path / f).exists() for f in PICKLES)
    if not has_safetensors and not has_pickle:
        raise InputError(
            f"model '{spec.name}': {spec.path} holds no weights (model.safetensors); "
            "for an architecture to train from scratch set init: scratch"
        )
    if not has_safetensors:
        log.warning(
            "model '%s': no safetensors in %s; reading pytorch_model.bin with weights_only=True", spec.name, path
        )
        for weights in _pickled_weight_files(spec):
            check_plain_state_dict(weights, f"model '{spec.name}' (models.{spec.name}.path)")
    try:
        model = _auto_class(spec.kind).from_pretrained(
            spec.path,
            trust_remote_code=spec.trust_remote_code,
            local_files_only=True,
            use_safetensors=has_safetensors,
            dtype=torch_dtype(spec),
        )
    except ValueError as exc:
        raise InputError(
            f"model '{spec.name}': {spec.path} cannot be loaded as a {spec.kind} LM: {first_line(exc)}; "
            f"check models.{spec.name}.kind"
        ) from None
    except OSError as exc:
        raise InputError(f"model '{spec.name}': cannot load weights from {spec.path}: {first_line(exc)}") from None
    return model.eval()


def _pickled_weight_files(spec: ModelSpec) -> list[Path]:
    path = Path(spec.path)
    if (path / PICKLES[0]).is_file():
        return [path / PICKLES[0]]
    index = path / PICKLES[1]
    try:
        shards = set(json.loads(index.read_text())["weight_map"].values())
    except (json.JSONDecodeError, KeyError, AttributeError, TypeError):
        raise InputError(
            f"model '{spec.name}' (models.{spec.name}.path): {index} is not a shard index "
            "(JSON with a weight_map of tensor name -> file); convert the checkpoint to model.safetensors"
        ) from None
    # A shard that is missing is left to transformers, which names it.
    return [path / s for s in sorted(shards) if (path / s).is_file()]


def check_plain_state_dict(file: Path, owner: str) -> None:
    """Refuse, in one line, a pickled checkpoint that is anything but a mapping of names to tensors.

    torch's own refusal spans many lines and advises ``weights_only=False``, i.e. running
    whatever code the file carries. A mapping that nests the tensors one level down (say
    under ``state_dict``) is refused too: transformers would find none of its keys and
    silently start from random weights.
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


def model_from_scratch(spec: ModelSpec, seed: int):
    """A freshly initialised model of the checkpoint folder's architecture (``init: scratch``)."""
    import torch
    from transformers import AutoConfig

    read_checkpoint_config(spec)
    quiet_transformers()
    config = AutoConfig.from_pretrained(spec.path, trust_remote_code=spec.trust_remote_code, local_files_only=True)
    torch.manual_seed(seed)
    return _auto_class(spec.kind).from_config(config, trust_remote_code=spec.trust_remote_code)


def max_tokens(spec: ModelSpec, model, tokenizer) -> int:
    """Longest input the model takes: the config's value, else the model's positions, else the tokenizer's."""
    if spec.max_length:
        return spec.max_length
    config = model.config
    for attr in ("max_position_embeddings", "n_positions", "max_seq_len"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            # ESM reserves two positions beyond the tokens it is given.
            return value - 2 if getattr(config, "model_type", "") == "esm" else value
    limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and limit < 10**9 else 10**9


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
