"""gfm-audit pulled into an outer workflow with `module ...: prefix:` and `use rule *`, run to the report."""

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import DEMO, REPO
from gfm_audit.config import absolute_input_paths, input_paths, validate_config

SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")

# What the README shows: the module's config is a block of the outer workflow's config.
OUTER_SNAKEFILE = """\
configfile: "config.yaml"


module gfm_audit:
    snakefile:
        "{snakefile}"
    config:
        config["gfm_audit"]
    prefix:
        "audit"


use rule * from gfm_audit as gfm_*


rule all:
    input:
        "audit/results/report/report.html",
    default_target: True
"""


def write_outer_workflow(outer: Path) -> dict:
    """An outer workflow whose inputs sit in its own folder, named by relative paths (as a new user writes them)."""
    from gfm_audit.char_lm import save_char_causal_lm

    data = outer / "data"
    data.mkdir(parents=True)
    for name in ("z.fa", "z.fa.fai", "z.vcf.gz", "z.vcf.gz.tbi"):
        shutil.copy(DEMO / name, data / name)
    save_char_causal_lm(data / "arch", hidden=32, layers=1, heads=2, max_positions=128)
    config = {
        "reference": {"fasta": "data/z.fa", "vcf": "data/z.vcf.gz"},
        "windows": {"length": 64, "n": 16},
        "neighbors": {"probs": [0.5], "per_prob": 1},
        "models": {"tiny": {"path": "data/arch", "kind": "causal", "init": "scratch"}},
        "target": "tiny",
        # One reference model and one shard: what this test pins is where each kind of output lands (a trained
        # target and reference, a score shard, its log and benchmark), and every model is a few Python processes;
        # two of each are tested in test_workflow's run.
        "membership": {"reference_models": 1, "training": {"epochs": 2, "batch_size": 4}},
        "scoring": {"shards": 1, "batch_size": 8},
        "attacks": {"metrics": {"bootstrap": 50}},
        # No robustness audits (the schema's default): the privacy chain alone keeps the test near a minute.
    }
    (outer / "config.yaml").write_text(yaml.safe_dump({"gfm_audit": config}))
    (outer / "Snakefile").write_text(OUTER_SNAKEFILE.format(snakefile=REPO / "Snakefile"))
    return config


def outer_snakemake(outer: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SNAKEMAKE, "--cores", "2", *args], cwd=outer, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def module_run(tmp_path_factory):
    outer = tmp_path_factory.mktemp("outer")
    write_outer_workflow(outer)
    result = outer_snakemake(outer)
    assert result.returncode == 0, result.stderr[-4000:]
    return outer, result


@pytest.mark.workflow
def test_every_output_lands_under_the_prefix_and_the_report_names_the_model(module_run):
    outer, result = module_run
    assert not (outer / "results").exists()
    audit = outer / "audit/results"
    page = (audit / "report/report.html").read_text()
    assert "tiny" in page and "Verdict" in page and page.count("<img") >= 4
    for name in ("tiny", "ref_0"):
        assert (audit / f"models/{name}/model.safetensors").exists()
        assert len(pd.read_parquet(audit / f"features/{name}.parquet")) == 16  # one row per window
        assert len(pd.read_parquet(audit / f"features/{name}/shard-0.parquet")) == 16 * 3
    assert (audit / "reference/contigs.tsv").exists()
    assert (audit / "logs/score/ref_0/shard-0.log").exists()
    assert (audit / "benchmarks/score_shard/ref_0/shard-0.tsv").exists() and "<h2>Run</h2><p>Per rule" in page
    # Rules run under their prefixed names.
    assert "rule gfm_score_shard" in result.stderr and "rule gfm_report" in result.stderr


@pytest.mark.workflow
def test_a_second_run_has_nothing_to_do(module_run):
    outer, _ = module_run
    result = outer_snakemake(outer, "--dry-run")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Nothing to be done" in result.stdout + result.stderr


@pytest.mark.workflow
def test_a_module_without_config_stops_with_one_line(tmp_path):
    (tmp_path / "Snakefile").write_text(
        OUTER_SNAKEFILE.replace('configfile: "config.yaml"\n', "")
        .replace('    config:\n        config["gfm_audit"]\n', "")
        .format(snakefile=REPO / "Snakefile")
    )
    result = outer_snakemake(tmp_path, "--dry-run")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("gfm-audit:") and "config" in last
    assert "Traceback" not in result.stderr


def test_relative_user_paths_are_made_absolute_from_the_working_directory(tmp_path, monkeypatch):
    """What common.smk does under a module's prefix, so that Snakemake leaves the user's files where they are."""
    monkeypatch.chdir(tmp_path)
    config = validate_config(
        {
            "reference": {"fasta": "data/ref.fa", "vcf": "/abs/snps.vcf.gz"},
            "windows": {"placement": "bed", "bed": "../w.bed"},
            "models": {"my.lm": {"path": "models/lm", "kind": "causal"}},
            "target": "my.lm",
            "membership": {"mode": "regions", "member_bed": "in.bed", "nonmember_bed": "out.bed"},
            "robustness": {
                "ga": {
                    "train": "t.csv",
                    "test": "v.csv",
                    "classifiers": {"h.f": {"kind": "huggingface", "path": "hf"}},
                },
                "fimba": {"data": "x.h5ad", "test_data": "y.h5ad"},
            },
        }
    )
    before = input_paths(config)
    changed = absolute_input_paths(config)
    assert changed == [key for key, path, _ in before if not path.startswith("/")]
    after = {key: path for key, path, _ in input_paths(config)}
    assert after["reference.fasta"] == str(tmp_path / "data/ref.fa") and after["reference.vcf"] == "/abs/snps.vcf.gz"
    assert after["windows.bed"] == str(tmp_path.parent / "w.bed")
    assert after["models.my.lm.path"] == config["models"]["my.lm"]["path"] == str(tmp_path / "models/lm")
    assert after["robustness.ga.classifiers.h.f.path"] == str(tmp_path / "hf")
    assert all(path.startswith("/") for path in after.values())
    assert absolute_input_paths(config) == []
