"""Writing outputs: nothing half-written under a final name, and nothing a killed job left stays behind."""

import signal
import subprocess
import sys

import pandas as pd
from conftest import REPO
from full_disk import run_on_a_full_disk
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
    _killed_mid_write(tmp_path / "shard-1.tsv", folder=False)  # another output's: not this job's to remove
    assert len(list(tmp_path.glob(".shard-0.tsv.partial-*"))) == 1

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


def test_a_full_disk_met_creating_an_output_names_that_output_not_its_temporary(tmp_path):
    disk, log = tmp_path / "disk", tmp_path / "job.log"
    out, other = disk / "results" / "table.tsv", disk / "results" / "other.tsv"
    code = f"""
import sys
sys.path.insert(0, {str(REPO / "workflow_scripts")!r})
from types import SimpleNamespace
import pandas as pd
from gfm_audit.outputs import atomic_outputs, write_tsv
from gfm_audit.rule_script import run_rule
def main(job):
    with atomic_outputs(job.output[0]) as (tmp,):
        write_tsv(pd.DataFrame({{"a": [1]}}), tmp)
run_rule(SimpleNamespace(rule="r", log=[{str(log)!r}], output=[{str(out)!r}, {str(other)!r}]), main)
"""
    # Room for two entries, the tmpfs's own root and the results folder: creating the table's temporary finds the
    # disk full, and the error names that temporary.
    status, stderr, left = run_on_a_full_disk(code, disk, size_kib=64, files=2)
    assert status == 1 and stderr.strip().splitlines() == [stderr.strip()], stderr
    assert f"disk is full (no space left on device) writing {out};" in stderr and ".partial-" not in stderr
    assert left == []


def test_an_exceeded_disk_quota_is_one_line_naming_the_file_and_the_quota(tmp_path):
    # No quota can be set up without root, so the job raises what the kernel returns on a cluster's scratch when a
    # user's quota is full (EDQUOT), wrapped the way a library re-raises it; the handling is what is under test.
    log, out = tmp_path / "job.log", tmp_path / "results" / "weights.safetensors"
    code = f"""
import errno, os, sys
sys.path.insert(0, {str(REPO / "workflow_scripts")!r})
from types import SimpleNamespace
from gfm_audit.rule_script import run_rule
def main(job):
    try:
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), {str(out.parent / ".weights.safetensors.partial-123")!r})
    except OSError as exc:
        raise RuntimeError("failed to write the model") from exc
run_rule(SimpleNamespace(rule="train_model", log=[{str(log)!r}], output=[{str(out)!r}]), main)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [proc.stderr.strip()], proc.stderr
    assert f"disk quota is exceeded (disk quota exceeded) writing {out};" in proc.stderr
    assert "Traceback" not in proc.stderr and "quota" in log.read_text()
