"""Selective scan of Mamba (S6) in plain PyTorch, for CPU and GPU, with the fused kernel used when installed.

The recurrence (Gu & Dao 2023, "Mamba: Linear-Time Sequence Modeling with Selective State Spaces", eq. 2a-2b with
zero-order-hold discretisation of A and the simplified Euler step for B), per channel d and state n:

    delta_t = softplus(delta_t + delta_bias_d)
    h_t[d, n] = exp(delta_t[d] * A[d, n]) * h_{t-1}[d, n] + delta_t[d] * B_t[n] * u_t[d]
    y_t[d] = sum_n C_t[n] * h_t[d, n] + D[d] * u_t[d]
    out_t[d] = y_t[d] * silu(z_t[d])

`selective_scan` evaluates it by blocks of positions: inside a block either a plain loop over positions (cheapest
on CPU, where each step is one small fused multiply-add) or a Hillis-Steele doubling scan (log2(block) vectorised
steps, cheapest on GPU); the state is carried from block to block, so memory stays O(batch * d * block * n).

Both update their buffers in place, which autograd cannot differentiate through. When a gradient is needed the
block's recurrence runs inside `_LinearRecurrence`, whose backward is the same recurrence run backwards in time
(for h_t = a_t * h_{t-1} + x_t and upstream gradient g_t = dL/dh_t, the adjoint is
lambda_t = g_t + a_{t+1} * lambda_{t+1}; then dL/dx_t = lambda_t, dL/da_t = lambda_t * h_{t-1} and
dL/dh_{-1} = a_0 * lambda_0), so training uses the same forward numbers and the same scan code, and
saves only the block's decays and states. Without a gradient nothing changes: the in-place scan runs as it is.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

__all__ = ["fused_scan_available", "linear_recurrence", "selective_scan"]


@functools.cache
def _fused_kernel():
    """mamba_ssm's CUDA selective scan when it is installed and importable, else None (never required)."""
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except Exception:  # any import failure (no CUDA build, ABI mismatch) means "not available"
        return None
    return selective_scan_fn


def fused_scan_available() -> bool:
    """True when mamba_ssm's fused CUDA selective scan can be imported."""
    return _fused_kernel() is not None


def _doubling_scan(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inclusive scan of h_t = a_t * h_{t-1} + b_t along dim 0 from h_{-1} = 0.

    Returns (cumulative decay prod_{s<=t} a_s, h_t). Each doubling step composes (a1, b1) then (a2, b2) into
    (a1 * a2, a2 * b1 + b2); every a is in (0, 1], so products only underflow towards 0 (no overflow).
    """
    length = a.shape[0]
    a, b = a.clone(), b.clone()
    step = 1
    while step < length:
        # Right-hand sides are computed into new tensors first: source and target slices overlap.
        b[step:] += a[step:] * b[:-step]
        a[step:] = a[step:] * a[:-step]
        step *= 2
    return a, b


def linear_recurrence(
    decay: torch.Tensor,
    inp: torch.Tensor,
    *,
    state: torch.Tensor | None = None,
    method: str = "loop",
) -> torch.Tensor:
    """All states h_t = decay_t * h_{t-1} + inp_t of a block, time first: decay, inp: (length, ...); state: (...).

    method "loop" runs one fused multiply-add per position (time-major, so each step reads and writes one
    contiguous slab); "doubling" runs log2(length) vectorised steps.
    """
    if method not in ("loop", "doubling"):
        raise ValueError(f"unknown scan method {method!r}: use 'loop' or 'doubling'")
    if _needs_grad(decay, inp, state):
        return _LinearRecurrence.apply(decay, inp, state, method)
    return _recurrence_inplace(decay, inp.clone() if method == "loop" else inp, state, method)


def _needs_grad(*tensors: torch.Tensor | None) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _recurrence_inplace(
    decay: torch.Tensor, inp: torch.Tensor, state: torch.Tensor | None, method: str
) -> torch.Tensor:
    """The states of a block, not differentiable; "loop" overwrites inp (pass a tensor that may be consumed)."""
    if method == "loop":
        return _loop_inplace(decay, inp, state)
    cum, h = _doubling_scan(decay, inp)
    if state is not None:
        h = torch.addcmul(h, cum, state.unsqueeze(0))
    return h


class _LinearRecurrence(torch.autograd.Function):
    """h_t = decay_t * h_{t-1} + inp_t with the in-place scan forward and its adjoint scan backward (module doc)."""

    @staticmethod
    def forward(ctx, decay, inp, state, method):
        # Grad mode is off in here, so the in-place scan is allowed; inp is cloned because it is the caller's.
        h = _recurrence_inplace(decay, inp.clone() if method == "loop" else inp, state, method)
        ctx.method = method
        ctx.has_state = state is not None
        ctx.save_for_backward(decay, h, state if state is not None else h.new_zeros(()))
        return h

    @staticmethod
    def backward(ctx, grad_h):
        decay, h, state = ctx.saved_tensors
        # Adjoint, reversed in time: lambda_t = g_t + decay_{t+1} * lambda_{t+1}, i.e. the same recurrence on the
        # flipped sequences with decays shifted by one (the first reversed decay multiplies a zero state: unused).
        rev_decay = torch.cat((torch.ones_like(decay[:1]), decay[1:].flip(0)))
        adj = _recurrence_inplace(rev_decay, grad_h.flip(0).contiguous(), None, ctx.method).flip(0)
        prev = torch.cat(((state if ctx.has_state else torch.zeros_like(h[0])).unsqueeze(0), h[:-1]))
        grad_decay = adj * prev if ctx.needs_input_grad[0] else None
        grad_state = decay[0] * adj[0] if ctx.has_state and ctx.needs_input_grad[2] else None
        return grad_decay, adj, grad_state, None


def _loop_inplace(decay: torch.Tensor, h: torch.Tensor, state: torch.Tensor | None) -> torch.Tensor:
    """h_t (given as inp_t) overwritten in place by the state: one fused multiply-add per position."""
    if state is not None:
        h[0].addcmul_(decay[0], state)
    for t in range(1, h.shape[0]):
        h[t].addcmul_(decay[t], h[t - 1])
    return h


def selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    *,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = True,
    method: str = "auto",
    block: int | None = None,
) -> torch.Tensor:
    """Mamba's selective scan (formula in the module docstring) in float32.

    Shapes as mamba_ssm's selective_scan_fn: u, delta, z: (batch, d, L); A: (d, n); B, C: (batch, n, L);
    D, delta_bias: (d,). Returns (batch, d, L) in u's dtype. method: "auto" (fused kernel on CUDA when installed,
    else "loop" on CPU and "doubling" on GPU), "fused", "loop" or "doubling". block: positions per block.
    """
    if method == "auto":
        if u.is_cuda and _fused_kernel() is not None:
            method = "fused"
        else:
            method = "doubling" if u.is_cuda else "loop"
    if method == "fused":
        kernel = _fused_kernel()
        if kernel is None:
            raise RuntimeError("the fused selective scan needs mamba_ssm, which is not importable here")
        return kernel(u, delta, A, B, C, D, z=z, delta_bias=delta_bias, delta_softplus=delta_softplus)
    if method not in ("loop", "doubling"):
        raise ValueError(f"unknown scan method {method!r}: use 'auto', 'fused', 'loop' or 'doubling'")
    dtype_in = u.dtype
    u = u.float()
    delta = delta.float()
    if delta_bias is not None:
        delta = delta + delta_bias.float()[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    A = A.float()
    B = B.float()
    C = C.float()
    length = u.shape[2]
    if block is None:
        # CPU loop: keep a block's (l, batch, d, n) tensors near 512 KiB, cache-sized (measured fastest); GPU: 64.
        block = max(8, min(256, 2**17 // max(1, u.shape[0] * u.shape[1] * A.shape[-1]))) if method == "loop" else 64
    # Time-major (L, batch, d) / (L, batch, n) so that every position is one contiguous slab.
    # Made contiguous here (n times smaller than the per-block tensors) so that those come out time-major too.
    delta_t = delta.permute(2, 0, 1).contiguous()
    du_t = (delta * u).permute(2, 0, 1).contiguous()
    B_t = B.permute(2, 0, 1).contiguous()
    C_t = C.permute(2, 0, 1).contiguous()
    state = None
    ys = []
    for start in range(0, length, block):
        sl = slice(start, min(start + block, length))
        decay = torch.exp(delta_t[sl].unsqueeze(-1) * A)  # (l, b, d, n)
        inp = du_t[sl].unsqueeze(-1) * B_t[sl].unsqueeze(2)  # (l, b, d, n)
        if _needs_grad(decay, inp, state):
            h = _LinearRecurrence.apply(decay, inp, state, method)
        else:
            h = _recurrence_inplace(decay, inp, state, method)  # inp is a fresh tensor of this block
        state = h[-1]
        ys.append(torch.matmul(h, C_t[sl].unsqueeze(-1)).squeeze(-1).permute(1, 2, 0))
    y = torch.cat(ys, dim=2)
    if D is not None:
        y = y + u * D.float()[:, None]
    if z is not None:
        y = y * F.silu(z.float())
    return y.to(dtype_in)
