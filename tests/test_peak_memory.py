"""peak_rss_mib reports the process's own peak, not its parent's."""

import subprocess
import sys
from pathlib import Path

import pytest
from gfm_audit.peak_memory import peak_rss_mib_of

WORKFLOW_SCRIPTS = str(Path(__file__).resolve().parents[1] / "workflow_scripts")


def test_peak_rss_grows_with_memory_touched_in_this_process():
    code = (
        f"import sys; sys.path.insert(0, {WORKFLOW_SCRIPTS!r});"
        "from gfm_audit.peak_memory import peak_rss_mib;"
        'before = peak_rss_mib(); block = bytearray(200 * 2**20); block[::4096] = b"\\1" * len(block[::4096]);'
        "print(before, peak_rss_mib())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert float(out[1]) - float(out[0]) > 150, out


def test_child_of_a_large_process_reports_its_own_peak_not_the_parents():
    parent_block = bytearray(400 * 2**20)
    parent_block[::4096] = b"\1" * len(parent_block[::4096])
    code = (
        f"import sys, resource; sys.path.insert(0, {WORKFLOW_SCRIPTS!r});"
        "from gfm_audit.peak_memory import peak_rss_mib;"
        "print(peak_rss_mib(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    own, inherited = float(out[0]), float(out[1])
    assert own < 100, own
    # What the function exists to avoid: getrusage in the child includes the parent's 400 MiB.
    assert inherited > 400, inherited
    del parent_block


def test_peak_rss_of_code_is_the_fresh_interpreters_own_peak():
    parent_block = bytearray(400 * 2**20)
    parent_block[::4096] = b"\1" * len(parent_block[::4096])
    code = (
        f"import sys; sys.path.insert(0, {WORKFLOW_SCRIPTS!r})\n"
        'block = bytearray(150 * 2**20); block[::4096] = b"\\1" * len(block[::4096])'
    )
    peak = peak_rss_mib_of(code, label="touch 150 MiB")
    # At least what the child touched, and none of the parent's 400 MiB.
    assert 150 < peak < 300, peak
    del parent_block


def test_peak_rss_of_failing_code_stops_with_its_label_and_error():
    with pytest.raises(SystemExit, match=r"(?s)select_windows \(before\) failed:.*ZeroDivisionError"):
        peak_rss_mib_of("1 / 0", label="select_windows (before)")
