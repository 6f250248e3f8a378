"""The masked demo (config/demo_masked.yaml, `make demo-masked`): a masked model scored by stride pseudo-log-likelihood
through a real Snakemake run to the HTML report, which states the masking mode and k of each model."""

import html
import re

import pandas as pd
import pytest
import yaml
from conftest import REPO
from gfm_audit.char_lm import save_char_masked_lm
from gfm_audit.config import validate_config
from gfm_audit.gfm.spec import ModelSpec
from gfm_audit.privacy.report import scoring_label
from test_workflow import snakemake


def _yaml(name: str) -> dict:
    return yaml.safe_load((REPO / "config" / name).read_text())


def test_the_masked_demo_is_the_demos_data_and_recipe_with_a_stride_scored_masked_target():
    demo, masked = _yaml("demo.yaml"), _yaml("demo_masked.yaml")
    for key in ("reference", "windows", "neighbors"):
        assert masked[key] == demo[key], key
    assert masked["membership"] == demo["membership"]
    (name,) = masked["models"]
    assert masked["target"] == name
    assert masked["models"][name] == {
        "path": "resources/demo/char_mlm",
        "kind": "masked",
        "init": "scratch",
        "masking": "stride",
        "stride_k": 6,
    }
    # The architecture folder holds no weights (the run trains them), as resources/demo/char_lm does.
    assert sorted(p.name for p in (REPO / "resources/demo/char_mlm").iterdir()) == [
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    # Every attack a masked model takes, and none that needs a causal one (config validation would stop the run).
    schema = _yaml("config.schema.yaml")
    default = schema["properties"]["attacks"]["properties"]["names"]["default"]
    assert masked["attacks"]["names"] == [*default, "dc_pdd", "ramia"]
    validate_config(_yaml("demo_masked.yaml"))


def test_the_make_target_runs_the_masked_config_in_its_own_folder():
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\ndemo-masked:", 1)[1].split("\n\n", 1)[0]
    assert "GFM_AUDIT_CONFIG=$(CURDIR)/config/demo_masked.yaml" in recipe and "--directory demo-masked" in recipe
    assert "demo-masked/" in (REPO / ".gitignore").read_text().splitlines()


@pytest.mark.parametrize(
    ("block", "label"),
    [
        ({"kind": "causal"}, "log-likelihood (causal)"),
        ({"kind": "masked", "masking": "stride", "stride_k": 4}, "pseudo-log-likelihood, masking stride, stride_k 4"),
        ({"kind": "masked"}, "pseudo-log-likelihood, masking sampled, mask_fraction 0.15"),
        ({"kind": "masked", "masking": "exact"}, "pseudo-log-likelihood, masking exact"),
    ],
)
def test_the_models_table_names_each_models_scoring(block, label):
    assert scoring_label(ModelSpec.from_config("m", {"path": "p", **block})) == label


@pytest.mark.workflow
def test_a_tiny_masked_demo_runs_stride_scoring_and_every_masked_attack_into_the_report(tmp_path):
    config = _yaml("demo_masked.yaml")
    config["reference"] = {key: str(REPO / path) for key, path in config["reference"].items()}
    # The demo's config, shrunk: 24 windows of 64 bp, one neighbor and its control, one reference model trained for
    # 2 epochs, a 1-layer masked model, stride_k 3 (3 passes per sequence).
    config["windows"].update(n=24, length=64)
    config["neighbors"].update(probs=[0.5])
    arch = save_char_masked_lm(tmp_path / "arch", hidden=16, layers=1, heads=2, weights_seed=None)
    config["models"]["demo_mlm"].update(path=str(arch), stride_k=3)
    config["membership"].update(reference_models=1, training={"epochs": 2, "batch_size": 4})
    config["scoring"] = {"shards": 1, "batch_size": 8}
    config["attacks"]["metrics"] = {"bootstrap": 50}
    run = snakemake(tmp_path, config=config, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]

    # Every attack of the config has its rows (variants start with the attack's name) and none was skipped.
    metrics = pd.read_csv(tmp_path / "results/attacks/demo_mlm/metrics.tsv", sep="\t")
    for attack in config["attacks"]["names"]:
        assert metrics.attack.str.startswith(attack).any(), attack
    assert pd.read_csv(tmp_path / "results/attacks/demo_mlm/skipped.tsv", sep="\t").empty
    # Stride scores every base: each window's sequence has 64 scored tokens, as exact would.
    windows = pd.read_parquet(tmp_path / "results/features/demo_mlm.parquet")
    assert len(windows) == 24

    # The report's Models table says how the target was scored: stride with its k; a reference model as its target.
    page = html.unescape((tmp_path / "results/report/report.html").read_text())
    (models_table,) = re.findall(r"<h2>Models</h2>(.*?)</table>", page, re.S)
    assert "pseudo-log-likelihood, masking stride, stride_k 3" in models_table
    assert models_table.count("(as target)") == 2  # ref_0's kind and scoring
