"""Config validation against ``config/config.schema.yaml``, with defaults filled in."""

from __future__ import annotations

import copy
import os
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
    check_consistency(config, source, schema)
    return config


def check_consistency(config: dict[str, Any], source: str = "the config", schema: Mapping | None = None) -> None:
    """Rules that span several keys, which the schema cannot say in one line (``schema``: the one the config was
    validated against; None reads config/config.schema.yaml)."""
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
    if models and mode == "individuals" and not config.get("individuals", {}).get("vcf"):
        raise InputError(f"{where} membership.mode individuals needs individuals.vcf: a phased multi-sample VCF")
    if membership.get("training", {}).get("dp") and mode == "genome":
        raise InputError(
            f"{where} membership.training.dp is not available in membership.mode genome (its chunks are not "
            "Poisson-sampled); remove it, or use mode finetune or individuals"
        )
    if mode == "genome":
        _check_genome(config, where)
    if membership.get("training", {}).get("dp") and mode not in ("finetune", "individuals"):
        raise InputError(
            f"{where} membership.training.dp is set but membership.mode {mode} trains no model; remove it, or use "
            "mode finetune or individuals"
        )
    duplication = membership.get("training", {}).get("duplication", 1)
    if duplication > 1 and (mode != "finetune" or membership.get("training", {}).get("dp")):
        why = (
            "a DP claim is per training row (a window repeated k times is a group of k)"
            if mode == "finetune"
            else f"membership.mode {mode} does not read it"
        )
        raise InputError(f"{where} membership.training.duplication is {duplication}, but {why}; set it to 1")
    # A study's grid.model names models that are each a point's target (gfm_audit/privacy/study/grid.py).
    targets = {target, *((config.get("study") or {}).get("grid") or {}).get("model", [])}
    for name, spec in models.items():
        if spec.get("init") == "scratch" and not (mode in ("finetune", "individuals", "genome") and name in targets):
            raise InputError(
                f"{where} models.{name}.init is scratch, which only the target can use in membership.mode "
                "finetune, individuals or genome"
            )
        if "stride_k" in spec and spec.get("masking", "sampled") != "stride":
            raise InputError(
                f"{where} models.{name}.stride_k is read only by masking stride, but masking is "
                f"{spec.get('masking', 'sampled')}; set models.{name}.masking: stride or remove stride_k"
            )
        length = config.get("windows", {}).get("length")
        if spec.get("masking") == "stride" and length and spec.get("stride_k", 6) > length:
            # A window has at most one token per base: passes beyond its length would mask nothing, and the
            # user who asked for a stride would silently get exact's cost.
            raise InputError(
                f"{where} models.{name}.stride_k is {spec.get('stride_k', 6)}, more than the {length} bases of a "
                f"window (windows.length); set a stride_k below it, or masking: exact"
            )
    _check_causal_attacks(config, where)
    _check_ranges(config, where)
    _check_ga(config, where, schema)
    _check_fimba(config, where)
    _check_memorisation(config, where)
    _check_dataset_inference(config, where)


def _check_genome(config: dict[str, Any], where: str) -> None:
    """Mode genome trains the target from scratch (a pretrained start may have seen the held-out blocks), and a
    window must fit in a held-out block to be a non-member."""
    models, target = config.get("models", {}), config.get("target")
    if target in models and models[target].get("init", "pretrained") != "scratch":
        raise InputError(
            f"{where} membership.mode genome trains the target from scratch, but models.{target}.init is "
            f"{models[target].get('init', 'pretrained')}; set models.{target}.init: scratch (a pretrained start may "
            "have seen the held-out blocks)"
        )
    block = config.get("membership", {}).get("genome", {}).get("block_length", 100000)
    length = config.get("windows", {}).get("length", 0)
    if length > block:
        raise InputError(
            f"{where} windows.length {length} is longer than membership.genome.block_length {block}: no window "
            "could lie inside a held-out block; use blocks of at least windows.length bp"
        )


def _check_dataset_inference(config: dict[str, Any], where: str) -> None:
    """Dataset inference reads the attack scores and the membership: refuse it where there are none, and a suspect
    set that is its own validation set."""
    di = config.get("dataset_inference", {})
    if not di.get("enabled"):
        return
    mode = config.get("membership", {}).get("mode", "none")
    if mode == "individuals" and config.get("models"):
        # People, not windows, are the unit (privacy/individuals/dataset_inference.py): a set is a list of them.
        _check_inference_sets(di, where, unit="individuals")
        return
    if mode not in ("finetune", "regions", "genome") or not config.get("models"):
        raise InputError(
            f"{where} dataset_inference.enabled needs attack scores: models and membership.mode finetune, "
            f"regions or genome (have {mode}); set dataset_inference.enabled: false or change the mode"
        )
    if di.get("suspect", "members") == di.get("validation", "non_members"):
        raise InputError(
            f"{where} dataset_inference.suspect and dataset_inference.validation are both {di['suspect']}; the "
            "validation set must be windows known not to be in training, apart from the suspect set: give disjoint sets"
        )
    _check_inference_sets(di, where, unit="windows", context=config.get("scoring", {}).get("context", 0))
    if is_fasta_path(di.get("suspect", "members")):
        # sampled scores a window's SNP sites beside its random positions; a FASTA window has no SNP sites, so its
        # loss would be of other positions than the validation windows' and could tell the sets apart by itself.
        for name, spec in config.get("models", {}).items():
            if spec.get("kind") == "masked" and spec.get("masking", "sampled") == "sampled":
                raise InputError(
                    f"{where} dataset_inference.suspect is a FASTA, whose windows have no SNP sites, but "
                    f"models.{name} is masked with masking: sampled, which scores the audit windows' SNP sites: set "
                    f"models.{name}.masking: stride or exact"
                )


# How a set file that is not the mode's kind is recognised: by its name, as the user gives it.
_FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".fa.gz", ".fasta.gz", ".fna.gz")
_BED_SUFFIXES = (".bed", ".bed.gz")


def is_fasta_path(value: Any) -> bool:
    """Whether a dataset inference set names a FASTA file (by its suffix)."""
    return str(value).lower().endswith(_FASTA_SUFFIXES)


def _check_inference_sets(di: dict[str, Any], where: str, *, unit: str, context: int = 0) -> None:
    """A dataset inference set is members, non_members, or a file of the mode's kind: a BED of regions where the
    windows are the unit, a list of individuals in mode individuals. Where windows are the unit the suspect set may
    also be a FASTA (privacy/suspect_fasta.py: cut into windows and scored); the validation set may not (it must be
    drawn like the audit's windows), and people are not sequences."""
    values = {key: di.get(key, default) for key, default in (("suspect", "members"), ("validation", "non_members"))}
    if values["suspect"] == values["validation"]:
        raise InputError(
            f"{where} dataset_inference.suspect and dataset_inference.validation are both {values['suspect']}; the "
            f"validation set must be {unit} known not to be in training, apart from the suspect set: give disjoint sets"
        )
    for key, value in values.items():
        name = str(value).lower()
        if unit == "windows" and key == "suspect" and is_fasta_path(value):
            _check_suspect_fasta(value, where, context=context)
            continue
        if name.endswith(_FASTA_SUFFIXES) and unit == "windows":
            raise InputError(
                f"{where} dataset_inference.validation {value} is a FASTA file, but only the suspect set may be one "
                "(the validation set must be audit windows known not to be in training): give a BED file, or "
                "members / non_members"
            )
        if name.endswith(_FASTA_SUFFIXES):
            raise InputError(
                f"{where} dataset_inference.{key} {value} is a FASTA file, but in membership.mode individuals people "
                "are the unit: give a list of individuals (one sample ID a line), or members / non_members"
            )
        if unit == "individuals" and name.endswith(_BED_SUFFIXES):
            raise InputError(
                f"{where} dataset_inference.{key} {value} is a BED file, but in membership.mode individuals people "
                "are the unit: give a list of individuals (one sample ID a line), or members / non_members"
            )


def _check_suspect_fasta(value: str, where: str, *, context: int) -> None:
    """A FASTA suspect set's sequences have no place on the reference: no flanks to score them in."""
    if context:
        raise InputError(
            f"{where} dataset_inference.suspect {value} is a FASTA, whose sequences have no reference flanks, "
            f"but scoring.context is {context}: set scoring.context: 0, or give the suspect set as a BED of regions"
        )


# Attacks that need a left-to-right likelihood: ReCaLL conditions it on a prefix, gradnorm differentiates it.
CAUSAL_ONLY_ATTACKS = ("recall", "gradnorm")


def _check_causal_attacks(config: dict[str, Any], where: str) -> None:
    """Refuse a causal-only attack where it would attack a masked model (every model in models is attacked)."""
    if config.get("membership", {}).get("mode", "none") not in ("finetune", "regions", "genome"):
        return
    names = config.get("attacks", {}).get("names", [])
    for attack in (a for a in CAUSAL_ONLY_ATTACKS if a in names):
        for name, spec in config.get("models", {}).items():
            if spec.get("kind") == "masked":
                raise InputError(
                    f"{where} attack {attack} needs a causal model, but models.{name} is masked; remove {attack} "
                    "from attacks.names to audit it"
                )


def _check_ranges(config: dict[str, Any], where: str) -> None:
    """membership.train_on neighbor trains models (finetune mode only); ramia's ranges must be fillable."""
    membership = config.get("membership", {})
    if membership.get("train_on", "window") == "neighbor" and membership.get("mode", "none") != "finetune":
        raise InputError(
            f"{where} membership.train_on neighbor trains the models on neighbors, which only membership.mode "
            f"finetune does (mode is {membership.get('mode', 'none')}); remove train_on or use mode finetune"
        )
    if membership.get("mode", "none") in ("finetune", "regions", "genome"):
        from .privacy.attacks.ramia import check_config

        check_config(config, where)


def _check_ga(config: dict[str, Any], where: str, schema: Mapping | None) -> None:
    ga = config.get("robustness", {}).get("ga", {})
    _check_scheme_settings(ga, where, schema)
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
        if spec["kind"] == "gfm_head" and "model" in spec and "path" in spec:
            raise InputError(
                f"{where} robustness.ga.classifiers.{name}: kind gfm_head takes model or path, not both; "
                "remove one of them"
            )
        if spec["kind"] == "gfm_head" and "path" not in spec and spec.get("model") not in models:
            raise InputError(
                f"{where} robustness.ga.classifiers.{name}: kind gfm_head needs model, one of the models block "
                f"(have: {', '.join(models) or 'none'}), or path, a GFM checkpoint folder"
            )
    for name, spec in classifiers.items():
        _check_cnn_only_settings(ga, name, spec["kind"], where)
    _check_schemes_run(ga, where)
    proposal = ga.get("comparison", {}).get("proposal_model")
    if proposal is not None and proposal not in models:
        raise InputError(
            f"{where} robustness.ga.comparison.proposal_model {proposal} is not a key of the models block "
            f"(have: {', '.join(models) or 'none'})"
        )
    attack = ga.get("attack", {})
    if attack.get("elitism", 0) >= attack.get("population", 2):
        raise InputError(f"{where} robustness.ga.attack.elitism must be smaller than population")
    if ga.get("certify", {}).get("enabled"):
        from .robustness.ga.certify import check_config

        check_config(ga["certify"], where)


def classifier_schemes(ga: dict[str, Any], name: str) -> list[str]:
    """The adversarial-training schemes classifier ``name`` runs, the one of rule adversarial_training first: its own
    ``adversarial_schemes`` when set, else the block's ``scheme`` and then its ``compare`` list."""
    own = ga["classifiers"][name].get("adversarial_schemes")
    if own:
        return list(own)
    block = ga["adversarial_training"]
    first = block.get("scheme", "iterative")
    return [first, *(s for s in block.get("compare", []) if s != first)]


def classifier_blocks(ga: dict[str, Any], name: str, scheme: str | None = None) -> dict[str, dict[str, Any]]:
    """The ``attack``, ``comparison`` and ``adversarial_training`` blocks of a validated ``robustness.ga`` as
    classifier ``name`` runs them: its own ``n_sequences`` (attack and comparison sample, adversarial-training
    holdout) and ``adversarial_iterations`` in place of the blocks' values when set. The adversarial-training block
    is that of ``scheme`` (default: the classifier's first scheme), with the scheme's entry of ``schemes`` laid over
    the block's settings."""
    spec = ga["classifiers"][name]
    attack, comparison = dict(ga["attack"]), dict(ga["comparison"])
    training = dict(ga["adversarial_training"])
    scheme = scheme or classifier_schemes(ga, name)[0]
    for key, value in training.get("schemes", {}).get(scheme, {}).items():
        training[key] = {**training[key], **value} if isinstance(value, dict) else value
    training["scheme"] = scheme
    if spec.get("n_sequences") is not None:
        attack["n_sequences"] = comparison["n_sequences"] = training["holdout"] = spec["n_sequences"]
    if spec.get("adversarial_iterations") is not None:
        training["iterations"] = spec["adversarial_iterations"]
    return {"attack": attack, "comparison": comparison, "adversarial_training": training}


def _check_cnn_only_settings(ga: dict[str, Any], name: str, kind: str, where: str) -> None:
    """Madry settings that only the one-hot CNN can take, caught at start-up rather than after its training job."""
    if kind == "cnn":
        return
    for scheme in classifier_schemes(ga, name):
        if scheme != "madry":
            continue
        block = classifier_blocks(ga, name, scheme)["adversarial_training"]
        for key, value, instead in (("inner", "hotflip", "inner: greedy"), ("init", "scratch", "init: clean")):
            if block.get(key) == value:
                raise InputError(
                    f"{where} robustness.ga.classifiers.{name} (kind {kind}) runs madry with {key}: {value}, which "
                    f"only a kind cnn classifier can take; use {instead} for madry (adversarial_training.schemes."
                    f"madry) or leave madry out of its adversarial_schemes"
                )


def _check_schemes_run(ga: dict[str, Any], where: str) -> None:
    """Settings under ``adversarial_training.schemes`` for a scheme no classifier runs would be ignored without a
    word (the user meant them to apply: a scheme missing from ``compare`` or ``adversarial_schemes``)."""
    run = {s: None for name in ga["classifiers"] for s in classifier_schemes(ga, name)}
    for scheme in ga.get("adversarial_training", {}).get("schemes", {}):
        if scheme not in run:
            raise InputError(
                f"{where} robustness.ga.adversarial_training.schemes.{scheme}: no classifier runs {scheme} (they run "
                f"{', '.join(run)}); add it to adversarial_training.compare or to a classifier's "
                f"adversarial_schemes, or remove the entry"
            )


# Keys a scheme's entry of adversarial_training.schemes cannot set: which schemes run is said elsewhere.
_NOT_PER_SCHEME = ("scheme", "compare", "schemes")


def _check_scheme_settings(ga: dict[str, Any], where: str, schema: Mapping | None) -> None:
    """Validate each entry of ``adversarial_training.schemes`` against the block's own keys and types (the schema
    can only say it is a mapping: its keys are the block's, less the three that choose the schemes)."""
    schemes = ga.get("adversarial_training", {}).get("schemes", {})
    if not schemes:
        return
    block = (schema or load_schema())["properties"]["robustness"]["properties"]["ga"]["properties"][
        "adversarial_training"
    ]
    properties = {k: v for k, v in block["properties"].items() if k not in _NOT_PER_SCHEME}
    entry = jsonschema.Draft202012Validator({"type": "object", "additionalProperties": False, "properties": properties})
    for scheme, settings in schemes.items():
        key = f"robustness.ga.adversarial_training.schemes.{scheme}"
        for error in entry.iter_errors(settings):
            inner = "".join(f".{p}" for p in error.absolute_path)
            if error.validator == "additionalProperties":
                allowed = sorted(error.schema["properties"])
                unknown = sorted(set(error.instance) - set(allowed))[0]
                raise InputError(
                    f"{where} {key}{inner}.{unknown} is not a setting a scheme can override; allowed here: "
                    f"{', '.join(allowed)}"
                )
            raise InputError(f"{where} {key}{inner}: {error.message}")


def _check_fimba(config: dict[str, Any], where: str) -> None:
    fimba = config.get("robustness", {}).get("fimba", {})
    if not fimba.get("data"):
        return
    if fimba.get("position", 8) >= fimba.get("n_points", 10):
        raise InputError(f"{where} robustness.fimba.position must be below n_points (0 .. n_points-1)")


def _check_memorisation(config: dict[str, Any], where: str) -> None:
    memorisation = config.get("memorisation", {})
    mode = config.get("membership", {}).get("mode", "none")
    models = config.get("models", {})
    if memorisation.get("canaries", {}).get("n", 0) and (mode != "finetune" or not models):
        raise InputError(
            f"{where} memorisation.canaries.n > 0 needs membership.mode finetune (canaries go into the target's "
            "training data); set memorisation.canaries.n: 0 or membership.mode: finetune"
        )
    canaries = memorisation.get("canaries", {})
    if canaries.get("n", 0) and canaries.get("inclusion") == "bernoulli":
        _check_one_run(config, canaries, where)
    extraction = memorisation.get("extraction", {})
    if not extraction.get("enabled"):
        return
    if mode == "none" or not models:
        raise InputError(f"{where} memorisation.extraction needs known members: membership.mode finetune or regions")
    decoding = extraction.get("decoding", "auto")
    wrong = "causal" if decoding == "iterative" else "masked" if decoding == "greedy" else None
    for name, spec in models.items():
        if spec["kind"] == wrong:
            fix = "iterative" if wrong == "masked" else "greedy"
            raise InputError(
                f"{where} memorisation.extraction.decoding is {decoding}, which model '{name}' ({wrong}) cannot do; "
                f"set memorisation.extraction.decoding: {fix} or auto"
            )


def _check_one_run(config: dict[str, Any], canaries: dict[str, Any], where: str) -> None:
    """The one-run audit: one repeat count (once per canary under DP, whose guarantee is per sequence), and enough
    canaries for its bound to reach epsilon 1, or the claimed epsilon if smaller."""
    from .privacy.memorisation.one_run import check_canaries

    repeats = canaries["repeats"]
    if len(repeats) != 1:
        raise InputError(
            f"{where} memorisation.canaries.inclusion bernoulli takes one repeat count, got repeats {repeats}; set "
            "memorisation.canaries.repeats: [1]"
        )
    dp = config.get("membership", {}).get("training", {}).get("dp")
    if dp and repeats != [1]:
        raise InputError(
            f"{where} memorisation.canaries.repeats {repeats} with membership.training.dp: DP's guarantee is per "
            f"training sequence, and a canary inserted {repeats[0]} times is {repeats[0]} of them, whose bound the "
            "claim does not cover; set memorisation.canaries.repeats: [1]"
        )
    metrics = config.get("attacks", {}).get("metrics", {})
    delta = dp["delta"] if dp else metrics.get("delta", 1e-5)
    try:
        check_canaries(
            canaries["n"],
            target=min(dp["epsilon"], 1.0) if dp else 1.0,
            delta=delta,
            level=metrics.get("confidence", 0.95),
            guesses=canaries.get("guesses"),
        )
    except InputError as exc:
        raise InputError(f"{where} {exc}") from None


# What to do when a path is missing, by the kind of thing the key names.
_FIX = {
    "file": "set it to an existing file",
    "folder": "set it to a local checkpoint folder (hub ids are not downloaded at run time: download it first)",
}


def _path_slots(config: dict[str, Any]) -> list[tuple[str, dict[str, Any], str, str]]:
    """``(key, mapping, field, kind)`` for every user path the run reads: the path is ``mapping[field]``."""
    slots = [("reference.fasta", config["reference"], "fasta", "file")]
    slots.append(("reference.vcf", config["reference"], "vcf", "file"))
    windows = config.get("windows", {})
    if windows.get("placement") == "bed":
        slots.append(("windows.bed", windows, "bed", "file"))
    models = config.get("models", {})
    # init: scratch reads the folder too: its config.json and tokenizer.
    slots += [(f"models.{name}.path", spec, "path", "folder") for name, spec in models.items()]
    membership = config.get("membership", {})
    if models and membership.get("mode") == "regions":
        slots += [(f"membership.{key}", membership, key, "file") for key in ("member_bed", "nonmember_bed")]
    di = config.get("dataset_inference", {})
    if models and di.get("enabled"):
        # Either set may be a BED file; members and non_members name the membership's own sets.
        slots += [
            (f"dataset_inference.{key}", di, key, "file")
            for key in ("suspect", "validation")
            if di.get(key) not in (None, "members", "non_members")
        ]
    individuals = config.get("individuals", {})
    if models and membership.get("mode") == "individuals":
        slots.append(("individuals.vcf", individuals, "vcf", "file"))
        if individuals.get("samples", "all") != "all":
            slots.append(("individuals.samples", individuals, "samples", "file"))
    ga = config.get("robustness", {}).get("ga", {})
    if ga.get("classifiers"):
        slots += [(f"robustness.ga.{key}", ga, key, "file") for key in ("train", "test")]
        slots += [
            (f"robustness.ga.classifiers.{name}.path", spec, "path", "folder")
            for name, spec in ga["classifiers"].items()
            if spec["kind"] == "huggingface" or (spec["kind"] == "gfm_head" and "path" in spec)
        ]
    fimba = config.get("robustness", {}).get("fimba", {})
    if fimba.get("data"):
        slots += [(f"robustness.fimba.{key}", fimba, key, "file") for key in ("data", "test_data") if fimba.get(key)]
    return slots


def input_paths(config: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(key, path, "file" | "folder")`` for every user path the run reads, in a validated config.

    Paths the run never reads (a BED with placement fixed, GA CSVs with no
    classifier) are left out, so that a config can keep them while switched off.
    """
    return [(key, mapping[field], kind) for key, mapping, field, kind in _path_slots(config)]


def absolute_input_paths(config: dict[str, Any]) -> list[str]:
    """Make every relative user path in a validated config absolute, from the current directory; the keys changed.

    For the workflow used as a module with ``prefix:``: Snakemake puts the prefix
    before every relative input path, the user's own files included, while a path
    in the config names a file relative to the working directory. Absolute paths
    are never prefixed. The config is changed in place.
    """
    changed = []
    for key, mapping, field, _ in _path_slots(config):
        if not os.path.isabs(mapping[field]):
            mapping[field] = os.path.abspath(mapping[field])
            changed.append(key)
    return changed


def check_input_paths(config: dict[str, Any]) -> None:
    """Stop on the first path in the config that is missing or of the wrong kind, naming its key.

    Relative paths are taken from the current directory, which is where Snakemake
    resolves rule inputs (its working directory, ``--directory``). Run this at
    start-up: Snakemake's own check of missing inputs names the file but not the key.
    """
    problems = []
    for key, value, kind in input_paths(config):
        where = value if os.path.isabs(value) else f"{value} (relative to the working directory {os.getcwd()})"
        if not os.path.exists(value):
            problems.append((key, f"{where} does not exist; {_FIX[kind]}"))
        elif kind == "file" and os.path.isdir(value):
            problems.append((key, f"{where} is a folder; {_FIX[kind]}"))
        elif kind == "folder" and not os.path.isdir(value):
            problems.append((key, f"{where} is a file, not a folder; {_FIX[kind]}"))
    if problems:
        key, text = problems[0]
        more = f" (also wrong: {', '.join(k for k, _ in problems[1:])})" if len(problems) > 1 else ""
        raise InputError(f"config key {key}: {text}{more}")


def read_yaml_config(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML config file; one line naming the file (and line) when it cannot be read."""
    try:
        with open(path) as fh:
            config = yaml.safe_load(fh)
    except FileNotFoundError:
        raise InputError(f"config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        # An unclosed bracket or quote is noticed far below it; the context says where it opened.
        start, context = getattr(exc, "context_mark", None), getattr(exc, "context", None)
        opened = f" ({context} at line {start.line + 1})" if start and context and start.line != mark.line else ""
        raise InputError(
            f"config file {path} is not valid YAML{line}: {getattr(exc, 'problem', exc)}{opened}"
        ) from None
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise InputError(f"config file {path} must hold a mapping of keys, not {type(config).__name__}")
    return config


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file and validate it (library use, outside Snakemake)."""
    return validate_config(read_yaml_config(path), source=str(path))


def _merge(into: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Nested update, as Snakemake merges config files given one after another."""
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)
    return into


def main(argv: list[str] | None = None) -> int:
    """``python -m gfm_audit.config FILE...``: the workflow's start-up checks of these config files, merged.

    Snakemake reads ``--configfile`` files itself, before any workflow code runs, and
    answers a YAML mistake with "not valid JSON or YAML": no file, no line. This names both.
    """
    import sys

    files = sys.argv[1:] if argv is None else argv
    if not files:
        print("usage: python -m gfm_audit.config CONFIG.yaml [MORE.yaml ...]  (from the Snakemake working directory)")
        return 2
    try:
        config: dict[str, Any] = {}
        for path in files:
            _merge(config, read_yaml_config(path))
        validate_config(config, source=" + ".join(files))
        check_input_paths(config)
    except InputError as exc:
        print(f"gfm-audit: {exc}", file=sys.stderr)
        return 1
    print(f"gfm-audit: {' + '.join(files)}: valid, and every input path exists")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
