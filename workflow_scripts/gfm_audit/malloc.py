"""Keep freed memory in the process for reuse instead of handing it back to the kernel at once (glibc only).

glibc serves large allocations (above a threshold that grows only to 32 MB) by ``mmap`` and returns them with
``munmap`` when freed, and trims the heap top once 128 KB are free. A torch forward allocates and frees its
activations, logits and statistics every batch, so every batch faulted its memory in again, page by page: on
the tiny model of ``benchmarks/bench_scoring.py`` 33-58 k minor page faults and 80-130 ms of system time per
131 k tokens, about a quarter of the run, and the main noise in its timings. With the thresholds raised, freed
blocks stay in the heap for the next batch: the same run has almost no faults and is 25-30% faster (BENCHMARKS.md,
P1b). Peak memory is unchanged; memory freed after the peak is kept, not returned (a job's resident set stays
at its peak). The environment variables ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_`` and
``MALLOC_TOP_PAD_`` do the same before start-up; a user who has set any of them keeps theirs.
"""

from __future__ import annotations

import ctypes
import os

# mallopt parameter numbers from glibc's malloc.h.
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_SETTINGS = (
    (_M_MMAP_THRESHOLD, "MALLOC_MMAP_THRESHOLD_", 256 << 20),
    (_M_TRIM_THRESHOLD, "MALLOC_TRIM_THRESHOLD_", 1 << 30),
    (_M_TOP_PAD, "MALLOC_TOP_PAD_", 64 << 20),
)


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; False where there is no glibc ``mallopt``."""
    try:  # glibc names itself here; musl and macOS do not (they have no such tuning: nothing to do)
        glibc = (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError, AttributeError):
        glibc = False
    if not glibc:
        return False
    # The process's own symbols include libc's: no library search (ctypes.util.find_library may run ldconfig).
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = True
    for param, variable, value in _SETTINGS:
        if variable not in os.environ:
            done = mallopt(param, value) == 1 and done
    return done
