"""Loading DNA language models and their tokenizers from local checkpoint folders.

A checkpoint is read by one of two paths, chosen by ``models.<name>.architecture``
(``auto`` asks each native family module whether the folder's ``config.json`` is
its own): a family gfm-audit implements natively (``gfm_audit.gfm``: HyenaDNA,
Caduceus, DNABERT-2, Nucleotide Transformer v2, GENA-LM, Evo 2), whose original weight
names load strictly into our PyTorch module and whose checkpoint's own code is
never run; or transformers' own classes (``AutoModelForCausalLM`` /
``AutoModelForMaskedLM``: GPT-2, Llama such as GENERator, ESM such as the
Nucleotide Transformer v1, BERT, ModernBERT, Mamba, ...). Nothing is fetched from
a hub at run time. A checkpoint's own code runs only where the config says
``trust_remote_code: true`` for that model and no native family claims it.

On both paths a weight missing from the file, or one in the file that the model
does not have, stops the run in one line (``allow_missing_weights`` opts out of
the first), and so do a NaN or infinite weight, a tokenizer with ids past the
model's embedding rows, and a ``max_length`` past its absolute positions.
Weights load from safetensors; a checkpoint with only a
``pytorch_model.bin`` is first opened with ``torch.load(weights_only=True)`` and
must be a plain state dict (pickled code is refused in one line).

Every load runs one way down: this module reads ``config.json`` and resolves
the family (``gfm.registry``), then ``gfm.loader`` builds the tokenizer or
model (``gfm.weights``) and checks it (``gfm.fit``); nothing below calls back up.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import InputError
from .gfm import loader, registry
from .gfm.spec import ModelSpec

__all__ = [
    "ModelSpec",
    "architecture_of",
    "load_model",
    "load_tokenizer",
    "max_tokens",
    "model_from_scratch",
    "read_checkpoint_config",
]


def read_checkpoint_config(spec: ModelSpec) -> dict[str, Any]:
    """Check the folder and its ``config.json`` before any model code sees them."""
    path = Path(spec.path)
    if not path.is_dir():
        raise InputError(
            f"model '{spec.name}': checkpoint folder {spec.path} does not exist; set models.{spec.name}.path "
            "to a local folder (hub ids are not downloaded at run time: download the checkpoint first)"
        )
    config_file = path / "config.json"
    if not config_file.is_file():
        # A family whose original layout has no config.json (Evo 2: a .pt and its YAML) reads the folder itself.
        for family in registry.available_families():
            reader = getattr(registry.family_module(family), "read_folder_config", None)
            config = reader(path, name=spec.name) if reader is not None else None
            if config is not None:
                return config
        raise InputError(
            f"model '{spec.name}': {spec.path} has no config.json; is it a Hugging Face checkpoint folder?"
        )
    try:
        config = json.loads(config_file.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(
            f"model '{spec.name}': {config_file} is not valid JSON ({exc.msg}, line {exc.lineno})"
        ) from None
    if not isinstance(config, dict):
        raise InputError(f"model '{spec.name}': {config_file} is not a JSON object of settings")
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


def architecture_of(spec: ModelSpec, config: Mapping[str, Any]) -> str:
    """The native family that reads this checkpoint, or ``transformers``; checks what the latter needs."""
    architecture = registry.resolve(spec.architecture, config, name=spec.name)
    if architecture != registry.TRANSFORMERS:
        return architecture
    if config.get("auto_map"):
        if not spec.trust_remote_code:
            why = (
                f"models.{spec.name}.architecture is transformers"
                if spec.architecture == registry.TRANSFORMERS
                else "none of the families gfm-audit reads natively claims it: "
                + (", ".join(registry.available_families()) or "none installed")
            )
            raise InputError(
                f"model '{spec.name}': checkpoint {spec.path} needs its own Python code (config.json has auto_map; "
                f"{why}); set models.{spec.name}.trust_remote_code to true only if you trust that code: it runs "
                "with your permissions"
            )
        return architecture
    from transformers import CONFIG_MAPPING, __version__

    model_type = config.get("model_type")
    if model_type not in CONFIG_MAPPING:
        raise InputError(
            f"model '{spec.name}': {spec.path}/config.json has model_type {model_type!r}, which is neither a family "
            f"gfm-audit reads natively ({', '.join(registry.available_families()) or 'none installed'}) nor an "
            f"architecture of transformers {__version__}; check that the folder is a complete checkpoint, or set "
            f"models.{spec.name}.architecture"
        )
    return architecture


def _resolve(spec: ModelSpec) -> tuple[dict[str, Any], str]:
    """The checkpoint's ``config.json`` and the architecture that reads it: where every load starts."""
    config = read_checkpoint_config(spec)
    return config, architecture_of(spec, config)


def load_tokenizer(spec: ModelSpec):
    """The checkpoint's tokenizer: the native family's, else through ``AutoTokenizer``."""
    config, architecture = _resolve(spec)
    return loader.load_tokenizer(spec, config, architecture)


def load_model(spec: ModelSpec, *, tokenizer=None):
    """The model in eval mode, every weight from the checkpoint (safetensors, or a weights-only ``.bin``), each
    one finite, checked against its tokenizer (``tokenizer``, else the folder's) and ``max_length``."""
    config, architecture = _resolve(spec)
    return loader.load_model(spec, config, architecture, tokenizer=tokenizer)


def model_from_scratch(spec: ModelSpec, seed: int):
    """A freshly initialised model of the checkpoint folder's architecture (``init: scratch``).

    A native family (e.g. HyenaDNA) is our module built from config.json with PyTorch's default initialisation of
    each layer, seeded (not the family's own pretraining init scheme); a transformers class is ``from_config``.
    """
    config, architecture = _resolve(spec)
    if architecture != registry.TRANSFORMERS:
        return loader.native_scratch_model(spec, config, architecture, seed=seed)
    return loader.scratch_model(spec, config, seed=seed)


# transformers' RoBERTa-style classes number positions from padding_idx + 1 (their create_position_ids_from_input_ids),
# so the first pad_token_id + 1 rows of the position table are never a token's: RoBERTa's 514 rows take 512 tokens.
_POSITIONS_AFTER_PAD = frozenset(
    {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "roberta-prelayernorm", "data2vec-text", "ibert"}
)


def _reserved_positions(settings: dict) -> int:
    """Rows of the position table no token of the input can take."""
    model_type = settings.get("model_type")
    if model_type == "esm":
        # ESM (Nucleotide Transformer v1 and v2) reserves two positions beyond the tokens it is given.
        return 2
    if model_type in _POSITIONS_AFTER_PAD:
        pad = settings.get("pad_token_id")
        return (int(pad) if isinstance(pad, int) else 1) + 1
    return 0


def max_tokens(spec: ModelSpec, model, tokenizer) -> int:
    """Longest input the model takes: the config's value, else the model's positions, else the tokenizer's."""
    if spec.max_length:
        return spec.max_length
    config = getattr(model, "config", None)
    settings = config.to_dict() if hasattr(config, "to_dict") else read_checkpoint_config(spec)
    for attr in ("max_position_embeddings", "n_positions", "max_seq_len"):
        value = settings.get(attr)
        if isinstance(value, int) and value > 0:
            return value - _reserved_positions(settings)
    limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and limit < 10**9 else 10**9
