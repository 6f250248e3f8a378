"""The HTML report: parses, holds every table and figure, gives a verdict per model, and each section shows the
files of its own model or classifier only."""

import base64
import html
import logging
import re
import runpy
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
from conftest import REPO
from gfm_audit.privacy import plots
from gfm_audit.privacy.metrics import evaluate, threshold_table
from gfm_audit.privacy.report import privacy_section
from gfm_audit.report import layout as report_layout
from gfm_audit.report.page import benchmark_summary, write_page
from gfm_audit.robustness.ga.defence_table import COLUMNS as DEFENCE_COLUMNS
from gfm_audit.robustness.ga.report import attack_table


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.images, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_data(self, data):
        self.text.append(data)


def test_report_holds_every_table_and_figure_and_a_verdict(tmp_path):
    rng = np.random.default_rng(0)
    n = 60
    member = np.r_[np.ones(n // 2), np.zeros(n // 2)].astype(int)
    ids = [f"w{i:03d}" for i in range(n)]
    scores = pd.DataFrame(
        {
            "window_id": ids,
            "member": member,
            "loss": rng.normal(member * 2, 1),
            "neighborhood_snp": rng.normal(member * 0.05, 0.05),
            "neighborhood_snp_snpsites": rng.normal(0, 0.05),
        }
    )
    rows = []
    for w in ids:
        rows.append((w, w, "window", None, float(rng.normal(1.3, 0.05))))
        rows += [(f"{w}_snp_p{p}", w, "snp", p, float(rng.normal(1.3, 0.05))) for p in (0.1, 0.3)]
    target_scores = pd.DataFrame(rows, columns=["sequence_id", "window_id", "kind", "prob", "loss"])
    out = tmp_path / "m"
    out.mkdir()
    figures = []
    for name, fn, arg in (
        ("roc", plots.roc_figure, scores),
        ("histograms", plots.histogram_figure, scores),
        ("neighbor_loss", plots.neighbor_loss_figure, target_scores),
        ("snp_sites", plots.snp_site_figure, scores),
    ):
        fn(arg, out / f"{name}.png")
        figures.append((str(out / f"{name}.png"), name))
    evaluate(scores, n_boot=20, seed=0, delta=1e-5, level=0.95).to_csv(out / "metrics.tsv", sep="\t", index=False)
    threshold_table(scores).to_csv(out / "thresholds.tsv", sep="\t", index=False)
    pd.DataFrame([("rmia", "needs reference models")], columns=["attack", "reason"]).to_csv(
        out / "skipped.tsv", sep="\t", index=False
    )
    windows = pd.DataFrame(
        {
            "window_id": ids,
            "chrom": "z",
            "start": range(0, n * 100, 100),
            "end": range(50, n * 100 + 50, 100),
            "n_snps": 3,
            "snp_fraction": 0.06,
            "gc_fraction": 0.4,
        }
    )
    windows.to_csv(tmp_path / "w.tsv", sep="\t", index=False)
    neighbors = pd.DataFrame(
        {
            "neighbor_id": ["x"],
            "window_id": ["w000"],
            "prob": [0.1],
            "replicate": [0],
            "kind": ["snp"],
            "n_changed": [1],
            "changed_offsets": ["3"],
        }
    )
    neighbors.to_csv(tmp_path / "n.tsv", sep="\t", index=False)
    pd.DataFrame({"window_id": ids, "target_member": member, "ref_0_member": 1 - member}).to_csv(
        tmp_path / "m.tsv", sep="\t", index=False
    )
    config = {"target": "m", "models": {"m": {"path": "x", "kind": "causal"}}, "membership": {"mode": "finetune"}}
    section, leaks = privacy_section(
        config,
        windows_path=str(tmp_path / "w.tsv"),
        neighbors_path=str(tmp_path / "n.tsv"),
        membership_path=str(tmp_path / "m.tsv"),
        models=["m"],
        metrics_paths={"m": str(out / "metrics.tsv")},
        skipped_paths={"m": str(out / "skipped.tsv")},
        threshold_paths={"m": str(out / "thresholds.tsv")},
        figures={"m": figures},
    )
    write_page(config, [section], tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text()
    parser = _Collector()
    parser.feed(page)
    text = "".join(parser.text)
    assert leaks == {"m": True}
    assert len(parser.images) == 4 and all(src.startswith("data:image/png;base64,") for src in parser.images)
    # Data, models, metrics, skipped attacks, threshold table.
    assert parser.tags.count("table") == 5
    assert "m leaks membership" in text and "strongest attack is loss" in text
    assert "needs reference models" in text and "ref_0" in text
    assert "http" not in page.replace("https://json-schema", "")  # nothing fetched when opened offline


# Names inside other names (cnn, cnn2) or inside every path of their section (results/report/report/...,
# results/robustness/ga/ga/...): the report used to find a name's files by looking for "/<name>/" in paths.
NAMES = {"privacy": ["report", "m"], "ga": ["ga", "cnn", "cnn2"], "fimba": ["mlp", "cnn"], "individuals": []}


def test_report_inputs_give_every_name_the_files_of_its_own_templates_at_todays_paths():
    inputs = report_layout.report_inputs(NAMES)
    privacy = report_layout.collect(inputs, "privacy", NAMES["privacy"])
    assert privacy.shared == {
        "windows": "results/windows/windows.tsv",
        "neighbors": "results/neighbors/neighbors.tsv",
        "membership": "results/membership.tsv",
    }
    assert privacy.tables["metrics"] == {
        "report": "results/attacks/report/metrics.tsv",
        "m": "results/attacks/m/metrics.tsv",
    }
    assert privacy.tables["thresholds"]["report"] == "results/attacks/report/neighborhood_thresholds.tsv"
    assert [path for path, _ in privacy.figures["report"]] == [
        f"results/report/report/{figure}.png" for figure in ("roc", "histograms", "neighbor_loss", "snp_sites")
    ]
    ga = report_layout.collect(inputs, "ga", NAMES["ga"])
    assert ga.shared == {
        "attack_table": "results/robustness/attack_table.tsv",
        "defence_table": "results/robustness/defence_table.tsv",
    }
    assert ga.tables["summary"] == {name: f"results/robustness/ga/{name}/summary.tsv" for name in NAMES["ga"]}
    assert ga.tables["adversarial"]["ga"] == "results/robustness/ga/ga/adversarial.tsv"
    assert ga.tables["progress"]["cnn"] == "results/robustness/adv_training/cnn/progress.tsv"
    assert ga.tables["ga_comparison"]["cnn2"] == "results/robustness/ga/cnn2/comparison.tsv"
    assert ga.tables["training_cost"]["ga"] == "results/robustness/adv_training/ga/cost.tsv"
    assert ga.figures["cnn"] == [
        (
            "results/report/robustness/cnn/asr_vs_budget.png",
            "Attack success rate vs edit budget: GA vs random substitutions",
        ),
        (
            "results/report/robustness/cnn/attack_comparison.png",
            "Attack success rate vs edit budget: GA, random, greedy, LM-proposal and PGD under the same constraints",
        ),
        ("results/report/robustness/cnn/edits_histogram.png", "Substitutions per successful adversarial sequence"),
        ("results/robustness/adv_training/cnn/progress.png", "Adversarial-training progress"),
    ]
    fimba = report_layout.collect(inputs, "fimba", NAMES["fimba"])
    assert fimba.shared == {
        "detection": "results/robustness/fimba/detection.tsv",
        "vae": "results/robustness/fimba/vae.tsv",
        "comparison": "results/robustness/fimba/comparison.tsv",
    }
    assert fimba.tables["curve"]["cnn"] == "results/robustness/fimba/cnn/curve.tsv"
    assert [path for path, _ in fimba.figures["cnn"]] == [
        "results/report/robustness/fimba/cnn/curve.png",
        "results/report/robustness/fimba/cnn/spectra.png",
        "results/report/robustness/fimba/cnn/comparison.png",
    ]
    # Every file once, under one key: 7 per model + 3 shared, 9 per classifier + 2 shared, 4 per FIMBA model + 3
    # shared.
    assert len(inputs) == len(set(inputs.values())) == 2 * 7 + 3 + 3 * 9 + 2 + 2 * 4 + 3


def test_no_two_report_files_share_a_kind():
    kinds = [*report_layout.SHARED, *report_layout.TABLES, *report_layout.FIGURES]
    assert len(kinds) == len(set(kinds))


def test_a_section_without_names_asks_for_no_file():
    assert report_layout.report_inputs({"privacy": [], "ga": [], "fimba": []}) == {}
    assert all(paths == [] for paths in report_layout.section_outputs("fimba", []).values())


def test_every_figure_has_a_snakemake_report_caption_that_starts_with_its_html_caption():
    for kind, spec in report_layout.FIGURES.items():
        rst = REPO / "report" / f"{kind}.rst"
        assert rst.read_text().startswith(spec.caption + "\n"), kind
    rules = "".join(path.read_text() for path in REPO.glob("rules/*.smk"))
    for caption in re.findall(r'caption="\.\./(report/[^"]+)"', rules):
        assert (REPO / caption).is_file(), caption
    assert 'report: "report/workflow.rst"' in (REPO / "Snakefile").read_text()
    assert (REPO / "report/workflow.rst").is_file()


def _png(kind: str, name: str) -> bytes:
    """Stand-in figure bytes that say whose figure they are (the report embeds them as they are)."""
    return b"\x89PNG\r\n" + f"{kind} of {name}".encode()


def _write_report_inputs(root: Path) -> dict[str, str]:
    """Every file the report reads for NAMES, marked with its name, under root/prefix (as a module's prefix would)."""
    inputs = {key: str(root / "prefix" / path) for key, path in report_layout.report_inputs(NAMES).items()}

    def write(key: str, content: bytes | pd.DataFrame) -> None:
        path = Path(inputs[key])
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            content.to_csv(path, sep="\t", index=False)

    key = report_layout.input_key
    for kind, spec in report_layout.FIGURES.items():
        for name in NAMES.get(spec.section, []):  # sections without names here (memorisation) get no file
            write(key(kind, name), _png(kind, name))
    for name in NAMES["privacy"]:
        write(
            key("metrics", name),
            pd.DataFrame(
                {
                    "attack": [f"attack_on_{name}"],
                    "auc": [0.9],
                    "auc_low": [0.8],
                    "auc_high": [0.95],
                    "tpr_at_fpr_0.01": [0.5],
                    "eps_lower_bound": [1.0],
                }
            ),
        )
        write(key("skipped", name), pd.DataFrame({"attack": ["rmia"], "reason": [f"skipped_for_{name}"]}))
        write(key("thresholds", name), pd.DataFrame(columns=["attack", "threshold"]))
    write(
        "windows",
        pd.DataFrame(
            {
                "window_id": ["w0", "w1"],
                "chrom": "z",
                "start": [0, 100],
                "end": [50, 150],
                "n_snps": 3,
                "snp_fraction": 0.06,
                "gc_fraction": 0.4,
            }
        ),
    )
    write(
        "neighbors",
        pd.DataFrame(
            {
                "neighbor_id": ["x"],
                "window_id": ["w0"],
                "prob": [0.1],
                "replicate": [0],
                "kind": ["snp"],
                "n_changed": [1],
            }
        ),
    )
    write("membership", pd.DataFrame({"window_id": ["w0", "w1"], "target_member": [1, 0]}))
    for n_attacked, name in enumerate(NAMES["ga"], start=1):
        write(
            key("summary", name),
            pd.DataFrame({"attack": ["ga", "random"], "n_attacked": 11 * n_attacked, "asr": [0.5, 0.1]}),
        )
        example = {
            "seq_id": f"seq_of_{name}",
            "label": 1,
            "original": "ACGT",
            "adversarial": "ACGA",
            "p_true_before": 0.9,
            "p_true_after": 0.2,
            "edits": 1,
            "gc_before": 0.5,
            "gc_after": 0.25,
            "n_transitions": 0,
            "success": True,
        }
        write(key("adversarial", name), pd.DataFrame([example]))
        write(key("progress", name), pd.DataFrame({"iteration": [0], "note": [f"progress_of_{name}"]}))
        write(
            key("ga_comparison", name),
            pd.DataFrame(
                {
                    "attack": ["ga", "greedy"],
                    "budget": 5,
                    "asr": [0.5, 0.6],
                    "mean_edits": 2.0,
                    "mean_queries": 10.0,
                    "n_attacked": 11 * n_attacked,
                }
            ),
        )
        write(
            key("training_cost", name),
            pd.DataFrame({"iteration": [0], "robust_accuracy": [0.5], "note": [f"cost_of_{name}"]}),
        )
    write("attack_table", attack_table({n: inputs[key("ga_comparison", n)] for n in NAMES["ga"]}))
    write("defence_table", pd.DataFrame(columns=DEFENCE_COLUMNS))
    for clean, name in zip((0.811, 0.722), NAMES["fimba"], strict=True):
        write(
            key("curve", name),
            pd.DataFrame(
                {
                    "model": name,
                    "variant": ["none", "fp_fn", "fp_fn"],
                    "method": ["clean", "fimba", "random_features"],
                    "m": [0, 5, 5],
                    "accuracy": [clean, 0.5, 0.7],
                    "flip_rate": [0.0, 0.3, 0.1],
                    "status": "ok",
                }
            ),
        )
    write("detection", pd.DataFrame({"model": ["mlp"], "subset": ["all"], "method": ["fimba"], "ssim": [0.5]}))
    write("vae", pd.DataFrame({"model": ["mlp"], "ssim": [0.1]}))
    write(
        "comparison",
        pd.DataFrame(
            {
                "model": ["mlp", "mlp", "mlp", "cnn", "cnn", "cnn"],
                "attack": ["clean", "fimba", "zoo", "clean", "fimba", "fgsm"],
                "m": [0, 5, 5, 0, 5, 5],
                "budget": [0.0, 1.5, 1.5, 0.0, 2.5, 2.5],
                "accuracy": [0.9, 0.6, 0.8, 0.85, 0.7, 0.1],
            }
        ),
    )
    return inputs


def _run_report_script(tmp_path: Path, inputs: dict[str, str], config: dict) -> str:
    """workflow_scripts/scripts/report.py, run as Snakemake runs it (a `snakemake` object in its globals)."""
    from snakemake.iocontainers import InputFiles, Log, OutputFiles, Params, ResourceList, Snakemake, Wildcards

    params = Params(
        fromdict={
            "config": config,
            "models": NAMES["privacy"],
            "classifiers": NAMES["ga"],
            "fimba_models": NAMES["fimba"],
            "individuals": NAMES["individuals"],
        }
    )
    job = Snakemake(
        InputFiles(fromdict=inputs),
        OutputFiles([str(tmp_path / "report.html")]),
        params,
        Wildcards(),
        1,
        ResourceList(),
        Log([str(tmp_path / "report.log")]),
        config,
        "report",
        None,
    )
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        runpy.run_path(str(REPO / "workflow_scripts/scripts/report.py"), init_globals={"snakemake": job})
    finally:
        # The script points the root logger at its log file; give pytest its handlers back.
        for handler in set(root.handlers) - set(handlers):
            handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)
    return (tmp_path / "report.html").read_text()


def _images(fragment: str) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([^"]+)"', fragment)]


def test_each_model_and_classifier_section_shows_its_own_tables_and_figures_only(tmp_path):
    config = {
        "target": "report",
        "models": {"report": {"path": "x", "kind": "causal"}, "m": {"path": "y", "kind": "causal"}},
        "membership": {"mode": "finetune"},
    }
    page = _run_report_script(tmp_path, _write_report_inputs(tmp_path), config)
    # Each model's and each classifier's part runs up to the next section or classifier heading.
    parts = re.split(r"<h2>|<h3>Classifier ", page)

    def part(start: str) -> str:
        (found,) = [p for p in parts if p.startswith(start)]
        return found

    for name in NAMES["privacy"]:
        own = part(f"Attacks on {name}</h2>")
        assert _images(own) == [_png(kind, name) for kind in ("roc", "histograms", "neighbor_loss", "snp_sites")]
        others = [n for n in NAMES["privacy"] if n != name]
        assert f"attack_on_{name}" in own and f"skipped_for_{name}" in own
        assert not any(f"attack_on_{n}" in own or f"skipped_for_{n}" in own for n in others)
    for n_attacked, name in enumerate(NAMES["ga"], start=1):
        own = part(f"{name}</h3>")
        assert _images(own) == [
            _png(kind, name) for kind in ("asr_vs_budget", "attack_comparison", "edits_histogram", "training_progress")
        ]
        assert re.findall(r"cost_of_\w+", own) == [f"cost_of_{name}"]
        assert f"over {11 * n_attacked} correctly classified" in own
        assert re.findall(r"seq_of_\w+", own) == [f"seq_of_{name}"]
        assert re.findall(r"progress_of_\w+", own) == [f"progress_of_{name}"]
    for clean, name in zip((0.811, 0.722), NAMES["fimba"], strict=True):
        assert f"<td>{name}</td><td>fp_fn</td><td>{clean:.3f}</td>" in page
        for kind in ("accuracy_vs_m", "spectra", "fimba_comparison"):
            caption = html.escape(report_layout.FIGURES[kind].caption)
            data = base64.b64encode(_png(kind, name)).decode()
            assert f'<h3>{name}: {caption}</h3><figure><img alt="{caption}" src="data:image/png;base64,{data}">' in page
    assert len(_images(page)) == 2 * 4 + 3 * 4 + 2 * 3
    # The GenoArmory-style table: one row per classifier, ASR per attack at the full budget; GenoArmory's published
    # BERT-Attack figure beside our LM-proposal attack, which did not run here (no column: empty cells).
    assert "<td>cnn2</td><td>5</td><td>33</td><td>0.500</td><td>0.600</td>" in page
    assert "<td>DNABERT-2-117M</td><td>prom_300_all</td><td>BERT-Attack</td><td>0.837</td><td>lm_proposal</td>" in page
    assert "MAGICS-LAB/GenoArmory, metadata/&lt;attack&gt;/&lt;model&gt;.json at commit 997be25" in page
    # The comparison's wide table: one row per (model, m, budget), a column per attack, the clean accuracy beside.
    assert "<td>cnn</td><td>5</td><td>2.500</td><td>0.850</td>" in page


def test_run_section_sums_each_rules_benchmark_records(tmp_path):
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    records = {"score_shard/m/shard-0.tsv": (12.0, 300.5), "score_shard/m/shard-1.tsv": (10.0, 310.0)}
    records |= {"select_windows.tsv": (2.5, 80.0), "report.tsv": (1.0, "-")}
    for rel, (s, rss) in records.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(header + f"{s}\t0:00:{int(s):02d}\t{rss}\t1\t1\t1\t0\t0\t0\t{s}\n")
    summary = benchmark_summary(tmp_path).set_index("rule")
    assert summary.loc["score_shard", "jobs"] == 2 and summary.loc["score_shard", "total time (s)"] == 22.0
    assert summary.loc["score_shard", "longest job (s)"] == 12.0 and summary.loc["score_shard", "max RSS (MiB)"] == 310
    assert summary.loc["select_windows", "max RSS (MiB)"] == 80 and np.isnan(summary.loc["report", "max RSS (MiB)"])


def test_token_profile_is_the_mean_log_p_per_position_of_members_and_non_members(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [("a", "window", [-1.0, -2.0, -3.0]), ("a", "snp", [-9.0]), ("b", "window", [-3.0, -4.0])]
    rows2 = [("c", "window", [-2.0, -2.0, -1.0])]
    for name, part in (("0", rows), ("1", rows2)):
        table = pa.table(
            {
                "window_id": [r[0] for r in part],
                "kind": [r[1] for r in part],
                "token_logprob": pa.array([r[2] for r in part], pa.list_(pa.float16())),
            }
        )
        pq.write_table(table, tmp_path / f"{name}.parquet")
    membership = pd.DataFrame({"window_id": ["a", "b", "c"], "target_member": [1, 0, 1]})
    profile = plots.token_profile([tmp_path / "0.parquet", tmp_path / "1.parquet"], membership)
    np.testing.assert_allclose(profile.members, [-1.5, -2.0, -2.0])  # a and c; the snp neighbor is left out
    np.testing.assert_allclose(profile.nonmembers, [-3.0, -4.0, np.nan])
    plots.token_profile_figure(profile, tmp_path / "token_profile.png")
    assert (tmp_path / "token_profile.png").stat().st_size > 0


def test_neighbor_loss_reader_keeps_a_fixed_bottom_k_sample_of_windows_across_shards(tmp_path):
    import zlib

    import pyarrow as pa
    import pyarrow.parquet as pq

    ids = [f"w{i}" for i in range(12)]
    paths = []
    for shard in range(3):
        rows = []
        for w in ids[shard::3]:
            rows.append({"window_id": w, "kind": "window", "prob": None, "loss": 1.0})
            rows.append({"window_id": w, "kind": "snp", "prob": 0.1, "loss": 1.1})
            rows.append({"window_id": w, "kind": "control", "prob": 0.1, "loss": 1.2})
        path = tmp_path / f"shard-{shard}.parquet"
        pq.write_table(pa.Table.from_pylist(rows), path)
        paths.append(path)
    expected = sorted(ids, key=lambda w: zlib.crc32(w.encode()))[:5]
    sample = plots.read_snp_neighbor_losses(paths, max_windows=5)
    assert sorted(sample.window_id.unique()) == sorted(expected)
    assert len(sample) == 10 and set(sample.kind) == {"window", "snp"}
    everything = plots.read_snp_neighbor_losses(paths)
    assert sorted(everything.window_id.unique()) == sorted(ids) and len(everything) == 24


# The report's sections of a run without DP training, as they were before the DP audit section existed.
SECTIONS = [
    "Verdict",
    "Data",
    "Models",
    "Attacks on report",
    "Attacks on m",
    "Robustness: genetic-algorithm attack on sequence classifiers",
    "Robustness: FIMBA on gene-expression classifiers",
    "Run",
    "Configuration of this run",
]


def test_a_run_without_dp_has_the_sections_of_before_and_a_dp_trained_model_adds_its_dp_audit(tmp_path):
    config = {
        "target": "report",
        "models": {"report": {"path": "x", "kind": "causal"}, "m": {"path": "y", "kind": "causal"}},
        "membership": {"mode": "finetune", "training": {"dp": {"epsilon": 1.0, "delta": 1e-5}}},
        "attacks": {"metrics": {"delta": 1e-5, "confidence": 0.95}},
    }
    inputs = _write_report_inputs(tmp_path / "plain")
    plain = _run_report_script(tmp_path / "plain", inputs, config)
    assert re.findall(r"<h2>(.*?)</h2>", plain) == SECTIONS and "DP audit" not in plain
    # The rule asks for the target's folder (its dp.json) when it was trained with DP: a section after the attacks.
    folder = tmp_path / "prefix/results/models/report"
    folder.mkdir(parents=True)
    (folder / "dp.json").write_text('{"epsilon": 1.0, "delta": 1e-05, "accountant": "rdp"}')
    inputs |= {
        key: str(tmp_path / "prefix" / path)
        for key, path in report_layout.report_inputs({"dp_audit": ["report"]}).items()
    }
    page = _run_report_script(tmp_path, inputs, config)
    assert re.findall(r"<h2>(.*?)</h2>", page) == [*SECTIONS[:5], "DP audit of report", *SECTIONS[5:]]
    # metrics.tsv of every model here holds one attack, its eps_lower_bound 1.0: at the claim, not above.
    assert (
        "Claimed (eps = 1.00, delta = 1e-05); empirical lower bounds at 95% confidence: Clopper-Pearson bound of "
        "attack_on_report 1.00. Consistent with the claimed guarantee." in page
    )
