"""Config schema: defaults are filled, mistakes are named in one line."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import DEMO_FASTA, DEMO_VCF, REPO
from gfm_audit.config import (
    check_input_paths,
    input_paths,
    load_config,
    load_schema,
    main,
    validate_config,
)
from gfm_audit.errors import InputError

MINIMAL = {"reference": {"fasta": "a.fa", "vcf": "b.vcf.gz"}}


def _cfg(**blocks):
    return {"reference": {"fasta": "a.fa", "vcf": "b.vcf.gz"}, **blocks}


def test_missing_blocks_get_the_documented_defaults():
    config = validate_config(_cfg())
    assert config["windows"] == {
        "length": 2000,
        "n": 500,
        "chromosomes": [],
        "placement": "fixed",
        "bed": None,
        "seed": 0,
        "max_n_fraction": 0.0,
        "max_ref_mismatch_fraction": 0.01,
    }
    assert config["neighbors"] == {
        "probs": [0.1, 0.2, 0.3],
        "per_prob": 3,
        "allele": "uniform",
        "control": True,
        "seed": 0,
    }


def test_partial_block_keeps_given_values_and_fills_the_rest():
    config = validate_config(_cfg(windows={"length": 300}))
    assert config["windows"]["length"] == 300
    assert config["windows"]["n"] == 500


def test_defaults_are_not_shared_between_configs():
    a = validate_config(_cfg())
    a["neighbors"]["probs"].append(0.9)
    assert validate_config(_cfg())["neighbors"]["probs"] == [0.1, 0.2, 0.3]


def test_bundled_demo_config_is_valid():
    config = load_config(REPO / "config" / "demo.yaml")
    assert config["reference"]["fasta"] == "resources/demo/z.fa"
    assert config["target"] == "demo_lm"


def test_base_config_holds_only_schema_defaults_and_no_model():
    """A user's --configfile is merged over config/config.yaml: nothing of the demo may come along."""
    raw = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert set(raw) == {"reference"}
    config = load_config(REPO / "config" / "config.yaml")
    assert config["models"] == {} and config["robustness"]["ga"]["classifiers"] == {}
    assert config["robustness"]["fimba"]["data"] is None
    assert config["memorisation"]["canaries"]["n"] == 0 and not config["memorisation"]["extraction"]["enabled"]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (_cfg(windows={"lenght": 3}), "unknown key windows.lenght"),
        (_cfg(extra={}), "unknown key extra"),
        (_cfg(windows={"length": "2kb"}), "key windows.length: '2kb' is not of type 'integer'"),
        (_cfg(windows={"length": 0}), "key windows.length: 0 is less than the minimum of 1"),
        (_cfg(windows={"placement": "tiled"}), "key windows.placement"),
        (_cfg(windows={"placement": "bed"}), "key windows.bed must be set"),
        (_cfg(neighbors={"probs": [0.1, 1.5]}), "key neighbors.probs.1"),
        (_cfg(neighbors={"allele": "maf"}), "key neighbors.allele"),
        (_cfg(neighbors={"control": "yes"}), "key neighbors.control"),
        ({"reference": {"fasta": "a.fa"}}, "missing required key reference.vcf"),
        ({}, "missing required key reference"),
        (_cfg(attacks={"names": ["loss", "gradient_ascent"]}), "key attacks.names.1: 'gradient_ascent' is not one of"),
        (_cfg(models={"ref_0": {"path": "x", "kind": "causal"}}), "key models"),
        (_cfg(models={"m": {"path": "x", "kind": "causal"}}, target="other"), "target 'other' is not a key of models"),
        (
            _cfg(robustness={"ga": {"train": "a", "test": "b", "adversarial_training": {"clean_weight": 1.0}}}),
            "key robustness.ga.adversarial_training.clean_weight",
        ),
        (
            _cfg(robustness={"ga": {"train": "a", "test": "b", "adversarial_training": {"ema_decay": 1.0}}}),
            "key robustness.ga.adversarial_training.ema_decay",
        ),
        (
            _cfg(robustness={"ga": {"train": "a", "test": "b", "adversarial_training": {"inner_stop_after_flip": -1}}}),
            "key robustness.ga.adversarial_training.inner_stop_after_flip",
        ),
        (
            _cfg(robustness={"ga": {"adversarial_training": {"schemes": {"trades": {"epochs": 2}}}}}),
            "key robustness.ga.adversarial_training.schemes: 'trades' is not one of",
        ),
        (
            _cfg(robustness={"ga": {"adversarial_training": {"schemes": {"madry": {"epoch": 2}}}}}),
            "robustness.ga.adversarial_training.schemes.madry.epoch is not a setting a scheme can override",
        ),
        (
            _cfg(robustness={"ga": {"adversarial_training": {"schemes": {"madry": {"compare": ["adfar"]}}}}}),
            "robustness.ga.adversarial_training.schemes.madry.compare is not a setting a scheme can override",
        ),
        (
            _cfg(robustness={"ga": {"adversarial_training": {"schemes": {"madry": {"epochs": 0}}}}}),
            "robustness.ga.adversarial_training.schemes.madry.epochs: 0 is less than the minimum of 1",
        ),
        (
            _cfg(robustness={"ga": {"adversarial_training": {"schemes": {"freelb": {"freelb": {"step": 2}}}}}}),
            "robustness.ga.adversarial_training.schemes.freelb.freelb.step is not a setting a scheme can override",
        ),
        (
            _cfg(robustness={"ga": {"classifiers": {"c": {"kind": "cnn", "architecture": "resnet"}}}}),
            "key robustness.ga.classifiers.c.architecture: 'resnet' is not one of",
        ),
        (
            _cfg(robustness={"ga": {"classifiers": {"c": {"kind": "cnn", "adversarial_schemes": []}}}}),
            "key robustness.ga.classifiers.c.adversarial_schemes: [] should be non-empty",
        ),
        (
            _cfg(robustness={"ga": {"classifiers": {"c": {"kind": "cnn", "adversarial_schemes": ["pgd"]}}}}),
            "key robustness.ga.classifiers.c.adversarial_schemes.0: 'pgd' is not one of",
        ),
        (
            _cfg(
                robustness={
                    "ga": {
                        "train": "a",
                        "test": "b",
                        "classifiers": {"h": {"kind": "huggingface", "path": "x", "adversarial_schemes": ["madry"]}},
                        "adversarial_training": {"schemes": {"madry": {"inner": "hotflip"}}},
                    }
                }
            ),
            "robustness.ga.classifiers.h (kind huggingface) runs madry with inner: hotflip, which only a kind cnn",
        ),
        (
            _cfg(
                robustness={
                    "ga": {
                        "train": "a",
                        "test": "b",
                        "classifiers": {"c": {"kind": "cnn"}},
                        "adversarial_training": {"scheme": "iterative", "schemes": {"madry": {"epochs": 10}}},
                    }
                }
            ),
            "robustness.ga.adversarial_training.schemes.madry: no classifier runs madry (they run iterative); add it",
        ),
        (
            _cfg(models={}, robustness={"ga": {"train": "a", "test": "b", "classifiers": {"g": {"kind": "gfm_head"}}}}),
            "robustness.ga.classifiers.g: kind gfm_head needs model, one of the models block (have: none), or path",
        ),
        (
            _cfg(
                models={"m": {"path": "x", "kind": "causal"}},
                target="m",
                robustness={
                    "ga": {
                        "train": "a",
                        "test": "b",
                        "classifiers": {"g": {"kind": "gfm_head", "model": "m", "path": "y"}},
                    }
                },
            ),
            "robustness.ga.classifiers.g: kind gfm_head takes model or path, not both",
        ),
    ],
)
def test_schema_violation_is_one_line_naming_the_key(config, expected):
    with pytest.raises(InputError) as err:
        validate_config(config)
    message = str(err.value)
    assert expected in message
    assert "\n" not in message


def test_unreadable_yaml_names_the_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("reference:\n  fasta: [unclosed\n")
    with pytest.raises(InputError, match=r"bad.yaml is not valid YAML at line \d+"):
        load_config(path)


# --- input paths, checked at start-up ---------------------------------------------

# Every path key, as the test config below spells it (model "tiny", Hugging Face classifier "hf").
PATH_KEYS = [
    "reference.fasta",
    "reference.vcf",
    "windows.bed",
    "models.tiny.path",
    "membership.member_bed",
    "membership.nonmember_bed",
    "robustness.ga.train",
    "robustness.ga.test",
    "robustness.ga.classifiers.hf.path",
    "robustness.ga.classifiers.gfm.path",
    "robustness.fimba.data",
    "robustness.fimba.test_data",
]


def _every_path_used(root: Path) -> dict:
    """A config that reads every kind of input path, all of them existing under root."""
    for name in ("ref.fa", "snps.vcf.gz", "w.bed", "in.bed", "out.bed", "train.csv", "test.csv", "x.h5ad", "y.h5ad"):
        (root / name).write_text("")
    for folder in ("tiny", "hf", "gfm"):
        (root / folder).mkdir()
        (root / folder / "config.json").write_text("{}")  # what is inside is the model loader's to check
    config = {
        "reference": {"fasta": str(root / "ref.fa"), "vcf": str(root / "snps.vcf.gz")},
        "windows": {"placement": "bed", "bed": str(root / "w.bed")},
        "models": {"tiny": {"path": str(root / "tiny"), "kind": "causal"}},
        "target": "tiny",
        "membership": {"mode": "regions", "member_bed": str(root / "in.bed"), "nonmember_bed": str(root / "out.bed")},
        "robustness": {
            "ga": {
                "train": str(root / "train.csv"),
                "test": str(root / "test.csv"),
                "classifiers": {
                    "hf": {"kind": "huggingface", "path": str(root / "hf")},
                    "c": {"kind": "cnn"},
                    "gfm": {"kind": "gfm_head", "path": str(root / "gfm")},
                },
            },
            "fimba": {"data": str(root / "x.h5ad"), "test_data": str(root / "y.h5ad")},
        },
    }
    return validate_config(config)


def _set(config: dict, key: str, value: str) -> None:
    *parents, last = key.split(".")
    block = config
    for part in parents:
        block = block[part]
    block[last] = value


def test_config_whose_input_paths_all_exist_passes_the_start_up_check(tmp_path):
    config = _every_path_used(tmp_path)
    check_input_paths(config)
    assert [key for key, _, _ in input_paths(config)] == PATH_KEYS


@pytest.mark.parametrize("key", PATH_KEYS)
def test_missing_input_path_is_one_line_naming_its_config_key(key, tmp_path):
    config = _every_path_used(tmp_path)
    _set(config, key, str(tmp_path / "gone"))
    with pytest.raises(InputError) as err:
        check_input_paths(config)
    message = str(err.value)
    assert message.startswith(f"config key {key}: {tmp_path / 'gone'} does not exist; set it to")
    assert "\n" not in message


def test_every_wrong_path_is_listed_in_the_one_line(tmp_path):
    config = _every_path_used(tmp_path)
    _set(config, "reference.vcf", str(tmp_path / "gone.vcf.gz"))
    _set(config, "models.tiny.path", str(tmp_path / "gone"))
    with pytest.raises(InputError, match=r"config key reference.vcf: .* \(also wrong: models.tiny.path\)$"):
        check_input_paths(config)


def test_model_path_that_is_a_file_and_fasta_that_is_a_folder_are_refused(tmp_path):
    config = _every_path_used(tmp_path)
    _set(config, "models.tiny.path", str(tmp_path / "ref.fa"))
    with pytest.raises(InputError, match=r"config key models.tiny.path: .*ref.fa is a file, not a folder"):
        check_input_paths(config)
    _set(config, "models.tiny.path", str(tmp_path / "tiny"))
    _set(config, "reference.fasta", str(tmp_path / "tiny"))
    with pytest.raises(InputError, match=r"config key reference.fasta: .*tiny is a folder"):
        check_input_paths(config)


def test_relative_input_paths_are_taken_from_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "refs").mkdir()
    (tmp_path / "refs" / "ref.fa").write_text("")
    config = validate_config({"reference": {"fasta": "refs/ref.fa", "vcf": "refs/snps.vcf.gz"}})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        InputError,
        match=rf"config key reference.vcf: refs/snps.vcf.gz \(relative to the working "
        rf"directory {tmp_path}\) does not exist",
    ):
        check_input_paths(config)


def test_paths_of_switched_off_stages_are_not_required(tmp_path):
    config = _every_path_used(tmp_path)
    config["windows"]["placement"] = "fixed"
    config["membership"]["mode"] = "finetune"
    config["robustness"]["ga"]["classifiers"] = {}
    config["robustness"]["fimba"]["data"] = None
    for key in PATH_KEYS[2:]:
        if key != "models.tiny.path" and not key.endswith(("hf.path", "gfm.path", "data")):
            _set(config, key, str(tmp_path / "gone"))
    config["robustness"]["fimba"]["test_data"] = str(tmp_path / "gone")
    check_input_paths(config)


def _string_keys(schema: dict, key: str = ""):
    """Dotted keys of every string setting in the schema; ``*`` stands for a user-chosen name."""
    types = schema.get("type")
    if "string" in (types if isinstance(types, list) else [types]) and "enum" not in schema:
        yield key
    prefix = f"{key}." if key else ""
    for name, sub in schema.get("properties", {}).items():
        yield from _string_keys(sub, prefix + name)
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _string_keys(schema["additionalProperties"], prefix + "*")


def test_every_path_setting_of_the_schema_is_checked_at_start_up():
    # Strings that are names or labels, not paths; a new string setting must join one list or the other.
    not_paths = {
        "target",
        "robustness.fimba.label",
        "robustness.ga.classifiers.*.model",
        "robustness.ga.comparison.proposal_model",
        "dataset_inference.duci_attack",
    }
    checked = {
        k.replace(".tiny.", ".*.").replace(".hf.", ".*.").replace(".gfm.", ".*.")
        for k in PATH_KEYS + INDIVIDUALS_PATH_KEYS + DATASET_INFERENCE_PATH_KEYS
    }
    assert set(_string_keys(load_schema())) == checked | not_paths


# Read in membership mode individuals only (never with regions), so checked in a config of their own.
INDIVIDUALS_PATH_KEYS = ["individuals.vcf", "individuals.samples"]


@pytest.mark.parametrize("key", INDIVIDUALS_PATH_KEYS)
def test_missing_individuals_path_is_one_line_naming_its_config_key(key, tmp_path):
    config = _every_path_used(tmp_path)
    config["membership"] = {"mode": "individuals"}
    (tmp_path / "people.vcf.gz").write_text("")
    (tmp_path / "people.txt").write_text("")
    config["individuals"] = {"vcf": str(tmp_path / "people.vcf.gz"), "samples": str(tmp_path / "people.txt")}
    assert set(INDIVIDUALS_PATH_KEYS) <= {k for k, _, _ in input_paths(config)}
    _set(config, key, str(tmp_path / "gone"))
    with pytest.raises(InputError, match=rf"^config key {key}: .*gone does not exist"):
        check_input_paths(config)


# Paths only when they are not the keywords members / non_members, and only with dataset inference enabled.
DATASET_INFERENCE_PATH_KEYS = ["dataset_inference.suspect", "dataset_inference.validation"]


@pytest.mark.parametrize("key", DATASET_INFERENCE_PATH_KEYS)
def test_missing_dataset_inference_bed_is_one_line_naming_its_config_key(key, tmp_path):
    config = _every_path_used(tmp_path)
    (tmp_path / "suspect.bed").write_text("")
    (tmp_path / "valid.bed").write_text("")
    config["dataset_inference"] = {
        "enabled": True,
        "suspect": str(tmp_path / "suspect.bed"),
        "validation": str(tmp_path / "valid.bed"),
    }
    assert set(DATASET_INFERENCE_PATH_KEYS) <= {k for k, _, _ in input_paths(config)}
    _set(config, key, str(tmp_path / "gone"))
    with pytest.raises(InputError, match=rf"^config key {key}: .*gone does not exist"):
        check_input_paths(config)


def test_dataset_inference_keywords_are_not_paths_and_off_reads_nothing(tmp_path):
    config = _every_path_used(tmp_path)
    config["dataset_inference"] = {"enabled": True, "suspect": "members", "validation": "non_members"}
    assert not {k for k, _, _ in input_paths(config)} & set(DATASET_INFERENCE_PATH_KEYS)
    config["dataset_inference"] = {"enabled": False, "suspect": str(tmp_path / "gone"), "validation": "non_members"}
    check_input_paths(config)


@pytest.mark.parametrize(
    ("blocks", "expected"),
    [
        ({"dataset_inference": {"enabled": True}}, r"dataset_inference.enabled needs attack scores"),
        (
            {
                "models": {"m": {"path": "m", "kind": "causal"}},
                "target": "m",
                "dataset_inference": {"enabled": True, "suspect": "non_members"},
            },
            r"dataset_inference.suspect and dataset_inference.validation are both non_members",
        ),
    ],
)
def test_dataset_inference_without_scores_or_with_one_set_twice_is_refused(blocks, expected):
    with pytest.raises(InputError, match=expected):
        validate_config({"reference": {"fasta": "r.fa", "vcf": "s.vcf.gz"}, **blocks})


def test_config_check_command_names_the_line_of_a_yaml_mistake(tmp_path, capsys):
    path = tmp_path / "mine.yaml"
    path.write_text("reference:\n  fasta: a.fa\n  vcf: [b.vcf.gz\n")
    assert main([str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"gfm-audit: config file {path} is not valid YAML at line 4:")
    assert "flow sequence at line 3" in err and "\n" not in err


def test_config_check_command_merges_files_and_checks_paths(tmp_path, capsys):
    base, extra = tmp_path / "base.yaml", tmp_path / "extra.yaml"
    base.write_text(yaml.safe_dump({"reference": {"fasta": str(DEMO_FASTA), "vcf": str(DEMO_VCF)}}))
    extra.write_text(yaml.safe_dump({"reference": {"vcf": str(tmp_path / "gone.vcf.gz")}}))
    assert main([str(base)]) == 0
    assert main([str(base), str(extra)]) == 1
    assert capsys.readouterr().err.startswith("gfm-audit: config key reference.vcf:")


def _snakemake_dry_run(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    snakemake = str(Path(sys.executable).parent / "snakemake")
    cmd = [snakemake, "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores", "1", "--dry-run"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=300)


@pytest.mark.workflow
def test_missing_model_folder_stops_snakemake_before_its_input_check_naming_the_key(tmp_path):
    config = {
        "reference": {"fasta": str(DEMO_FASTA), "vcf": str(DEMO_VCF)},
        "models": {"tiny": {"path": "checkpoints/tiny", "kind": "causal"}},
        "membership": {"mode": "none"},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = _snakemake_dry_run(tmp_path, "--configfile", str(tmp_path / "config.yaml"))
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"gfm-audit: config key models.tiny.path: checkpoints/tiny (relative to the working directory {tmp_path}) "
        "does not exist; set it to a local checkpoint folder"
    )
    assert "MissingInputException" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.workflow
def test_yaml_mistake_in_the_default_config_file_names_its_line(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text("reference:\n  fasta: a.fa\n\tvcf: b.vcf.gz\n")
    result = _snakemake_dry_run(tmp_path)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("gfm-audit: config file config/config.yaml is not valid YAML at line 3:")
    assert "Traceback" not in result.stderr
