"""scoring.context through Snakemake: Evo 2 (causal) and NT v3 (masked) score the demo's windows inside their
reference flanks; Evo 2's window scores equal a forward pass of flank + window computed here."""

import shutil
import subprocess

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from conftest import DEMO_FASTA, REPO, demo_sequence
from gfm_audit.gfm import registry
from gfm_audit.models import ModelSpec, load_model, load_tokenizer
from test_gfm_families import FIXTURES
from test_gfm_workflow import USER_FILES
from test_workflow import SNAKEMAKE, demo_config

pytestmark = pytest.mark.workflow

CONTEXT = 48


@pytest.fixture(scope="module")
def context_run(tmp_path_factory):
    if any(f not in registry.available_families() for f in USER_FILES):
        pytest.skip("Evo 2 or NT v3 is not in this checkout")
    workdir = tmp_path_factory.mktemp("context_run")
    models = {}
    for family, files in USER_FILES.items():
        folder = workdir / family
        folder.mkdir()
        for name in files:
            shutil.copy(FIXTURES / family / name, folder / name)
        models[family] = {"path": str(folder), "kind": registry.family_module(family).KINDS[0]}
    member, nonmember = workdir / "member.bed", workdir / "nonmember.bed"
    member.write_text("z\t0\t500000\n")
    nonmember.write_text("z\t500000\t1000000\n")
    config = demo_config(length=96, n=6)
    config["neighbors"] = {"probs": [0.5], "per_prob": 1}
    config["models"] = models
    config["target"] = "evo2"
    config["membership"] = {"mode": "regions", "member_bed": str(member), "nonmember_bed": str(nonmember)}
    config["scoring"] = {"shards": 1, "batch_size": 8, "context": CONTEXT, "keep_tokens": True}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    targets = [f"results/attacks/{f}/metrics.tsv" for f in USER_FILES]
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores", "2", *targets]
    result = subprocess.run(
        [*cmd, "--configfile", str(workdir / "config.yaml")], capture_output=True, text=True, timeout=1200
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir, models


def test_the_scoring_jobs_log_their_flanks_and_the_attacks_run(context_run):
    workdir, _ = context_run
    causal = (workdir / "results/logs/score/evo2/shard-0.log").read_text()
    masked = (workdir / "results/logs/score/nt_v3/shard-0.log").read_text()
    assert f"scoring.context {CONTEXT} (left flank only" in causal and "windows got a shorter flank" in causal
    assert f"scoring.context {CONTEXT} (both sides)" in masked
    for family in USER_FILES:
        metrics = pd.read_csv(workdir / f"results/attacks/{family}/metrics.tsv", sep="\t")
        assert metrics.filter(like="auc").notna().any().any()


def test_evo2_window_scores_equal_a_forward_pass_of_left_flank_and_window(context_run):
    workdir, models = context_run
    if torch.cuda.is_available():
        pytest.skip("the run scored on the GPU under bf16 autocast; the computation here is float32 on the CPU")
    assert str(DEMO_FASTA) == demo_config()["reference"]["fasta"]  # the flanks below come from the run's reference
    windows = pd.read_csv(workdir / "results/windows/windows.tsv", sep="\t").set_index("window_id")
    rows = pq.read_table(workdir / "results/scores/evo2/shard-0.parquet").to_pylist()
    spec = ModelSpec("evo2", models["evo2"]["path"], "causal")
    model, tok = load_model(spec), load_tokenizer(spec)
    for row in [r for r in rows if r["kind"] == "window"][:2]:
        w = windows.loc[row["window_id"]]
        left = demo_sequence(max(0, w.start - CONTEXT), w.start).upper()
        text = demo_sequence(w.start, w.end).upper()
        ids = tok(left + text)["input_ids"]  # one token per byte, nothing added
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)
        # With a flank the window's first base has a token before it, and is scored too.
        targets = range(max(len(left), 1), len(ids))
        expected = np.array([float(logp[t - 1, ids[t]]) for t in targets])
        assert row["n_tokens"] == len(expected)
        np.testing.assert_allclose(row["token_logprob"], expected, rtol=2e-3, atol=2e-3)
