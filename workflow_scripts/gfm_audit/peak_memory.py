"""The peak resident memory of this process, as logs and benchmarks report it."""

from __future__ import annotations

import resource


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
