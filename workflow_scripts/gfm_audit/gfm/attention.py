"""Scaled dot-product attention for the native families, on a kernel that runs wherever the model does.

torch picks the fused (flash) CPU kernel for softmax(q k^T * scale + mask) v. In bfloat16 that kernel packs its
operands with AMX / AVX-512 routines chosen by the CPU's features, which then refuse to run when PyTorch's own
dispatch has been lowered below AVX-512 (``ATEN_CPU_CAPABILITY=avx2`` or ``default`` on a CPU with AMX: "pack_vnni2
is only supported when avx512 is supported"). There the math kernel, the same formula in plain operations, is
used instead; everywhere else torch's own choice stands, so float32 results and GPU kernels are unchanged.
"""

from __future__ import annotations

import contextlib
import functools

import torch
from torch.nn import functional as F  # noqa: N812
from torch.nn.attention import SDPBackend, sdpa_kernel


@functools.cache
def _cpu_below_avx512() -> bool:
    # Fixed for the life of the process (ATEN_CPU_CAPABILITY is read when torch starts): asked once, not per layer.
    return not torch.backends.cpu.get_cpu_capability().startswith("AVX512")


def _needs_math_kernel(q: torch.Tensor) -> bool:
    return q.device.type == "cpu" and q.dtype == torch.bfloat16 and _cpu_below_avx512()


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **kwargs) -> torch.Tensor:
    """``torch.nn.functional.scaled_dot_product_attention(q, k, v, **kwargs)`` (Vaswani et al., 2017), on the
    math kernel where the fused CPU kernel cannot run (see the module docstring)."""
    context = sdpa_kernel(SDPBackend.MATH) if _needs_math_kernel(q) else contextlib.nullcontext()
    with context:
        return F.scaled_dot_product_attention(q, k, v, **kwargs)
