"""Scaled dot-product attention for the native families, on a kernel that runs wherever the model does.

torch picks the fused (flash) CPU kernel for softmax(q k^T * scale + mask) v. In bfloat16 that kernel packs its
operands with AMX / AVX-512 routines chosen by the CPU's features, which then refuse to run when PyTorch's own
dispatch has been lowered below AVX-512 (``ATEN_CPU_CAPABILITY=avx2`` or ``default`` on a CPU with AMX: "pack_vnni2
is only supported when avx512 is supported"). There the math kernel, the same formula in plain operations, is
used instead; everywhere else torch's own choice stands, so float32 results and GPU kernels are unchanged.
A model that transformers implements calls the fused kernel from its own code: it is loaded with transformers'
eager attention there instead (:func:`transformers_attention`).
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


def fused_cpu_kernel_unavailable(dtype: torch.dtype, device_type: str) -> bool:
    """Whether torch's fused attention kernel refuses to run for ``dtype`` on ``device_type`` here (bfloat16 on a
    CPU whose dispatch is below AVX-512; see the module docstring)."""
    return device_type == "cpu" and dtype == torch.bfloat16 and _cpu_below_avx512()


def transformers_attention(dtype: torch.dtype) -> dict[str, str]:
    """The ``attn_implementation`` to load a transformers-implemented model with: ``eager`` (the same formula in
    plain operations) where its SDPA attention would reach the fused CPU kernel that cannot run, else nothing
    (transformers' own choice). Decided at load, so the device is the one scoring picks: a GPU where there is one."""
    device_type = "cuda" if torch.cuda.is_available() else "cpu"
    return {"attn_implementation": "eager"} if fused_cpu_kernel_unavailable(dtype, device_type) else {}


def _needs_math_kernel(q: torch.Tensor) -> bool:
    return fused_cpu_kernel_unavailable(q.dtype, q.device.type)


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **kwargs) -> torch.Tensor:
    """``torch.nn.functional.scaled_dot_product_attention(q, k, v, **kwargs)`` (Vaswani et al., 2017), on the
    math kernel where the fused CPU kernel cannot run (see the module docstring)."""
    context = sdpa_kernel(SDPBackend.MATH) if _needs_math_kernel(q) else contextlib.nullcontext()
    with context:
        return F.scaled_dot_product_attention(q, k, v, **kwargs)
