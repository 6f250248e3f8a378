"""Real Snakemake runs of the data stages on the bundled demo."""

import hashlib
import html
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import DEMO_FASTA, DEMO_VCF, REPO, demo_vcf_lines, write_vcf
from gfm_audit.report import layout as report_layout

pytestmark = pytest.mark.workflow

SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
OUTPUTS = (
    "results/windows/windows.tsv",
    "results/windows/windows.fa",
    "results/windows/snps.tsv.gz",
    "results/windows/shard-0.fa",
    "results/windows/shard-1.snps.tsv.gz",
    "results/neighbors/shard-0.fa",
    "results/neighbors/shard-1.fa",
    "results/neighbors/neighbors.tsv",
)


def snakemake(workdir: Path, *args: str, config: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores", "2"]
    if config is not None:
        path = workdir / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        cmd += ["--configfile", str(path)]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout)


def demo_config(**windows) -> dict:
    return {
        "reference": {"fasta": str(DEMO_FASTA), "vcf": str(DEMO_VCF)},
        "windows": {"length": 1000, "n": 30, **windows},
        "neighbors": {"probs": [0.2, 0.6], "per_prob": 2},
    }


def digest(workdir: Path) -> dict[str, str]:
    return {p: hashlib.sha256((workdir / p).read_bytes()).hexdigest() for p in OUTPUTS}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("demo")
    result = snakemake(workdir, config=demo_config())
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


def test_stages_write_every_output_with_the_documented_columns(demo_run):
    for p in OUTPUTS:
        assert (demo_run / p).stat().st_size > 0
    windows = pd.read_csv(demo_run / "results/windows/windows.tsv", sep="\t")
    assert list(windows.columns) == ["window_id", "chrom", "start", "end", "n_snps", "snp_fraction", "gc_fraction"]
    assert len(windows) == 30 and (windows.n_snps > 0).all()
    snps = pd.read_csv(demo_run / "results/windows/snps.tsv.gz", sep="\t")
    assert list(snps.columns) == ["window_id", "chrom", "pos", "offset", "ref", "alt", "id", "af"]
    neighbors = pd.read_csv(demo_run / "results/neighbors/neighbors.tsv", sep="\t")
    assert list(neighbors.columns) == [
        "neighbor_id",
        "window_id",
        "prob",
        "replicate",
        "kind",
        "n_changed",
        "changed_offsets",
    ]
    assert len(neighbors) == 30 * 2 * 2 * 2
    contigs = (demo_run / "results/reference/contigs.tsv").read_text()
    assert contigs == "fasta_contig\tvcf_contig\tlength\tmatch\nz\tz\t1000000\tidentical\n"
    assert "indel:" in (demo_run / "results/logs/select_windows.log").read_text()


def test_rerun_with_nothing_changed_executes_no_job(demo_run):
    result = snakemake(demo_run, "--dry-run", config=demo_config())
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


def test_changing_a_neighbor_parameter_reruns_only_make_neighbors(demo_run):
    config = demo_config()
    config["neighbors"]["seed"] = 5
    result = snakemake(demo_run, "--dry-run", config=config)
    plan = result.stdout + result.stderr
    assert result.returncode == 0 and "rule make_neighbors" in plan
    assert "select_windows" not in plan and "prepare_reference" not in plan


def test_a_second_run_gives_byte_identical_tables(demo_run, tmp_path):
    result = snakemake(tmp_path, config=demo_config())
    assert result.returncode == 0, result.stderr[-3000:]
    assert digest(tmp_path) == digest(demo_run)


def test_default_config_dry_run_plans_every_stage():
    result = subprocess.run(
        [SNAKEMAKE, "--dry-run", "--forceall", "--cores", "1"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for rule in ("prepare_reference", "select_windows", "make_neighbors"):
        assert f"rule {rule}" in result.stdout + result.stderr


def test_snakemake_lint_is_clean():
    result = subprocess.run([SNAKEMAKE, "--lint"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_schema_violation_stops_the_run_with_one_line_naming_the_key(tmp_path):
    config = demo_config()
    config["windows"]["lenght"] = 3
    result = snakemake(tmp_path, config=config)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("gfm-audit: config error") and "unknown key windows.lenght" in last
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "results").exists()


def test_bad_vcf_fails_its_rule_with_one_line_and_leaves_no_partial_output(tmp_path):
    header, records = demo_vcf_lines()
    plain = write_vcf(tmp_path / "plain.vcf", header, records[:100], bgzip=False)
    config = demo_config()
    config["reference"]["vcf"] = str(plain)
    result = snakemake(tmp_path, config=config)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "gfm-audit error" in line]
    assert len(errors) == 1 and "in rule prepare_reference" in errors[0] and "is not bgzip-compressed" in errors[0]
    assert "Traceback" not in result.stderr
    leftovers = [p for p in (tmp_path / "results").rglob("*") if p.is_file() or p.is_symlink()]
    assert [p.name for p in leftovers] == ["prepare_reference.log"]


def tiny_model_config(workdir: Path, *, shards: int) -> dict:
    """The demo data with a tiny from-scratch causal LM (saved under workdir) as target and two references."""
    from gfm_audit.char_lm import save_char_causal_lm

    arch = save_char_causal_lm(workdir / "arch", hidden=32, layers=1, heads=2, max_positions=128)
    config = demo_config()
    config["windows"].update(n=16, length=64)
    config["neighbors"] = {"probs": [0.5], "per_prob": 1}
    config["models"] = {"tiny": {"path": str(arch), "kind": "causal", "init": "scratch"}}
    config["target"] = "tiny"
    config["membership"] = {"reference_models": 2, "training": {"epochs": 2, "batch_size": 4}}
    config["scoring"] = {"shards": shards, "batch_size": 8}
    return config


def test_finetune_mode_trains_target_and_references_and_scores_every_sequence(model_run):
    workdir, _ = model_run
    membership = pd.read_csv(workdir / "results/membership.tsv", sep="\t")
    assert list(membership.columns) == ["window_id", "target_member", "ref_0_member", "ref_1_member"]
    assert membership.target_member.sum() == 8
    for name in ("tiny", "ref_0", "ref_1"):
        assert (workdir / f"results/models/{name}/model.safetensors").exists()
        shards = [pd.read_parquet(workdir / f"results/features/{name}/shard-{i}.parquet") for i in (0, 1)]
        sequences = pd.concat(shards)
        assert len(sequences) == 16 * 3 and sequences.window_id.nunique() == 16 and (sequences.n_tokens == 64).all()
        # A window and its neighbors share a shard, and no window is in both.
        assert not set(shards[0].window_id) & set(shards[1].window_id)
        windows = pd.read_parquet(workdir / f"results/features/{name}.parquet")
        assert len(windows) == 16 and {"loss", "min_k_k0.2", "nbr_snp_p0.5_loss_mean", "nbr_control_n"} <= set(
            windows.columns
        )
        for shard in (0, 1):
            log = (workdir / f"results/logs/score/{name}/shard-{shard}.log").read_text()
            assert "tokens/s" in log and "peak memory" in log
            assert (workdir / f"results/benchmarks/score_shard/{name}/shard-{shard}.tsv").exists()
    # keep_tokens is off by default: no per-token table anywhere.
    assert not (workdir / "results/scores").exists()


def test_deleting_one_score_shard_reruns_only_that_shard(model_run):
    workdir, config = model_run
    (workdir / "results/features/ref_1/shard-1.parquet").unlink()
    plan = snakemake(workdir, "--dry-run", config=config)
    text = plan.stdout + plan.stderr
    assert "rule score_shard" in text and "train_model" not in text
    assert text.count("rule score_shard") == 1 and "ref_1/shard-1.parquet" in text
    rerun = snakemake(workdir, config=config)
    assert rerun.returncode == 0 and (workdir / "results/features/ref_1/shard-1.parquet").exists()


def test_attack_metrics_and_report_are_built_for_the_audited_model(model_run):
    workdir, _ = model_run
    metrics = pd.read_csv(workdir / "results/attacks/tiny/metrics.tsv", sep="\t")
    assert {
        "loss",
        "zlib",
        "min_k",
        "min_k_plus_plus",
        "neighborhood_snp",
        "reference_refs",
        "rmia",
        "lira_online",
        "lira_offline",
    } <= set(metrics.attack)
    scores = pd.read_csv(workdir / "results/attacks/tiny/scores.tsv", sep="\t")
    assert list(scores.columns[:2]) == ["window_id", "member"] and len(scores) == 16
    page = (workdir / "results/report/report.html").read_text()
    privacy = [report_layout.FIGURES[f].caption for f in ("roc", "histograms", "neighbor_loss", "snp_sites")]
    assert all(page.count(f'<img alt="{html.escape(c)}"') == 1 for c in privacy) and "Verdict" in page
    # The shared run (conftest.model_run) adds the two memorisation figures; test_memorisation checks those.
    assert page.count("<img") == len(privacy) + 2
    assert "<h2>Run</h2>" in page and "score_shard" in page.split("<h2>Run</h2>")[1]


SCORING_RULES = ("score_shard", "window_features", "train_model", "make_neighbors", "select_windows")


def test_changing_an_attack_parameter_reruns_attacks_and_report_but_no_scoring(model_run):
    workdir, config = model_run
    changed = {**config, "attacks": {"rmia": {"gamma": 2.0}, "lira": {"fixed_variance": True}}}
    plan = snakemake(workdir, "--dry-run", config=changed)
    text = plan.stdout + plan.stderr
    assert plan.returncode == 0 and "rule run_attacks" in text and "rule report" in text
    for rule in SCORING_RULES:
        assert f"rule {rule}" not in text


def test_a_parameter_asking_for_a_feature_no_configured_attack_uses_is_ignored(model_run):
    workdir, config = model_run
    names = ["loss", "zlib", "neighborhood", "reference", "rmia", "lira"]  # no min-k attack
    without = {**config, "attacks": {"names": names}}
    base = snakemake(workdir, "--dry-run", config=without)
    changed = snakemake(workdir, "--dry-run", config={**config, "attacks": {"names": names, "min_k": {"k": 0.5}}})
    assert base.returncode == 0 and changed.returncode == 0
    # Dropping the min-k attacks changes the features the scoring jobs compute; min_k.k then changes nothing more.
    plan = lambda r: sorted(re.findall(r"rule (\w+):", r.stdout + r.stderr))  # noqa: E731
    assert plan(changed) == plan(base) and "run_attacks" in plan(base)


def test_an_attack_needing_a_new_feature_rescores_but_trains_nothing(model_run):
    workdir, config = model_run
    changed = {**config, "attacks": {"min_k": {"k": [0.2, 0.5]}}}
    plan = snakemake(workdir, "--dry-run", config=changed)
    text = plan.stdout + plan.stderr
    assert plan.returncode == 0 and text.count("rule score_shard") == 6 and "rule window_features" in text
    for rule in ("train_model", "make_neighbors", "select_windows", "shard_windows"):
        assert f"rule {rule}" not in text


def test_a_per_token_figure_without_kept_tokens_stops_with_one_line_naming_it(model_run, tmp_path):
    _, config = model_run
    asked = {**config, "report": {"token_figures": ["token_profile"]}}
    result = snakemake(tmp_path, "--dry-run", config=asked)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("gfm-audit: figure token_profile") and "scoring.keep_tokens" in last
    assert "Traceback" not in result.stderr
    kept = {**asked, "scoring": {**config["scoring"], "keep_tokens": True}}
    plan = snakemake(tmp_path, "--dry-run", config=kept)
    assert plan.returncode == 0 and "rule plot_token_profile" in plan.stdout + plan.stderr


def test_adding_a_model_scores_only_that_model(model_run):
    workdir, config = model_run
    more = {
        **config,
        "models": {**config["models"], "base": {"path": str(workdir / "results/models/ref_0"), "kind": "causal"}},
    }
    plan = snakemake(workdir, "--dry-run", config=more)
    text = plan.stdout + plan.stderr
    assert plan.returncode == 0, text[-2000:]
    scored = re.findall(r"output: results/features/(\w+)/shard-\d+\.parquet", text)
    assert scored and set(scored) == {"base"}
    assert "rule train_model" not in text and "rule select_windows" not in text


def section_targets(section: str, name: str) -> list[str]:
    """Every table and figure of one report section for one name: a run of that audit alone."""
    return [f for files in report_layout.section_outputs(section, [name]).values() for f in files]


def ga_config(tmp_path: Path, **attack) -> dict:
    """A robustness-only run: the GA on a CNN trained on 1,500 real GUE rows, tiny search settings."""
    gue = REPO / "resources/demo/gue_prom_300_all"
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    train.write_text("".join((gue / "dev.csv").read_text().splitlines(keepends=True)[:1501]))
    test.write_text("".join((gue / "test.csv").read_text().splitlines(keepends=True)[:201]))
    config = demo_config()
    config["robustness"] = {
        "ga": {
            "train": str(train),
            "test": str(test),
            "classifiers": {"cnn": {"kind": "cnn", "channels": 16, "training": {"epochs": 2}}},
            "attack": {"n_sequences": 30, "population": 10, "generations": 5, **attack},
            # No proposal model in a robustness-only run: lm_proposal is left out (with a warning).
            "comparison": {"n_sequences": 12, "pgd_steps": 5},
            "adversarial_training": {"iterations": 1, "train_sample": 30, "holdout": 20},
        }
    }
    return config


def test_ga_stage_writes_its_tables_figures_and_report_section(tmp_path):
    # One rule's threads set from the command line: each classifier job runs torch on what its rule was given.
    result = snakemake(tmp_path, "--set-threads", "ga_attack=1", config=ga_config(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    logs = tmp_path / "results/logs/robustness"
    for rule, threads in (("ga_attack", 1), ("train", 2), ("compare_attacks", 2), ("adversarial_training", 2)):
        assert f", {threads} intra-op threads," in (logs / f"cnn.{rule}.log").read_text(), rule
    adversarial = pd.read_csv(tmp_path / "results/robustness/ga/cnn/adversarial.tsv", sep="\t")
    assert list(adversarial.columns) == [
        "seq_id",
        "label",
        "original",
        "adversarial",
        "p_true_before",
        "p_true_after",
        "edits",
        "gc_before",
        "gc_after",
        "n_transitions",
        "queries",
        "success",
    ]
    summary = pd.read_csv(tmp_path / "results/robustness/ga/cnn/summary.tsv", sep="\t")
    assert list(summary.columns) == [
        "attack",
        "n_attacked",
        "asr",
        "mean_edits",
        "median_edits",
        "mean_conf_drop",
        "mean_queries",
        "transition_fraction",
    ]
    assert summary.attack.tolist() == ["ga"] + [f"ga_k{k}" for k in range(1, 6)] + ["random"] + [
        f"random_k{k}" for k in range(1, 6)
    ]
    progress = pd.read_csv(tmp_path / "results/robustness/adv_training/cnn/progress.tsv", sep="\t")
    assert progress.iteration.tolist() == [0, 1]
    cost = pd.read_csv(tmp_path / "results/robustness/adv_training/cnn/cost.tsv", sep="\t")
    assert cost.scheme.tolist() == ["iterative", "iterative"]
    assert (cost.robust_ci_low <= cost.robust_accuracy).all() and (cost.robust_accuracy <= cost.robust_ci_high).all()
    comparison = pd.read_csv(tmp_path / "results/robustness/ga/cnn/comparison.tsv", sep="\t")
    assert list(comparison.columns) == ["attack", "budget", "asr", "mean_edits", "mean_queries", "n_attacked"]
    assert list(dict.fromkeys(comparison.attack)) == ["ga", "random", "greedy", "pgd"]
    assert (comparison.mean_edits.dropna() <= comparison.budget[comparison.mean_edits.notna()]).all()
    assert (
        "lm_proposal not run: no proposal_model"
        in (tmp_path / "results/logs/robustness/cnn.compare_attacks.log").read_text()
    )
    for png in (
        "results/robustness/adv_training/cnn/progress.png",
        "results/report/robustness/cnn/asr_vs_budget.png",
        "results/report/robustness/cnn/attack_comparison.png",
        "results/report/robustness/cnn/edits_histogram.png",
    ):
        assert (tmp_path / png).read_bytes().startswith(b"\x89PNG")
    html = (tmp_path / "results/report/report.html").read_text()
    assert "Robustness: genetic-algorithm attack" in html and "Adversarial training" in html
    assert "Attacks compared on the same sequences" in html and "Wilson score interval" in html
    assert "(GenoArmory-style)" in html and "GenoArmory's figures beside ours" in html
    assert "Attacks on" not in html  # no model audited for privacy in this config
    rerun = snakemake(tmp_path, "--dry-run", config=ga_config(tmp_path))
    assert "Nothing to be done" in rerun.stdout + rerun.stderr
    # Snakemake's own report: the workflow description and each figure with its caption from report/*.rst.
    bundle = snakemake(tmp_path, "--report", str(tmp_path / "report.zip"), config=ga_config(tmp_path))
    assert bundle.returncode == 0, bundle.stderr[-3000:]
    with zipfile.ZipFile(tmp_path / "report.zip") as archive:
        page = archive.read("report/report.html").decode()
    assert "gfm-audit audits genomic foundation models" in page
    for figure in ("asr_vs_budget", "attack_comparison", "edits_histogram", "training_progress"):
        assert f"<p>{report_layout.FIGURES[figure].caption}</p>" in page  # rendered from report/<figure>.rst


def test_report_asks_for_each_names_own_files_when_a_name_is_inside_other_paths(tmp_path):
    """A model named report (in every privacy figure's path), classifiers ga (in every GA table's path), cnn, cnn2."""
    config = ga_config(tmp_path)
    config["robustness"]["ga"]["classifiers"] = {name: {"kind": "cnn"} for name in ("ga", "cnn", "cnn2")}
    config["models"] = {"report": {"path": str(REPO / "resources/demo/char_lm"), "kind": "causal", "init": "scratch"}}
    config["target"] = "report"
    plan = snakemake(tmp_path, "--dry-run", "results/report/report.html", config=config)
    text = plan.stdout + plan.stderr
    assert plan.returncode == 0, text[-3000:]
    figures = ", ".join(f"results/report/report/{f}.png" for f in ("roc", "histograms", "neighbor_loss", "snp_sites"))
    assert f"output: {figures}\n" in text
    for name in ("ga", "cnn", "cnn2"):
        assert (
            f"output: results/report/robustness/{name}/asr_vs_budget.png, results/report/robustness/{name}/"
            f"attack_comparison.png, results/report/robustness/{name}/edits_histogram.png, "
            f"results/robustness/adv_training/{name}/progress.png\n"
        ) in text
    (inputs,) = re.findall(r"rule report:\n    input: (.*)\n", text)
    wanted = report_layout.report_inputs({"privacy": ["report"], "ga": ["ga", "cnn", "cnn2"], "fimba": []})
    assert sorted(inputs.split(", ")) == sorted(wanted.values())


def test_ga_label_outside_the_classes_fails_with_one_line_and_no_partial_output(tmp_path):
    config = ga_config(tmp_path)
    test = Path(config["robustness"]["ga"]["test"])
    lines = test.read_text().splitlines(keepends=True)
    lines[3] = lines[3].rstrip("\n").rsplit(",", 1)[0] + ",7\n"
    test.write_text("".join(lines))
    # Every GA job (keep-going: each one that reads the test file must stop the same way), not the data stages.
    result = snakemake(tmp_path, "--keep-going", *section_targets("ga", "cnn"), config=config)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "gfm-audit error" in line]
    assert errors and all("row 3: label 7 is outside the classes of classifier 'cnn' (0..1)" in e for e in errors)
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "results/robustness/ga/cnn").exists() or not any(
        (tmp_path / "results/robustness/ga/cnn").iterdir()
    )
    assert not (tmp_path / "results/robustness/adv_training/cnn/progress.tsv").exists()


def fimba_config(**fimba) -> dict:
    config = demo_config()
    config["robustness"] = {
        "fimba": {
            "data": str(REPO / "resources/demo/pbmc68k_reduced/pbmc68k_reduced.h5ad"),
            "label": "bulk_labels",
            "positive": ["Dendritic"],
            "layer": "raw",
            "models": ["mlp", "gradient_boosting"],
            "top_m": [5, 50],
            "shap_samples": 3,
            "shap_background": 5,
            "vae": {"epochs": 10, "n_samples": 20},
            "comparison": {"samples": 8, "zoo": {"max_iter": 5}, "hopskipjump": {"max_iter": 2, "max_eval": 50}},
            **fimba,
        }
    }
    return config


def test_fimba_stage_writes_its_three_tables_figures_and_report_section(tmp_path):
    result = snakemake(tmp_path, "--set-threads", "fimba_model=1", config=fimba_config())
    assert result.returncode == 0, result.stderr[-3000:]
    assert ", 1 intra-op threads," in (tmp_path / "results/logs/robustness/fimba_mlp.log").read_text()
    fimba = tmp_path / "results/robustness/fimba"
    curve = pd.read_csv(fimba / "mlp/curve.tsv", sep="\t")
    assert list(curve.columns) == [
        "model",
        "variant",
        "method",
        "m",
        "accuracy",
        "fp",
        "fn",
        "flip_rate",
        "queries",
        "status",
    ]
    assert set(curve.method) == {"clean", "fimba", "random_features", "shap_uniform", "brute_force"}
    detection = pd.read_csv(fimba / "detection.tsv", sep="\t")
    assert set(detection.model) == {"mlp", "gradient_boosting"}
    vae = pd.read_csv(fimba / "vae.tsv", sep="\t")
    assert vae.model.tolist() == ["mlp", "gradient_boosting"]
    for model in ("mlp", "gradient_boosting"):
        for figure in ("curve", "spectra"):
            assert (tmp_path / f"results/report/robustness/fimba/{model}/{figure}.png").read_bytes()[:4] == b"\x89PNG"
    html = (tmp_path / "results/report/report.html").read_text()
    assert "Robustness: FIMBA on gene-expression classifiers" in html and "VAE poisoning" in html
    assert "paper, TCGA: 0.9" in html
    comparison = pd.read_csv(fimba / "comparison.tsv", sep="\t")
    assert set(comparison.model) == {"mlp", "gradient_boosting"}
    # No gradients through scikit-learn models: only the black-box attacks run beside FIMBA.
    assert set(comparison.attack) == {"clean", "fimba", "zoo", "hopskipjump"}
    assert set(comparison[comparison.attack == "fimba"].m) == {5, 50}
    assert (comparison.l2_max <= comparison.budget * (1 + 1e-9)).all()
    for model in ("mlp", "gradient_boosting"):
        assert (tmp_path / f"results/report/robustness/fimba/{model}/comparison.png").read_bytes()[:4] == b"\x89PNG"
    assert "FIMBA beside ART's attacks at matched L2 budgets" in html


def test_fimba_h5ad_without_the_obs_key_fails_with_one_line_and_no_partial_output(tmp_path):
    config = fimba_config(label="cell_type", models=["mlp"])
    result = snakemake(tmp_path, "--keep-going", *section_targets("fimba", "mlp"), config=config)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "gfm-audit error" in line]
    assert errors and all("obs has no key 'cell_type'" in e for e in errors)
    assert "Traceback" not in result.stderr
    fimba = tmp_path / "results/robustness/fimba"
    assert not fimba.exists() or not [p for p in fimba.rglob("*") if p.is_file()]


# --- membership mode individuals ---------------------------------------------------------------------------------


def individuals_config(workdir: Path) -> dict:
    """Eight real 1000 Genomes people, two 64-bp windows at SNV-dense places, a tiny model, one epoch."""
    from gfm_audit.char_lm import save_char_causal_lm

    arch = save_char_causal_lm(workdir / "arch", hidden=16, layers=1, heads=2, max_positions=128)
    (workdir / "dense.bed").write_text("z\t339910\t340166\nz\t934877\t935133\n")
    return {
        "reference": {"fasta": str(DEMO_FASTA), "vcf": str(REPO / "resources/individuals/phased_snvs.vcf.gz")},
        "windows": {"length": 64, "n": 2, "placement": "bed", "bed": str(workdir / "dense.bed")},
        "neighbors": {"probs": [0.5], "per_prob": 1},
        "models": {"tiny": {"path": str(arch), "kind": "causal", "init": "scratch"}},
        "target": "tiny",
        "individuals": {"vcf": str(REPO / "resources/individuals/phased_snvs.vcf.gz"), "n": 8, "curve_repeats": 2},
        "membership": {
            "mode": "individuals",
            "reference_models": 2,
            "seed": 1,  # ref_0 and ref_1 take complementary halves: every person has an IN and an OUT model
            "training": {"epochs": 1, "batch_size": 8},
        },
        "scoring": {"shards": 1, "batch_size": 16},
        "attacks": {"metrics": {"bootstrap": 50}},
    }


def test_individuals_mode_runs_from_vcf_to_report_on_real_people(tmp_path):
    config = individuals_config(tmp_path)
    result = snakemake(tmp_path, config=config)
    assert result.returncode == 0, result.stderr[-3000:]
    membership = pd.read_csv(tmp_path / "results/membership_individuals.tsv", sep="\t")
    assert list(membership.columns) == ["sample", "target_member", "ref_0_member", "ref_1_member"]
    assert len(membership) == 8 and membership.target_member.sum() == 4
    index = pd.read_csv(tmp_path / "results/individuals/haplotypes.tsv", sep="\t")
    assert len(index) == 8 * 2 * 2 and set(index["sample"]) == set(membership["sample"])
    metrics = pd.read_csv(tmp_path / "results/individuals/attacks/tiny/person_metrics.tsv", sep="\t")
    assert set(metrics.attack) <= {"lira_online", "lira_offline", "loss_difference", "alt_alleles"}
    assert {"lira_online", "loss_difference"} <= set(metrics.attack)
    assert (metrics.n_members + metrics.n_nonmembers <= 8).all()
    curve = pd.read_csv(tmp_path / "results/individuals/attacks/tiny/windows_curve.tsv", sep="\t")
    assert sorted(set(curve.windows)) == [1, 2]
    page = (tmp_path / "results/report/report.html").read_text()
    assert "Personal genomes: individuals membership of tiny" in page
    assert "Genotype inference by allele-frequency bin" in page
    # Nothing of the window-level audit is built in this mode.
    assert not (tmp_path / "results/membership.tsv").exists() and not (tmp_path / "results/scores").exists()
    rerun = snakemake(tmp_path, "--dry-run", config=config)
    assert "Nothing to be done" in rerun.stdout + rerun.stderr


def test_the_report_asks_for_a_models_folder_only_where_training_writes_dp_json(tmp_path):
    """membership.training.dp: the target's folder (its dp.json) is an input of the report; without dp, it is not."""
    config = tiny_model_config(tmp_path, shards=1)
    planned = {}
    for dp in (False, True):
        if dp:
            config["membership"]["training"]["dp"] = {"epsilon": 1.0, "delta": 1e-5}
        plan = snakemake(tmp_path, "--dry-run", "results/report/report.html", config=config)
        text = plan.stdout + plan.stderr
        assert plan.returncode == 0, text[-3000:]
        (inputs,) = re.findall(r"rule report:\n    input: (.*)\n", text)
        planned[dp] = set(inputs.split(", "))
    assert planned[True] - planned[False] == {"results/models/tiny"}
    assert planned[False] == set(report_layout.report_inputs({"privacy": ["tiny"]}).values())
