"""Study mode: the grid's points, names, seeds and per-point configs; its one-line refusals; the summary table
from hand-made per-point metrics; and a two-point study through Snakemake."""

import copy
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import DEMO, DEMO_FASTA, DEMO_VCF, REPO
from gfm_audit.config import validate_config
from gfm_audit.errors import InputError
from gfm_audit.privacy.study.grid import expand_grid, model_config_overrides, point_config
from gfm_audit.privacy.study.summary import auc_figure, summary_table

SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
CHAR_LM = DEMO / "char_lm"


def study_config(grid: dict, mode: str = "finetune", **extra) -> dict:
    config = {
        "reference": {"fasta": str(DEMO_FASTA), "vcf": str(DEMO_VCF)},
        "models": {"lm": {"path": str(CHAR_LM), "kind": "causal", "init": "scratch"}},
        "target": "lm",
        "membership": {"mode": "finetune", "seed": 7},
        "study": {"grid": grid, **extra},
    }
    validate_config(config)
    # Another mode after the check: the grid's own refusal, not the cross-key check of that mode's other keys.
    config["membership"]["mode"] = mode
    return config


def test_points_are_every_combination_in_key_order_whatever_the_config_order():
    # duplication is written before epochs; epochs still varies slowest (the documented key order).
    points = expand_grid(study_config({"duplication": [1, 4], "epochs": [2, 1]}))
    assert [p.name for p in points] == ["epochs-2_dup-1", "epochs-2_dup-4", "epochs-1_dup-1", "epochs-1_dup-4"]
    assert [p.values for p in points][1] == {"epochs": 2, "duplication": 4}
    assert {p.target for p in points} == {"lm"}


def test_points_without_a_seed_key_share_the_configs_seed_and_a_seed_key_sets_it():
    assert {p.seed for p in expand_grid(study_config({"epochs": [1, 2]}))} == {7}
    points = expand_grid(study_config({"epochs": [1], "seed": [3, 11]}))
    assert [(p.name, p.seed) for p in points] == [("epochs-1_seed-3", 3), ("epochs-1_seed-11", 11)]


def test_a_points_config_puts_each_value_in_place_and_leaves_the_workflow_config_alone():
    config = study_config({"epochs": [5], "duplication": [3], "member_fraction": [0.25], "seed": [2]})
    before = copy.deepcopy(config)
    (point,) = expand_grid(config)
    assert point.name == "epochs-5_dup-3_members-0.25_seed-2"
    out = point_config(config, point)
    assert out["membership"]["training"]["epochs"] == 5
    assert out["membership"]["training"]["duplication"] == 3
    assert out["membership"]["member_fraction"] == 0.25
    assert out["membership"]["seed"] == 2
    assert "study" not in out
    assert config == before
    # The point's config passes the schema and the cross-key checks like the workflow's own.
    validate_config(out)


def test_model_config_keys_name_the_point_and_give_the_config_json_overrides():
    points = expand_grid(study_config({"model_config.n_layer": [1, 2], "epochs": [1]}))
    assert [p.name for p in points] == ["epochs-1_n_layer-1", "epochs-1_n_layer-2"]
    assert model_config_overrides(points[1]) == {"n_layer": 2}


@pytest.mark.parametrize(
    ("grid", "extra", "words"),
    [
        ({"epoch": [1, 2]}, {}, ["unknown key epoch", "epochs"]),
        ({"epochs": [0, 1]}, {}, ["study.grid.epochs", "0"]),
        ({"member_fraction": [1.0]}, {}, ["study.grid.member_fraction"]),
        ({"epochs": [1, 1]}, {}, ["study.grid.epochs", "twice"]),
        ({"model_config.n_layers": [1]}, {}, ["no key n_layers"]),
        ({"epochs": list(range(1, 1001))}, {}, ["1000 points", "study.max_points 64"]),
        ({"epochs": [1, 2, 4], "duplication": [1, 4]}, {"max_points": 5}, ["6 points", "3 epochs x 2 duplication"]),
        ({"epochs": [1]}, {"mode": "regions"}, ["membership.mode regions trains no model"]),
        ({"epochs": [1]}, {"mode": "individuals"}, ["membership.mode individuals has no study rules yet"]),
    ],
)
def test_a_bad_grid_stops_in_one_line_naming_it(grid, extra, words):
    with pytest.raises(InputError) as err:
        expand_grid(study_config(grid, **extra))
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_a_native_hyenadna_from_scratch_is_a_grid_model_and_trains(tmp_path):
    from gfm_audit.models import ModelSpec, load_model
    from gfm_audit.privacy.training import train_model

    # resources/demo/gfm/hyenadna_scratch: a native HyenaDNA's config.json and tokenizer, no weights.
    config = study_config({"model": ["lm", "hyena"]})
    config["models"]["hyena"] = {"path": str(DEMO / "gfm" / "hyenadna_scratch"), "kind": "causal", "init": "scratch"}
    validate_config(config)
    points = expand_grid(config)
    assert [(p.name, p.target) for p in points] == [("model-lm", "lm"), ("model-hyena", "hyena")]
    point = validate_config(point_config(config, points[1]), source="study point model-hyena")
    # The other grid model is another point's target, not a second scratch model of this point.
    assert list(point["models"]) == ["hyena"]
    # It trains as the point's training job would: a repeated 64 bp sequence, 4 epochs of 2 batches from the
    # seeded default initialisation; the last epoch's mean loss is below the first (a model that learns nothing
    # would not go down), and the saved folder loads as a native HyenaDNA.
    spec = ModelSpec.from_config("hyena", point["models"]["hyena"])
    training = {**point["membership"]["training"], "epochs": 4, "batch_size": 4, "learning_rate": 0.01}
    losses = train_model(spec, ["ACGTTGCA" * 8] * 8, params=training, seed=0, out_dir=tmp_path / "m", device="cpu")
    assert losses[-1] < losses[0]
    assert load_model(ModelSpec("trained", str(tmp_path / "m"), "causal")).gfm_audit_architecture == "hyenadna"


def test_a_grid_model_that_cannot_be_trained_here_is_named(tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "no_such_family"}')
    config = study_config({"model": ["lm", "odd"]})
    config["models"]["odd"] = {"path": str(folder), "kind": "causal", "init": "scratch"}
    with pytest.raises(InputError) as err:
        expand_grid(config)
    message = str(err.value)
    assert message.startswith("config error: study.grid.model odd cannot be trained here: model 'odd'")
    assert "model_type 'no_such_family'" in message and "\n" not in message
    with pytest.raises(InputError, match=r"names 'other', which is not a key of models"):
        expand_grid(study_config({"model": ["other"]}))


def test_duplication_with_dp_is_refused_in_the_grid_and_in_the_plain_config():
    config = study_config({"duplication": [1, 2]})
    config["membership"]["training"]["dp"] = {"epsilon": 8.0, "delta": 1e-5}
    with pytest.raises(InputError, match="group of k"):
        expand_grid(config)
    plain = {
        **study_config({}),
        "membership": {"mode": "finetune", "training": {"duplication": 2, "dp": {"epsilon": 8.0, "delta": 1e-5}}},
    }
    with pytest.raises(InputError, match="membership.training.duplication is 2"):
        validate_config(plain)


def write_metrics(path: Path, rows: list[tuple]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "attack\tauc\tauc_low\tauc_high\ttpr_at_fpr_0.01\teps_lower_bound\tn_members\tn_nonmembers\n"
    path.write_text(header + "".join("\t".join(str(v) for v in r) + "\n" for r in rows))
    return str(path)


def test_summary_table_has_one_row_per_point_and_attack_with_its_values_and_metrics(tmp_path):
    points = [
        {"name": "epochs-1_dup-1", "values": {"epochs": 1, "duplication": 1}},
        {"name": "epochs-4_dup-1", "values": {"epochs": 4, "duplication": 1}},
    ]
    paths = [
        write_metrics(
            tmp_path / "a/metrics.tsv",
            [("loss", 0.52, 0.44, 0.6, 0.0, "", 50, 50), ("rmia", 0.55, 0.47, 0.63, 0.02, 0.1, 50, 50)],
        ),
        write_metrics(
            tmp_path / "b/metrics.tsv",
            [("loss", 0.81, 0.75, 0.87, 0.2, 1.3, 50, 50), ("rmia", 0.9, 0.85, 0.95, 0.4, 2.1, 50, 50)],
        ),
    ]
    table = summary_table(points, paths)
    assert list(table.columns[:4]) == ["point", "epochs", "duplication", "attack"]
    assert table[["point", "attack"]].values.tolist() == [
        ["epochs-1_dup-1", "loss"],
        ["epochs-1_dup-1", "rmia"],
        ["epochs-4_dup-1", "loss"],
        ["epochs-4_dup-1", "rmia"],
    ]
    assert table.epochs.tolist() == [1, 1, 4, 4]
    assert table.auc.tolist() == [0.52, 0.55, 0.81, 0.9]
    assert table.auc_low.tolist() == [0.44, 0.47, 0.75, 0.85]
    assert table["tpr_at_fpr_0.01"].tolist() == [0.0, 0.02, 0.2, 0.4]
    # An empty epsilon stays missing, not 0.
    assert pd.isna(table.eps_lower_bound.iloc[0]) and table.eps_lower_bound.iloc[3] == 2.1
    auc_figure(table, "epochs", tmp_path / "epochs.png")
    auc_figure(table, "seed", tmp_path / "seed.png")  # not in the grid: a figure that says so
    assert (tmp_path / "epochs.png").stat().st_size > 0 and (tmp_path / "seed.png").stat().st_size > 0


def test_summary_refuses_a_metrics_table_without_its_columns(tmp_path):
    bad = tmp_path / "metrics.tsv"
    bad.write_text("x\ty\n1\t2\n")
    with pytest.raises(InputError, match="no attack and auc columns; re-run evaluate_attacks for point p"):
        summary_table([{"name": "p", "values": {"epochs": 1}}], [str(bad)])


def snakemake(workdir: Path, config: dict, *args: str) -> subprocess.CompletedProcess:
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores", "2"]
    return subprocess.run([*cmd, "--configfile", str(path), *args], capture_output=True, text=True, timeout=900)


def tiny_study(grid: dict, **study) -> dict:
    return {
        "reference": {"fasta": str(DEMO_FASTA), "vcf": str(DEMO_VCF)},
        "windows": {"length": 64, "n": 24},
        "neighbors": {"probs": [0.5], "per_prob": 1},
        "models": {"lm": {"path": str(CHAR_LM), "kind": "causal", "init": "scratch"}},
        "target": "lm",
        "membership": {"mode": "finetune", "reference_models": 1, "training": {"epochs": 1, "batch_size": 4}},
        "scoring": {"shards": 1, "batch_size": 8},
        "attacks": {"metrics": {"bootstrap": 20}},
        "study": {"grid": grid, **study},
    }


@pytest.mark.workflow
def test_dry_run_lays_out_one_audit_per_point_over_shared_data(tmp_path):
    result = snakemake(tmp_path, tiny_study({"epochs": [1, 2], "duplication": [1, 4]}), "-n")
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = dict(
        line.split()[:2] for line in result.stdout.splitlines() if line.startswith(("study_", "select_", "make_"))
    )
    assert jobs["select_windows"] == "1" and jobs["make_neighbors"] == "1"
    # 4 points x (target + 1 reference model) trainings, one shard each.
    assert jobs["study_train_model"] == "8" and jobs["study_score_shard"] == "8" and jobs["study_summary"] == "1"
    assert jobs["study_report"] == "1" and "results/study/report.html" in result.stdout
    for point in ("epochs-1_dup-1", "epochs-1_dup-4", "epochs-2_dup-1", "epochs-2_dup-4"):
        assert f"results/study/{point}/attacks/lm/metrics.tsv" in result.stdout
        assert f"results/study/{point}/models/ref_0" in result.stdout
    # No single audit beside the study.
    assert "results/models/lm" not in result.stdout


@pytest.mark.workflow
def test_too_many_points_stop_before_scheduling_in_one_line(tmp_path):
    result = snakemake(tmp_path, tiny_study({"epochs": list(range(1, 201))}, max_points=10), "-n")
    assert result.returncode != 0
    assert (
        "gfm-audit: config error: study.grid has 200 points (200 epochs), more than study.max_points 10"
        in result.stderr
    )
    assert "Traceback" not in result.stderr and "study_train_model" not in result.stdout


@pytest.mark.workflow
@pytest.mark.slow
def test_two_point_study_runs_to_its_summary(tmp_path):
    result = snakemake(tmp_path, tiny_study({"duplication": [1, 3]}))
    assert result.returncode == 0, result.stderr[-4000:]
    study = tmp_path / "results/study"
    table = pd.read_csv(study / "summary.tsv", sep="\t")
    assert table.point.unique().tolist() == ["dup-1", "dup-3"]
    per_point = [pd.read_csv(study / p / "attacks/lm/metrics.tsv", sep="\t") for p in ("dup-1", "dup-3")]
    assert table.attack.tolist() == per_point[0].attack.tolist() + per_point[1].attack.tolist()
    assert table.auc.tolist() == pd.concat(per_point).auc.tolist()
    assert (study / "auc_vs_duplication.png").stat().st_size > 0 and (study / "auc_vs_epochs.png").is_file()
    # The study's page: both points' loss rows and both figures (tests/test_study_report.py checks the builder).
    page = (study / "report.html").read_text()
    for point in ("dup-1", "dup-3"):
        assert f"<tr><td>{point}</td><td>{point[4:]}</td><td>loss</td>" in page
    assert page.count('<img alt="AUC against') == 2 and "at the smallest training exposure" in page
    # Same seed, same members: the points differ only in what the grid varies.
    assert (study / "dup-1/membership.tsv").read_bytes() == (study / "dup-3/membership.tsv").read_bytes()
    log = (tmp_path / "results/logs/study/dup-3/train_model/lm.log").read_text()
    assert "each member window 3 times an epoch" in log
    assert "each member window" not in (tmp_path / "results/logs/study/dup-1/train_model/lm.log").read_text()
    # The trained weights differ: duplication 3 took three times the optimizer steps from the same start.
    weights = [(study / p / "models/lm/model.safetensors").read_bytes() for p in ("dup-1", "dup-3")]
    assert weights[0] != weights[1]


def read_config(path: Path) -> dict:
    return validate_config(yaml.safe_load(path.read_text()))


def test_the_bundled_study_configs_expand_to_their_documented_points():
    small = expand_grid(read_config(REPO / "config/study.yaml"))
    assert [p.name for p in small] == [f"epochs-{e}_dup-{d}" for e in (1, 2, 4, 8) for d in (1, 4)]
    large = expand_grid(read_config(REPO / "config/studies/gpu_cluster.yaml"))
    assert len(large) == 6 * 3 * 2 * 3 == 108
    assert large[0].name == "epochs-1_dup-1_seed-0_n_layer-2"


def test_genome_mode_grid_sets_membership_genome_keys_and_refuses_member_fraction():
    config = study_config({"duplication": [1, 4], "heldout_fraction": [0.1], "epochs": [2]}, mode="genome")
    config["membership"]["genome"] = {"duplication": 1, "heldout_fraction": 0.25, "block_length": 1000}
    points = expand_grid(config)
    assert [p.name for p in points] == ["epochs-2_dup-1_heldout-0.1", "epochs-2_dup-4_heldout-0.1"]
    out = point_config(config, points[1])
    assert out["membership"]["genome"] == {"duplication": 4, "heldout_fraction": 0.1, "block_length": 1000}
    assert out["membership"]["training"].get("duplication", 1) == 1
    with pytest.raises(InputError, match="unknown key member_fraction in membership.mode genome"):
        expand_grid(study_config({"member_fraction": [0.5]}, mode="genome"))
    with pytest.raises(InputError, match="unknown key heldout_fraction in membership.mode finetune"):
        expand_grid(study_config({"heldout_fraction": [0.5]}))


@pytest.mark.workflow
@pytest.mark.slow
def test_genome_mode_study_splits_and_trains_per_point(tmp_path):
    from test_genome_workflow import genome_config

    config = genome_config(tmp_path)
    config["membership"]["reference_models"] = 1
    config["study"] = {"grid": {"duplication": [1, 2]}}
    result = snakemake(tmp_path, config)
    assert result.returncode == 0, result.stderr[-4000:]
    study = tmp_path / "results/study"
    assert pd.read_csv(study / "summary.tsv", sep="\t").point.unique().tolist() == ["dup-1", "dup-2"]
    # One seed: both points hold out the same blocks and label the same windows.
    assert (study / "dup-1/genome/heldout.tsv").read_bytes() == (study / "dup-2/genome/heldout.tsv").read_bytes()
    assert (study / "dup-1/membership.tsv").read_bytes() == (study / "dup-2/membership.tsv").read_bytes()
    logs = [(tmp_path / f"results/logs/study/{p}/train_model/tiny.log").read_text() for p in ("dup-1", "dup-2")]
    assert logs[0] != logs[1]
