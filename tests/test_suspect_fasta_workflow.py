"""A FASTA suspect set in a real Snakemake run: its windows cut, scored by the target and both references, the
attacks run over them and the audit's windows, the test's rows and the report's verdict; and a FASTA holding
validation windows stopped in one line before any scoring."""

import pandas as pd
import pytest
from conftest import demo_sequence
from gfm_audit.fasta import read_fasta
from test_inference_workflow import small_config
from test_workflow import snakemake

pytestmark = pytest.mark.workflow

SUSPECT = "results/dataset_inference/suspect"


def _config(tmp_path, fasta):
    config = small_config(tmp_path)
    config["dataset_inference"] = {"enabled": True, "suspect": str(fasta), "splits": 10, "curve_repeats": 5}
    return config


def test_a_fasta_suspect_set_is_cut_scored_and_tested_and_one_holding_validation_windows_is_stopped(tmp_path):
    # Two records from the end of the demo genome: 10 windows of 64 bp and 30 bases left over, and one record
    # shorter than a window.
    fasta = tmp_path / "cohort.fa"
    fasta.write_text(f">long\n{demo_sequence(900000, 900000 + 670)}\n>short\n{demo_sequence(950000, 950020)}\n")
    run = snakemake(tmp_path, config=_config(tmp_path, fasta), timeout=1500)
    assert run.returncode == 0, run.stderr[-3000:]

    counts = pd.read_csv(tmp_path / SUSPECT / "counts.tsv", sep="\t").iloc[0].to_dict()
    assert counts == {
        "records": 2,
        "records_shorter_than_window": 1,
        "windows_cut": 10,
        "windows_over_max_n": 0,
        "windows_dropped_over_max_windows": 0,
        "windows_kept": 10,
        "remainder_bases": 30,
        "window_length": 64,
    }
    # Every scored model scores the suspect windows once, as one shard without neighbours.
    for model in ("tiny", "ref_0", "ref_1"):
        features = pd.read_parquet(tmp_path / SUSPECT / f"features/{model}.parquet")
        assert len(features) == 10 and features.window_id.str.startswith("suspect:long:").all()
    assert run.stderr.count("rule score_suspect:") == 3

    result = pd.read_csv(tmp_path / "results/dataset_inference/tiny/result.tsv", sep="\t")
    assert result.test.tolist() == ["suspect", "control"]
    suspect = result.iloc[0]
    assert suspect.suspect == str(fasta) and suspect.validation == "non_members" and suspect.n_suspect == 10
    # Neighbour attacks need neighbours, which a FASTA's sequences do not have: they are no feature of the test.
    assert "loss" in suspect.features and "neighborhood" not in suspect.features
    page = (tmp_path / "results/report/report.html").read_text()
    assert "<h2>Dataset inference on tiny</h2>" in page and f"({fasta} against non_members, 10 and " in page

    # Non-member windows of the run are the validation set: a FASTA holding two of them is stopped in one line.
    membership = pd.read_csv(tmp_path / "results/membership.tsv", sep="\t")
    nonmembers = membership.window_id[membership.target_member == 0].tolist()[:2]
    windows = read_fasta(tmp_path / "results/windows/windows.fa", keep=nonmembers)
    overlapping = tmp_path / "overlapping.fa"
    overlapping.write_text(f">mixed\n{demo_sequence(900000, 900000 + 256)}{''.join(windows.values())}\n")
    again = snakemake(tmp_path, config=_config(tmp_path, overlapping), timeout=600)
    assert again.returncode != 0
    lines = [line for line in again.stderr.splitlines() if "are windows of the validation set" in line]
    assert lines and "2 of its windows" in lines[0] and "overlapping.fa" in lines[0]
    assert "Traceback" not in again.stderr
