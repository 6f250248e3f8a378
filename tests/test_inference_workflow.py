"""The attacks left out of the default list (dc_pdd, recall, gradnorm, ramia) and dataset inference, switched on in a
real Snakemake run: their rows, tables and report section, and the default attacks' tables unchanged by them."""

import copy
import html
import io
import re
import zipfile

import pandas as pd
import pytest
import yaml
from conftest import REPO
from gfm_audit.char_lm import save_char_causal_lm
from gfm_audit.privacy.dataset_inference import CURVE_COLUMNS, RESULT_COLUMNS
from gfm_audit.privacy.plots import headline_attacks
from gfm_audit.report import layout as report_layout
from test_snakemake_report import page_data
from test_workflow import snakemake, tiny_model_config

pytestmark = pytest.mark.workflow

SCHEMA = yaml.safe_load((REPO / "config/config.schema.yaml").read_text())
DEFAULT_ATTACKS = SCHEMA["properties"]["attacks"]["properties"]["names"]["default"]
NEW_ATTACKS = ("dc_pdd", "recall", "gradnorm", "ramia")


def small_config(workdir):
    """The tiny model run of tests/test_workflow.py on 48 windows of 64 bp: enough non-members for dataset
    inference's validation set once RMIA's population and recall's prefix are taken out of it. The model takes
    256 positions, so that recall's prefix window and a window fit together."""
    config = tiny_model_config(workdir, shards=2)
    arch = save_char_causal_lm(workdir / "arch256", hidden=32, layers=1, heads=2, max_positions=256)
    config["models"]["tiny"]["path"] = str(arch)
    config["windows"].update(n=48, length=64)
    config["attacks"] = {"metrics": {"bootstrap": 50}}
    return config


def with_new_attacks(config):
    changed = copy.deepcopy(config)
    # DC-PDD's clip bound about 1 for a character model (the schema says why); fewer splits and curve draws than
    # the defaults keep the run short.
    changed["attacks"] |= {"names": [*DEFAULT_ATTACKS, *NEW_ATTACKS], "dc_pdd": {"a": 1.0}}
    changed["dataset_inference"] = {"enabled": True, "splits": 10, "curve_repeats": 5}
    return changed


def attack_rows(text: str) -> dict[str, str]:
    """metrics.tsv's lines by their attack, as written."""
    return {line.split("\t", 1)[0]: line for line in text.splitlines()[1:]}


def documented_result_columns() -> set[str]:
    """The column names that docs/outputs.md gives for result.tsv (its paragraph, each between backticks)."""
    text = (REPO / "docs/outputs.md").read_text()
    paragraph = text.split("- `result.tsv`:", 1)[1].split("\n- ", 1)[0]
    return {name.strip() for group in re.findall(r"`([^`]+)`", paragraph) for name in group.split(",")}


def test_new_attacks_and_dataset_inference_run_end_to_end_and_leave_the_default_attacks_unchanged(tmp_path):
    config = small_config(tmp_path)
    plain = snakemake(tmp_path, config=config, timeout=1200)
    assert plain.returncode == 0, plain.stderr[-3000:]
    attacks = tmp_path / "results/attacks/tiny"
    before = {name: (attacks / name).read_text() for name in ("metrics.tsv", "scores.tsv")}
    plain_page = (tmp_path / "results/report/report.html").read_text()

    changed = with_new_attacks(config)
    run = snakemake(tmp_path, config=changed, timeout=1200)
    assert run.returncode == 0, run.stderr[-3000:]
    # The attacks change what is scored, not what is trained.
    assert "rule score_shard" in run.stderr and "rule train_model" not in run.stderr

    # The default attacks' rows of metrics.tsv, byte for byte and first, in their order; each new attack adds rows.
    old, new = attack_rows(before["metrics.tsv"]), attack_rows((attacks / "metrics.tsv").read_text())
    assert (attacks / "metrics.tsv").read_text().splitlines()[0] == before["metrics.tsv"].splitlines()[0]
    assert list(new)[: len(old)] == list(old) and {a: new[a] for a in old} == old
    added = [a for a in new if a not in old]
    assert all(any(a.startswith(name) for a in added) for name in NEW_ATTACKS), added
    # So are their scores: every column of before, as written.
    scores_before = pd.read_csv(io.StringIO(before["scores.tsv"]), sep="\t", dtype=str)
    scores = pd.read_csv(attacks / "scores.tsv", sep="\t", dtype=str)
    pd.testing.assert_frame_equal(scores[scores_before.columns], scores_before)
    # Each new column is drawn in the ROC and histogram figures, as the default attacks are.
    assert set(added) <= set(headline_attacks(scores.columns))

    # recall leaves its prefix window (a non-member) out; ramia scores every window (the window is in its range).
    metrics = pd.read_csv(attacks / "metrics.tsv", sep="\t").set_index("attack")
    recall = metrics.loc["recall"]
    prefix = changed["attacks"].get("recall", {}).get("prefix_windows", 1)
    assert recall.n_members == metrics.loc["loss"].n_members
    assert recall.n_nonmembers == metrics.loc["loss"].n_nonmembers - prefix
    for ramia in (a for a in added if a.startswith("ramia")):
        assert metrics.loc[ramia, ["n_members", "n_nonmembers"]].tolist() == [
            metrics.loc["loss"].n_members,
            metrics.loc["loss"].n_nonmembers,
        ]

    # Dataset inference: the documented columns, the suspect and control rows, every attack's score a feature.
    folder = tmp_path / "results/dataset_inference/tiny"
    result = pd.read_csv(folder / "result.tsv", sep="\t")
    assert list(result.columns) == ["model", *RESULT_COLUMNS]
    assert set(result.columns) <= documented_result_columns()
    assert result.test.tolist() == ["suspect", "control"] and (result.model == "tiny").all()
    assert set(added) <= set(result.features[0].split(","))
    assert result.p_value.between(0, 1).all()
    # DUCI gives a share in [0, 1], or none (NaN) where, for a half of the suspect set, the held-out calibration
    # says the attack does not separate members from non-members (TPR <= FPR at the thresholds it chose): a tiny
    # model trained briefly may not. Its TPR and FPR are still reported.
    assert (result.duci_fraction.between(0, 1) | result.duci_fraction.isna()).all()
    assert result.duci_tpr.between(0, 1).all() and result.duci_fpr.between(0, 1).all()
    curve = pd.read_csv(folder / "p_curve.tsv", sep="\t")
    assert list(curve.columns) == list(CURVE_COLUMNS) and len(curve) >= 2

    # The report: the section after the attacks with its verdict, table and figure; the new rows in the metrics
    # table with the note on their window counts; every section of before still there, in its order.
    page = (tmp_path / "results/report/report.html").read_text()
    sections = re.findall(r"<h2>(.*?)</h2>", page)
    before_sections = re.findall(r"<h2>(.*?)</h2>", plain_page)
    assert sections == [*before_sections[:4], "Dataset inference on tiny", *before_sections[4:]]
    suspect = result.iloc[0]
    verdict = "The suspect set was used in training" if suspect.rejected else "No evidence that the suspect set"
    assert f"<b>{verdict}" in page and f"p = {suspect.p_value:.3g}" in page
    caption = report_layout.FIGURES["dataset_inference_curve"].caption
    assert page.count(f'<img alt="{html.escape(caption)}"') == 1
    assert all(f"<td>{a}</td>" in page for a in added)
    assert "recall leaves out the non-member windows of its prefix" in page
    assert "recall leaves out" not in plain_page

    # Snakemake's report files the result table and the figure under their own category, captions from report/.
    bundle = tmp_path / "report.zip"
    zipped = snakemake(tmp_path, "--report", str(bundle), config=changed)
    assert zipped.returncode == 0, zipped.stderr[-3000:]
    with zipfile.ZipFile(bundle) as archive:
        index = archive.read("report/report.html").decode()
    categories = page_data(index, "categories", "categories")
    assert {k: set(v) for k, v in categories["Dataset inference"].items()} == {
        "tiny": {"results/dataset_inference/tiny/result.tsv", "results/report/tiny/dataset_inference_curve.png"}
    }
    results = page_data(index, "results", "results")
    assert "system-message" not in results["results/dataset_inference/tiny/result.tsv"]["caption"]
