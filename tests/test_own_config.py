"""The README's own-data example, run exactly as written on a tiny checkpoint a user could have saved.

The config and the command are read from the README (section "Running on your own data"), so the test and the
documentation cannot drift apart; the files the example names are made under a folder laid out like a checkout.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import DEMO_FASTA, DEMO_VCF, REPO

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

SECTION = "## Running on your own data"
# What a checkout holds that a run reads; results/ and .snakemake/ are made by the run in the test's folder.
CHECKOUT = ("Snakefile", "rules", "workflow_scripts", "config", "envs", "report", "profiles", "resources")


def readme_example() -> tuple[str, str]:
    """(the YAML config, the first command) of the README's own-data section."""
    text = (REPO / "README.md").read_text()
    section = text[text.index(SECTION) :]
    section = section[: section.index("\n## ", len(SECTION))]
    config = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    command = re.search(r"```bash\n(.*?)\n", section, re.S).group(1)
    return config, command.split("#")[0].strip()


def test_the_readme_example_is_a_complete_audit_of_ones_own_model():
    config, command = readme_example()
    parsed = yaml.safe_load(config)
    assert parsed["target"] in parsed["models"] and "--configfile my.yaml" in command


@pytest.fixture(scope="module")
def own_run(tmp_path_factory):
    from gfm_audit.char_lm import save_char_causal_lm

    config, command = readme_example()
    parsed = yaml.safe_load(config)
    work = tmp_path_factory.mktemp("own")
    for name in CHECKOUT:
        (work / name).symlink_to(REPO / name)
    (work / ".venv").symlink_to(Path(sys.prefix))  # the README's command starts with .venv/bin/snakemake
    (work / "my.yaml").write_text(config)
    fasta, vcf = work / parsed["reference"]["fasta"], work / parsed["reference"]["vcf"]
    fasta.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(DEMO_FASTA, fasta)
    shutil.copy(DEMO_VCF, vcf)  # no index: the README says a missing one is built
    model = work / parsed["models"][parsed["target"]]["path"]
    save_char_causal_lm(model, hidden=32, layers=2, heads=2, max_positions=1100, weights_seed=0)
    result = subprocess.run(shlex.split(command), cwd=work, capture_output=True, text=True, timeout=2400)
    assert result.returncode == 0, result.stderr[-3000:]
    return work, parsed


def test_the_readme_example_runs_as_written_and_audits_only_the_users_model(own_run):
    work, parsed = own_run
    target = parsed["target"]
    metrics = pd.read_csv(work / f"results/attacks/{target}/metrics.tsv", sep="\t")
    assert {"loss", "lira_online", "rmia"} <= set(metrics.attack)
    assert metrics.auc.between(0, 1).all()
    trained = sorted(p.name for p in (work / "results/models").iterdir())
    assert trained == sorted([target, *(f"ref_{i}" for i in range(parsed["membership"]["reference_models"]))])
    membership = pd.read_csv(work / "results/membership.tsv", sep="\t")
    assert len(membership) == parsed["windows"]["n"]
    # Nothing of the demo came along: no demo model, classifiers, FIMBA data or canaries.
    assert not (work / "results/robustness").exists()
    assert not (work / "results/memorisation").exists()
    assert not (work / "results/attacks/demo_lm").exists()
    assert (work / "results/report/report.html").is_file()
