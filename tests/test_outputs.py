"""Writing outputs: nothing half-written under a final name, and nothing a killed job left stays behind."""

import signal
import subprocess
import sys

import pandas as pd
from conftest import REPO
from gfm_audit.outputs import atomic_directory, atomic_outputs, write_tsv


def _killed_mid_write(output, *, folder: bool) -> None:
    """A job that starts writing ``output`` and is killed (SIGKILL) before it is done, in its own process."""
    writer = "atomic_directory" if folder else "atomic_outputs"
    code = f"""
import os, signal, sys
sys.path.insert(0, {str(REPO / "workflow_scripts")!r})
from gfm_audit.outputs import atomic_directory, atomic_outputs
with {writer}({str(output)!r}) as tmp:
    tmp = tmp if {folder} else tmp[0]
    (tmp / "model.safetensors" if {folder} else tmp).write_text("half")
    os.kill(os.getpid(), signal.SIGKILL)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == -signal.SIGKILL, result.stderr


def test_writing_an_output_removes_the_temporaries_killed_jobs_left_of_it_and_no_other(tmp_path):
    out = tmp_path / "shard-0.tsv"
    _killed_mid_write(out, folder=False)
    _killed_mid_write(out, folder=False)
    _killed_mid_write(tmp_path / "shard-1.tsv", folder=False)  # another output's: not this job's to remove
    assert len(list(tmp_path.glob(".shard-0.tsv.partial-*"))) == 2

    with atomic_outputs(out) as (tmp,):
        write_tsv(pd.DataFrame({"a": [1.5, 2.0]}), tmp)

    assert pd.read_csv(out, sep="\t")["a"].tolist() == [1.5, 2.0]
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left[1:] == ["shard-0.tsv"] and left[0].startswith(".shard-1.tsv.partial-")


def test_writing_a_folder_removes_the_half_written_folders_killed_jobs_left_of_it(tmp_path):
    out = tmp_path / "models" / "target"
    _killed_mid_write(out, folder=True)
    assert [p.name for p in (tmp_path / "models").iterdir()][0].startswith(".target.partial-")

    with atomic_directory(out) as tmp:
        (tmp / "config.json").write_text("{}")

    assert [p.name for p in (tmp_path / "models").iterdir()] == ["target"]
    assert [p.name for p in out.iterdir()] == ["config.json"]
