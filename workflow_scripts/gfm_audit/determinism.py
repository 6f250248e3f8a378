"""Bit-reproducible CPU training."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

# Environment variables that change how CPU float sums are split or ordered.
_NUMERIC_ENV = ("OMP_", "MKL_", "KMP_", "GOMP_", "ONEDNN_", "DNNL_", "ATEN_CPU_", "SLURM_CPUS")


@contextmanager
def single_cpu_thread() -> Iterator[None]:
    """Run torch CPU work on one intra-op thread, then restore the thread count.

    Multi-threaded CPU backward passes (oneDNN convolutions, MKL GEMMs) sum
    partial gradients in an order that depends on how the work was split; runs
    of the same seeded training were seen to differ in the last bits now and
    then, and a GA or a fine-tune turns such bits into different tables. One
    thread fixes the order, for about 1.4x the time on the small robustness
    models. CUDA work is unaffected.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def use_job_threads(threads: int) -> None:
    """Hold torch's CPU work to the threads the rule declares (``threads:``, or ``--set-threads``), and log the
    :func:`numeric_runtime` line.

    Left alone, torch takes every core of the machine: jobs that Snakemake runs side by side then oversubscribe
    it, and a batched convolution's float sums depend on how many threads share the batch (the GA's CNN gave
    other last bits with 3 threads than with 1, 2 or 4), which a GA's fitness comparisons turn into another
    table. With the declared count, a config gives the same tables on machines with any number of cores (of
    one instruction set). Work that must not depend on threads at all (training) still runs in
    :func:`single_cpu_thread`.
    """
    import torch

    torch.set_num_threads(max(1, int(threads)))
    logging.getLogger(__name__).info("numerics: %s", numeric_runtime())


def numeric_runtime() -> str:
    """One log line with what decides the order of CPU float sums: threads, kernels, CPU set, environment.

    Logged by every job whose numbers are compared across machines or schedulers, so that a difference in the
    last bits can be traced to its cause from the logs alone.
    """
    import torch

    env = " ".join(f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith(_NUMERIC_ENV))
    return (
        f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads, "
        f"CPU kernels {torch.backends.cpu.get_cpu_capability()}, CPUs {sorted(os.sched_getaffinity(0))}, {env}"
    )
