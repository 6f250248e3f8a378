"""Loading a checkpoint folder through a native family module or through transformers' classes, safely.

Both paths end the same way: every weight of the model comes from the file
(or from the weight it is tied to) and is finite, and anything else stops the
run in one line; a model is told whether it takes an attention mask, so that scoring
passes one only to models whose forward has it. :func:`load_tokenizer`,
:func:`load_model` and :func:`scratch_model` take a checkpoint whose family is
resolved (``gfm_audit.models``) and return it checked against its tokenizer
and ``max_length`` (:mod:`.fit`).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError, first_line
from . import fit, memory, registry
from .weights import (
    check_finite,
    check_plain_state_dict,
    check_weight_names,
    load_weights,
    pickled_weight_files,
    read_state_dict,
    weight_format,
)

if TYPE_CHECKING:
    from .spec import ModelSpec

log = logging.getLogger(__name__)

# A folder with none of these has no tokenizer that transformers could build.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "tokenizer.model",
    "spiece.model",
)
MASK_ATTRIBUTE = "gfm_audit_accepts_attention_mask"


def owner(spec: ModelSpec) -> str:
    return f"model '{spec.name}' (models.{spec.name}.path)"


def accepts_attention_mask(model) -> bool:
    """Whether ``model.forward`` takes ``attention_mask``: the family's word for native models, else the signature."""
    flag = getattr(model, MASK_ATTRIBUTE, None)
    if flag is not None:
        return bool(flag)
    return "attention_mask" in inspect.signature(model.forward).parameters


def tie_weights_on(config: Mapping[str, Any]) -> bool:
    # PretrainedConfig's default, which the originals of every family inherit.
    return bool(config.get("tie_word_embeddings", True))


def family_ties(family, config: Mapping[str, Any]) -> dict[str, str]:
    """The family's tied weights for this config: its own ``tied_weights(config)`` where it has one, else
    ``TIED_WEIGHTS`` when config.json ties word embeddings (ties the module makes itself are found there)."""
    if hasattr(family, "tied_weights"):
        return dict(family.tied_weights(dict(config)))
    return dict(family.TIED_WEIGHTS) if tie_weights_on(config) else {}


# --- native families -------------------------------------------------------------


def native_family(spec: ModelSpec, config: Mapping[str, Any], architecture: str):
    """The family module for ``architecture``, after checking the variant and the model kind."""
    family = registry.family_module(architecture)
    family.check_supported(dict(config), name=spec.name)
    if spec.kind not in family.KINDS:
        raise InputError(
            f"model '{spec.name}': {spec.path} is a {architecture} checkpoint, which gfm-audit reads as a "
            f"{' or '.join(family.KINDS)} LM; set models.{spec.name}.kind: {family.KINDS[0]}"
        )
    return family


def native_model(spec: ModelSpec, config: Mapping[str, Any], architecture: str, *, weights: bool = True):
    """Our module for the checkpoint, with its weights loaded by their original names (or untrained)."""
    import torch

    family = native_family(spec, config, architecture)
    model = family.build_lm(dict(config), kind=spec.kind)
    if weights:
        # A family with its own weight files (Evo 2's .pt) reads them itself, and says which file its config is.
        reader = getattr(family, "read_state_dict", None)
        if reader is None and weight_format(spec.path) is None:
            raise InputError(
                f"model '{spec.name}': {spec.path} holds no weights (model.safetensors); "
                "for an architecture to train from scratch set init: scratch"
            )
        state = (reader or read_state_dict)(spec.path, owner(spec))
        config_file = family.config_file_name(config) if hasattr(family, "config_file_name") else "config.json"
        left = load_weights(
            model,
            state,
            tied=family_ties(family, config),
            config_file=config_file,
            name=spec.name,
            folder=spec.path,
            allow_missing=spec.allow_missing_weights,
            derived=getattr(family, "DERIVED_BUFFERS", ()),
            unused=getattr(family, "UNUSED_WEIGHT_PREFIXES", ()),
            copies=getattr(family, "SHARED_COPIES", ()),
        )
        if left:
            log.warning("model '%s': %d weights are random (allow_missing_weights): %s", spec.name, len(left), left)
    setattr(model, MASK_ATTRIBUTE, bool(family.ACCEPTS_ATTENTION_MASK))
    model.gfm_audit_architecture = architecture
    # For messages the model itself raises about its input (NT v3: shorter than one down-sampling block).
    model.gfm_audit_source = f"model '{spec.name}' ({spec.path})"
    if spec.dtype == "bfloat16":
        model = model.to(torch.bfloat16)
    return model.eval()


def native_tokenizer(spec: ModelSpec, architecture: str):
    family = registry.family_module(architecture)
    try:
        return family.load_tokenizer(Path(spec.path))
    except InputError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(
            f"model '{spec.name}': cannot load the {architecture} tokenizer from {spec.path}: {first_line(exc)}"
        ) from None


# --- transformers' classes -----------------------------------------------------------


def remote_code_error(spec: ModelSpec, exc: BaseException, what: str) -> InputError:
    """One line for a checkpoint's own code that fails: which model, which transformers, what to do."""
    import transformers

    natives = ", ".join(registry.available_families()) or "none"
    return InputError(
        f"model '{spec.name}': the checkpoint's own code (auto_map in {spec.path}/config.json) fails in "
        f"{what} under transformers {transformers.__version__}: {type(exc).__name__}: {first_line(exc)}; "
        f"if it is a family gfm-audit reads natively ({natives}), set models.{spec.name}.architecture to it, "
        "else run with the transformers version that code was written for"
    )


def runs_remote_code(spec: ModelSpec, config: Mapping[str, Any]) -> bool:
    return bool(spec.trust_remote_code and config.get("auto_map"))


def transformers_tokenizer(spec: ModelSpec, config: Mapping[str, Any]):
    from transformers import AutoTokenizer

    folder = Path(spec.path)
    if not any((folder / f).is_file() for f in TOKENIZER_FILES):
        raise InputError(
            f"model '{spec.name}': {spec.path} has no tokenizer files ({', '.join(TOKENIZER_FILES[:4])}, ...); "
            "copy them from the checkpoint as downloaded"
        )
    try:
        return AutoTokenizer.from_pretrained(spec.path, trust_remote_code=spec.trust_remote_code, local_files_only=True)
    except InputError:
        raise
    except (OSError, ValueError) as exc:
        if runs_remote_code(spec, config):
            raise remote_code_error(spec, exc, "loading the tokenizer") from None
        raise InputError(
            f"model '{spec.name}': cannot load the tokenizer from {spec.path}: {first_line(exc)}"
        ) from None
    except Exception as exc:
        if runs_remote_code(spec, config):
            raise remote_code_error(spec, exc, "loading the tokenizer") from None
        raise


def _ignored(keys, patterns) -> set[str]:
    import re

    return {k for k in keys if any(re.search(p, k) for p in patterns or ())}


def transformers_model(spec: ModelSpec, config: Mapping[str, Any], *, auto_class, dtype):
    """``from_pretrained`` with its load report checked: no weight left random, no weight of the file unused."""
    fmt = weight_format(spec.path)
    if fmt is None:
        raise InputError(
            f"model '{spec.name}': {spec.path} holds no weights (model.safetensors); "
            "for an architecture to train from scratch set init: scratch"
        )
    if fmt == "pickle":
        log.warning(
            "model '%s': no safetensors in %s; reading pytorch_model.bin with weights_only=True", spec.name, spec.path
        )
        for file in pickled_weight_files(spec.path, owner(spec)):
            check_plain_state_dict(file, owner(spec))
    try:
        model, info = auto_class.from_pretrained(
            spec.path,
            trust_remote_code=spec.trust_remote_code,
            local_files_only=True,
            use_safetensors=fmt == "safetensors",
            dtype=dtype,
            output_loading_info=True,
            **_attention(spec, config, dtype),
        )
    except InputError:
        raise
    except ValueError as exc:
        if runs_remote_code(spec, config):
            raise remote_code_error(spec, exc, "loading the model") from None
        raise InputError(
            f"model '{spec.name}': {spec.path} cannot be loaded as a {spec.kind} LM: {first_line(exc)}; "
            f"check models.{spec.name}.kind"
        ) from None
    except OSError as exc:
        if runs_remote_code(spec, config):
            raise remote_code_error(spec, exc, "loading the model") from None
        raise InputError(f"model '{spec.name}': cannot load weights from {spec.path}: {first_line(exc)}") from None
    except RuntimeError as exc:
        if runs_remote_code(spec, config):
            raise remote_code_error(spec, exc, "loading the model") from None
        raise InputError(
            f"model '{spec.name}': the weights in {spec.path} do not fit the model that its config.json describes "
            f"({first_line(exc)})"
        ) from None
    except Exception as exc:
        if runs_remote_code(spec, config):
            raise remote_code_error(spec, exc, "loading the model") from None
        raise
    # transformers already leaves out the weights it ties and those its class declares optional.
    missing = set(info.get("missing_keys", ())) - _ignored(
        info.get("missing_keys", ()), getattr(model, "_keys_to_ignore_on_load_missing", None)
    )
    unexpected = set(info.get("unexpected_keys", ())) - _ignored(
        info.get("unexpected_keys", ()), getattr(model, "_keys_to_ignore_on_load_unexpected", None)
    )
    check_weight_names(
        missing=missing,
        unexpected=unexpected,
        name=spec.name,
        folder=spec.path,
        allow_missing=spec.allow_missing_weights,
    )
    if missing:
        log.warning(
            "model '%s': %d weights are random (allow_missing_weights): %s", spec.name, len(missing), sorted(missing)
        )
    # from_pretrained reads the file itself, so its parameters are checked once loaded (each tied one once): one
    # summation per tensor, a few seconds for a 7B model (see non_finite).
    check_finite(model.named_parameters(), name=spec.name, folder=spec.path)
    return model.eval()


# --- the entry points: a resolved checkpoint in, a checked tokenizer or model out ----------


def quiet_transformers() -> None:
    """Loading bars and notices from transformers would flood the rule logs.

    Its load report is not lost: the loader checks the missing and unexpected
    weights itself and stops, or warns under ``allow_missing_weights``.
    """
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def _auto_class(kind: str):
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    return AutoModelForCausalLM if kind == "causal" else AutoModelForMaskedLM


def _attention(spec: ModelSpec, config: Mapping[str, Any], dtype) -> dict[str, str]:
    # A checkpoint's own code chooses its attention itself: nothing is passed to it.
    if runs_remote_code(spec, config):
        return {}
    from .attention import transformers_attention

    chosen = transformers_attention(dtype)
    if chosen:
        log.info(
            "model '%s': transformers' eager attention (bfloat16 on a CPU dispatched below AVX-512, where torch's "
            "fused kernel cannot run)",
            spec.name,
        )
    return chosen


def _torch_dtype(spec: ModelSpec):
    import torch

    return torch.bfloat16 if spec.dtype == "bfloat16" else torch.float32


def load_tokenizer(spec: ModelSpec, config: Mapping[str, Any], architecture: str):
    """The tokenizer of a checkpoint read by ``architecture``: the native family's, else ``AutoTokenizer``'s."""
    if architecture == registry.TRANSFORMERS:
        quiet_transformers()
        tokenizer = transformers_tokenizer(spec, config)
    else:
        tokenizer = native_tokenizer(spec, architecture)
    if spec.kind == "masked" and tokenizer.mask_token_id is None:
        raise InputError(
            f"model '{spec.name}' is masked (models.{spec.name}.kind) but the tokenizer in {spec.path} has no mask "
            "token, which pseudo-log-likelihood scoring needs; check that the folder holds the model's own "
            "tokenizer files (special_tokens_map.json / tokenizer_config.json with mask_token)"
        )
    return tokenizer


def load_model(spec: ModelSpec, config: Mapping[str, Any], architecture: str, *, tokenizer=None):
    """The model of a checkpoint read by ``architecture``, in eval mode, checked by :func:`check_inputs`; a
    checkpoint too large for this machine's memory stops in one line before any weight is read (:mod:`.memory`)."""
    memory.check_fits(spec)
    if architecture != registry.TRANSFORMERS:
        model = native_model(spec, config, architecture)
    else:
        quiet_transformers()
        model = transformers_model(spec, config, auto_class=_auto_class(spec.kind), dtype=_torch_dtype(spec))
    check_inputs(spec, model, config=config, architecture=architecture, tokenizer=tokenizer)
    return model


def scratch_model(spec: ModelSpec, config: Mapping[str, Any], *, seed: int):
    """A freshly initialised transformers-class model of the checkpoint's config (``init: scratch``), checked."""
    import torch
    from transformers import AutoConfig

    quiet_transformers()
    try:
        hf_config = AutoConfig.from_pretrained(
            spec.path, trust_remote_code=spec.trust_remote_code, local_files_only=True
        )
        torch.manual_seed(seed)
        model = _auto_class(spec.kind).from_config(hf_config, trust_remote_code=spec.trust_remote_code)
    except InputError:
        raise
    except Exception as exc:
        if runs_remote_code(spec, config):
            raise remote_code_error(spec, exc, "loading the model") from None
        raise
    check_inputs(spec, model, config=config, architecture=registry.TRANSFORMERS)
    return model


def native_scratch_model(spec: ModelSpec, config: Mapping[str, Any], architecture: str, *, seed: int):
    """A natively read family's module, untrained (its layers' own seeded initialisation), checked."""
    import torch

    torch.manual_seed(seed)
    model = native_model(spec, config, architecture, weights=False)
    check_inputs(spec, model, config=config, architecture=architecture)
    return model


def check_inputs(spec: ModelSpec, model, *, config: Mapping[str, Any], architecture: str, tokenizer=None) -> None:
    """Stop in one line when the tokenizer (``tokenizer``, else the checkpoint's) has ids past the model's
    embedding or max_length exceeds its positions."""
    if tokenizer is None:
        tokenizer = load_tokenizer(spec, config, architecture)
    fit.check_tokenizer_fits(spec, model, tokenizer)
    fit.check_max_length(spec, model, config=config, architecture=architecture)
