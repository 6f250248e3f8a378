"""A tiny config/demo_defences.yaml through Snakemake: the four defences (Madry with its own settings, iterative,
FreeLB, ADFAR) on the CNN, the certificates, the defence rows and the report that shows them."""

from __future__ import annotations

import re

import pandas as pd
import pytest
import yaml
from conftest import DEMO, REPO
from test_workflow import snakemake

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def defences_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("defences")
    config = yaml.safe_load((REPO / "config/demo_defences.yaml").read_text())
    gue = DEMO / "gue_prom_300_all"
    train, test = workdir / "train.csv", workdir / "test.csv"
    train.write_text("".join((gue / "dev.csv").read_text().splitlines(keepends=True)[:401]))
    test.write_text("".join((gue / "test.csv").read_text().splitlines(keepends=True)[:81]))
    config["reference"] = {k: str(REPO / v) for k, v in config["reference"].items()}
    config["windows"]["n"] = 4
    ga = config["robustness"]["ga"]
    ga["train"], ga["test"] = str(train), str(test)
    schemes = ga["classifiers"]["demo_cnn"]["adversarial_schemes"]
    ga["classifiers"] = {
        "demo_cnn": {"kind": "cnn", "channels": 16, "training": {"epochs": 3}, "adversarial_schemes": schemes}
    }
    # Madry's own epochs (2) differ from the block's (1), so its n_adversarial shows its settings were the ones run.
    ga["adversarial_training"]["schemes"]["madry"] |= {"epochs": 2}
    ga["attack"] |= {"n_sequences": 20, "population": 10, "generations": 6, "patience": 3}
    ga["comparison"] |= {"n_sequences": 20, "attacks": ["greedy"]}
    ga["adversarial_training"] |= {"train_sample": 20, "holdout": 20}
    ga["adversarial_training"]["freelb"] = {"steps": 2}
    ga["certify"] |= {"n_select": 10, "n_samples": 40}
    result = snakemake(workdir, config=config, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir


def test_every_defence_gets_a_row_measured_on_the_same_held_out_sample(defences_run):
    table = pd.read_csv(defences_run / "results/robustness/defence_table.tsv", sep="\t")
    assert table.defence.tolist() == ["madry", "iterative", "freelb", "adfar"]
    assert (table.classifier == "demo_cnn").all() and (table.iterations == 1).all()
    # The same classifier on the same held-out sample before any defence: the before columns agree run to run.
    assert table.asr_before.nunique() == 1 and table.n_attacked_before.nunique() == 1
    assert set(table.verdict) <= {"helped", "hurt", "unclear"}
    assert ((table.asr_after_low <= table.asr_after) & (table.asr_after <= table.asr_after_high)).all()
    # Robust accuracy (standard criterion) at every budget 1..5 over the whole held-out sample of 20: the same
    # before every defence, never rising with the budget, each inside its interval, the budget-5 one repeated.
    for when in ("before", "after"):
        by_budget = table[[f"robust_k{j}_{when}" for j in range(1, 6)]].to_numpy()
        assert (by_budget[:, 1:] <= by_budget[:, :-1]).all()
        assert (by_budget * 20 == (by_budget * 20).round()).all()
        for j in range(1, 6):
            value, low, high = (table[f"robust_k{j}_{when}{s}"] for s in ("", "_low", "_high"))
            assert ((low <= value) & (value <= high)).all()
        assert table[f"robust_{when}"].tolist() == table[f"robust_k5_{when}"].tolist()
    assert table.robust_k1_before.nunique() == 1 and table.robust_before.nunique() == 1
    # The HotFlip inner attack makes one adversarial version of each training sequence per epoch.
    madry = pd.read_csv(defences_run / "results/robustness/adv_training/demo_cnn/progress.tsv", sep="\t")
    assert madry.n_adversarial.tolist() == [0, 2 * madry.train_size[0]] and madry.train_size[0] > 300
    for scheme in ("freelb", "adfar"):
        cost = pd.read_csv(defences_run / f"results/robustness/defences/demo_cnn/{scheme}/cost.tsv", sep="\t")
        assert cost.scheme.tolist() == [scheme, scheme]
    assert (defences_run / "results/robustness/defences/demo_cnn/adfar/model/adfar.json").is_file()


def test_the_report_states_the_verdict_and_shows_certificates_beside_the_ga(defences_run):
    page = (defences_run / "results/report/report.html").read_text()
    table = pd.read_csv(defences_run / "results/robustness/defence_table.tsv", sep="\t")
    helped = int((table.verdict == "helped").sum())
    assert "raised robust accuracy at 5 edits" in page
    assert f"beyond the overlap of the 95% Wilson intervals in {helped} of 4 runs" in page
    assert "Robust accuracy by edit budget" in page and "<th>budget 5</th>" in page
    assert "Certified vs empirical robustness" in page
    certified = pd.read_csv(defences_run / "results/robustness/ga/demo_cnn/certified_accuracy.tsv", sep="\t")
    assert set(range(1, 6)) <= set(certified.budget)
    shown = page.split("Certified vs empirical robustness", 1)[1].split("</table>", 1)[0]
    assert [int(b) for b in re.findall(r"<tr><td>(\d+)</td>", shown)] == [1, 2, 3, 4, 5]
