"""Config schema: defaults are filled, mistakes are named in one line."""

import pytest
from conftest import REPO
from gfm_audit.config import load_config, validate_config
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
    config = load_config(REPO / "config" / "config.yaml")
    assert config["reference"]["fasta"] == "resources/demo/z.fa"


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
