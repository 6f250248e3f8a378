"""The peak resident memory of this process, as logs and benchmarks report it."""

from __future__ import annotations

import resource
import subprocess
import sys


def peak_rss_mib() -> float:
    """Peak resident set size of this process, in MiB: ``VmHWM`` from ``/proc/self/status``.

    ``getrusage``'s ``ru_maxrss`` is not used where ``VmHWM`` exists: Linux carries the parent's peak into a
    child across fork and exec, so a job started by a large process (Snakemake, a benchmark that has just built
    its inputs) would report its parent's memory as its own. ``VmHWM`` belongs to the process's own address space.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    # macOS reports bytes, Linux kilobytes; only the former reaches this line in practice.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def peak_rss_mib_of(code: str, *, label: str) -> float:
    """Run ``code`` in a fresh Python interpreter and return that process's own peak RSS in MiB.

    For benchmarks that compare variants of a job: each runs alone, so no variant inherits another's memory.
    A failure stops the caller with the child's last error lines, named by ``label``.
    """
    script = f"{code}\nfrom gfm_audit.peak_memory import peak_rss_mib\nprint(peak_rss_mib())\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{label} failed:\n{done.stderr[-3000:]}")
    return float(done.stdout.split()[-1])
