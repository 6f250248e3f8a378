"""Bit-reproducible CPU training."""

from __future__ import annotations

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
