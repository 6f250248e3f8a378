"""The dataset inference demo's config (config/demo_inference.yaml) and the report's dataset inference section: its
verdict, its table, its figure, and where it sits in the page."""

import re

import numpy as np
import pandas as pd
import yaml
from conftest import REPO
from gfm_audit.config import validate_config
from gfm_audit.outputs import write_tsv
from gfm_audit.privacy.dataset_inference import RESULT_COLUMNS, score_table_inference
from gfm_audit.privacy.dataset_inference_report import SHOWN, dataset_inference_section, p_curve_figure
from gfm_audit.report import layout as report_layout
from test_dataset_inference import score_table
from test_report import SECTIONS, _run_report_script, _write_report_inputs

NEW_ATTACKS = {"dc_pdd", "recall", "gradnorm", "ramia"}


def _yaml(name: str) -> dict:
    return yaml.safe_load((REPO / "config" / name).read_text())


def test_the_inference_demo_is_the_demos_privacy_audit_with_the_new_attacks_and_dataset_inference():
    """Everything that decides the windows, the training and the scoring of the demo's attacks is demo.yaml's, so
    that their tables are the demo's; what differs is the attacks added and dataset inference switched on."""
    demo, inference = _yaml("demo.yaml"), _yaml("demo_inference.yaml")
    demo.pop("robustness")
    added = {key: inference.pop(key) for key in ("attacks", "dataset_inference")}
    assert inference == demo
    # The demo runs the schema's default attacks; the inference demo runs those and the four left out of them.
    schema = _yaml("config.schema.yaml")
    default = schema["properties"]["attacks"]["properties"]["names"]["default"]
    assert "attacks" not in demo and not NEW_ATTACKS & set(default)
    assert added["attacks"]["names"] == [*default, *sorted(NEW_ATTACKS, key=added["attacks"]["names"].index)]
    assert added["dataset_inference"]["enabled"] is True
    # The schema's advice for a character-level model: DC-PDD's clip bound about 1, not the paper's 0.01.
    assert 0.5 <= added["attacks"]["dc_pdd"]["a"] <= 2
    validate_config(_yaml("demo_inference.yaml"))


def test_the_make_target_runs_the_inference_config_in_its_own_folder():
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\ndemo-inference:", 1)[1].split("\n\n", 1)[0]
    assert "GFM_AUDIT_CONFIG=$(CURDIR)/config/demo_inference.yaml" in recipe and "--directory demo-inference" in recipe
    assert "demo-inference/" in (REPO / ".gitignore").read_text().splitlines()


def _result(tmp_path, shift: float, seed: int):
    """result.tsv and p_curve.tsv of a scores.tsv-like table whose members' scores are moved by ``shift``, written
    as the rule writes them; the rows as read back."""
    table = score_table(np.random.default_rng(seed), n_members=60, n_nonmembers=60, shift=shift)
    member = table.member.to_numpy()
    result, curve = score_table_inference(
        table, member == 1, member == 0, names=("members", "non_members"), splits=10, curve_repeats=5
    )
    result.insert(0, "model", "report")
    write_tsv(result, tmp_path / "result.tsv")
    write_tsv(curve, tmp_path / "p_curve.tsv")
    return pd.read_csv(tmp_path / "result.tsv", sep="\t")


def test_the_section_says_the_suspect_set_was_used_when_its_test_rejects(tmp_path):
    result = _result(tmp_path, shift=1.5, seed=3)
    assert list(result.columns) == ["model", *RESULT_COLUMNS]
    suspect, control = result.iloc[0], result.iloc[1]
    assert suspect.rejected and not control.rejected
    p_curve_figure(pd.read_csv(tmp_path / "p_curve.tsv", sep="\t"), tmp_path / "curve.png")
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"
    page = dataset_inference_section(
        "report", result_path=tmp_path / "result.tsv", figure=(str(tmp_path / "curve.png"), "the curve")
    )
    assert page.startswith("<h2>Dataset inference on report</h2>\n<div class='verdict leaks'>")
    assert (
        f"<b>The suspect set was used in training</b>: p = {suspect.p_value:.3g} &lt; α = {suspect.alpha:g} "
        f"(members against non_members, {suspect.n_suspect} and {suspect.n_validation} windows); DUCI estimates "
        f"that {suspect.duci_fraction:.2f} ± {suspect.duci_standard_error:.2f} of it was trained on." in page
    )
    assert f"gives p = {control.p_value:.3g}: not rejected, as it should not be." in page
    # The table: both rows, the shown columns, the p-values in significant digits (far below 0.001 here).
    header = re.findall(r"<th>(.*?)</th>", page)
    assert header == list(SHOWN) and suspect.p_value < 1e-3
    assert f"<td>{suspect.p_value:.3g}</td>" in page and f"<td>{control.p_value:.3g}</td>" in page
    assert f"{suspect.duci_fraction:.3f} ± {suspect.duci_standard_error:.3f}" in page
    assert page.count("<img") == 1 and '<img alt="the curve"' in page


def test_the_section_finds_no_evidence_when_the_sets_do_not_differ(tmp_path):
    result = _result(tmp_path, shift=0.0, seed=5)
    suspect = result.iloc[0]
    assert not suspect.rejected
    p_curve_figure(pd.read_csv(tmp_path / "p_curve.tsv", sep="\t"), tmp_path / "curve.png")
    page = dataset_inference_section(
        "report", result_path=tmp_path / "result.tsv", figure=(str(tmp_path / "curve.png"), "the curve")
    )
    assert "<div class='verdict clean'><b>No evidence that the suspect set was used in training</b>" in page
    assert f"p = {suspect.p_value:.3g} ≥ α = {suspect.alpha:g}" in page


def test_the_report_adds_the_section_after_the_attacks_only_for_the_models_given(tmp_path):
    config = {
        "target": "report",
        "models": {"report": {"path": "x", "kind": "causal"}, "m": {"path": "y", "kind": "causal"}},
        "membership": {"mode": "finetune"},
    }
    inputs = _write_report_inputs(tmp_path / "plain")
    plain = _run_report_script(tmp_path / "plain", inputs, config)
    assert re.findall(r"<h2>(.*?)</h2>", plain) == SECTIONS and "Dataset inference" not in plain
    # The rule's files of one model, at the layout's paths under the run's prefix.
    files = report_layout.report_inputs({"dataset_inference": ["report"]})
    assert set(files) == {"dataset_inference__report", "dataset_inference_curve__report"}
    inputs |= {key: str(tmp_path / "prefix" / path) for key, path in files.items()}
    folder = tmp_path / "prefix/results/dataset_inference/report"
    folder.mkdir(parents=True)
    _result(folder, shift=1.5, seed=3)
    figure = tmp_path / "prefix" / files["dataset_inference_curve__report"]
    figure.parent.mkdir(parents=True)
    p_curve_figure(pd.read_csv(folder / "p_curve.tsv", sep="\t"), figure)
    page = _run_report_script(tmp_path, inputs, config)
    assert re.findall(r"<h2>(.*?)</h2>", page) == [*SECTIONS[:5], "Dataset inference on report", *SECTIONS[5:]]
    caption = report_layout.FIGURES["dataset_inference_curve"].caption
    assert page.count(f"<h3>{caption}</h3>") == 1


def test_the_metrics_explain_the_window_counts_only_where_recall_or_ramia_ran(tmp_path):
    config = {
        "target": "report",
        "models": {"report": {"path": "x", "kind": "causal"}, "m": {"path": "y", "kind": "causal"}},
    }
    config["membership"] = {"mode": "finetune"}
    inputs = _write_report_inputs(tmp_path)
    note = "recall leaves out the non-member windows of its prefix"
    assert note not in _run_report_script(tmp_path, inputs, config)
    # The model "report" gets a recall row with one non-member fewer than its loss row (the prefix window).
    path = inputs[report_layout.input_key("metrics", "report")]
    metrics = pd.read_csv(path, sep="\t")
    rows = [
        {"attack": "loss", "n_members": 8, "n_nonmembers": 8},
        {"attack": "recall", "n_members": 8, "n_nonmembers": 7},
    ]
    pd.DataFrame([{**metrics.iloc[0].to_dict(), **row} for row in rows]).to_csv(path, sep="\t", index=False)
    page = _run_report_script(tmp_path, inputs, config)
    attacks = {m.group(1): m.group(2) for m in re.finditer(r"<h2>Attacks on (\w+)</h2>(.*?)(?=<h2>)", page, re.S)}
    assert note in attacks["report"] and note not in attacks["m"]


def test_the_section_says_duci_gives_no_share_where_the_attack_does_not_separate(tmp_path):
    result = _result(tmp_path, shift=0.0, seed=5)
    result.loc[0, ["duci_fraction", "duci_standard_error"]] = np.nan
    result.to_csv(tmp_path / "result.tsv", sep="\t", index=False)
    p_curve_figure(pd.read_csv(tmp_path / "p_curve.tsv", sep="\t"), tmp_path / "curve.png")
    page = dataset_inference_section(
        "report", result_path=tmp_path / "result.tsv", figure=(str(tmp_path / "curve.png"), "the curve")
    )
    assert "DUCI gives no share: loss does not tell held-out members from non-members apart." in page
    assert "DUCI estimates" not in page


def _section_inputs(tmp_path, result_path):
    """The report rule's inputs of one dataset inference section (model ``report``): its result.tsv and figure."""
    p_curve_figure(pd.read_csv(tmp_path / "p_curve.tsv", sep="\t"), tmp_path / "curve.png")
    return {
        report_layout.input_key("dataset_inference", "report"): str(result_path),
        report_layout.input_key("dataset_inference_curve", "report"): str(tmp_path / "curve.png"),
    }


def test_the_verdict_counts_windows_in_the_window_modes_and_people_in_mode_individuals(tmp_path):
    from gfm_audit.report.build import _dataset_inference

    result = _result(tmp_path, shift=1.5, seed=3)
    suspect = result.iloc[0]
    inputs = _section_inputs(tmp_path, tmp_path / "result.tsv")
    sizes = f"{suspect.n_suspect} and {suspect.n_validation}"
    for mode, unit, other in (("finetune", "windows", "people"), ("individuals", "people", "windows")):
        (page,) = _dataset_inference(inputs, {"membership": {"mode": mode}})
        assert f"(members against non_members, {sizes} {unit});" in page, mode
        assert f"{sizes} {other}" not in page, mode
        assert f"largest on {unit} of known membership" in page, mode


def test_the_p_curve_figure_counts_suspect_people_in_mode_individuals(tmp_path, monkeypatch):
    import gfm_audit.privacy.dataset_inference_report as section

    _result(tmp_path, shift=1.5, seed=3)
    labels = []
    # The figure's axes as drawn, read where the module hands them over to be written.
    monkeypatch.setattr(section, "save_figure", lambda fig, path: labels.append([a.get_xlabel() for a in fig.axes]))
    curve = pd.read_csv(tmp_path / "p_curve.tsv", sep="\t")
    section.p_curve_figure(curve, tmp_path / "w.png")
    section.p_curve_figure(curve, tmp_path / "p.png", unit="people")
    assert labels == [["suspect windows"] * 2, ["suspect people"] * 2]
