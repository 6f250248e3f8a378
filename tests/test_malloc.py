"""Freed memory is kept for reuse (glibc): a batch-sized buffer allocated again is not faulted in again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Allocate, fill and free a 64 MB buffer 20 times (as a scoring job does with a batch's activations), counting
# the minor page faults: above glibc's largest automatic mmap threshold (32 MB) each one is mapped, faulted in and
# unmapped again unless the thresholds are raised.
PROBE = """
import resource, sys
sys.path.insert(0, {scripts!r})
if {use_gfm_audit}:
    import gfm_audit
import numpy as np
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    a = np.ones(8 << 20)
    del a
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(use_gfm_audit: bool) -> int:
    code = PROBE.format(scripts=str(REPO / "workflow_scripts"), use_gfm_audit=use_gfm_audit)
    env = {"PATH": "/usr/bin:/bin"}  # no MALLOC_* variables from the caller
    return int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_importing_gfm_audit_keeps_a_freed_buffer_for_the_next_allocation():
    from gfm_audit.malloc import keep_freed_memory

    if not keep_freed_memory():
        pytest.skip("no glibc mallopt here (musl?)")
    plain, tuned = _faults(False), _faults(True)
    assert plain > 4 * tuned, (plain, tuned)
