"""Cost per token of Caduceus's selective scan: our plain-PyTorch scan (per method) beside mamba_ssm's fused kernel.

Run: .venv/bin/python benchmarks/bench_caduceus_scan.py [--length 1024] [--batch 1]
Sizes are the hub checkpoints' (caduceus-ps_seqlen-131k_d_model-256_n_layer-16: d_inner 512, d_state 16). One
scan = one direction of one strand of one layer; a PS forward runs 4 per layer (fwd + rev Mamba on both strands).
CPU figures are process CPU time on one thread (robust to a shared machine); GPU figures are wall time after a
synchronise. The fused kernel row appears only where mamba_ssm imports and a GPU is present. The "fwd+bwd" rows
are a training step of the scan (forward, then backward through the adjoint scan) with every input needing a
gradient.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow_scripts"))

import gfm_audit  # noqa: E402,F401  (MKL settings before torch)
import torch  # noqa: E402
from gfm_audit.gfm import caduceus  # noqa: E402
from gfm_audit.gfm.caduceus_scan import fused_scan_available, selective_scan  # noqa: E402

D_INNER, D_STATE = 512, 16


def best_time(fn, device: torch.device, repeat: int = 3) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize()
            start = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
        else:
            start = time.process_time()
            fn()
            best = min(best, time.process_time() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--length", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    g = torch.Generator().manual_seed(0)
    b, length = args.batch, args.length
    cpu = {
        "u": torch.randn(b, D_INNER, length, generator=g),
        "delta": torch.randn(b, D_INNER, length, generator=g),
        "A": -torch.exp(torch.randn(D_INNER, D_STATE, generator=g)),
        "B": torch.randn(b, D_STATE, length, generator=g),
        "C": torch.randn(b, D_STATE, length, generator=g),
        "D": torch.randn(D_INNER, generator=g),
        "z": torch.randn(b, D_INNER, length, generator=g),
        "delta_bias": torch.randn(D_INNER, generator=g),
    }
    print(f"selective scan, d_inner {D_INNER}, d_state {D_STATE}, batch {b}, length {length}")
    print(f"{'device':8} {'method':16} {'us/token':>9}")
    for device in devices:
        t = {k: v.to(device) for k, v in cpu.items()}
        methods = ["loop", "doubling"] + (["fused"] if device.type == "cuda" and fused_scan_available() else [])
        for method in methods:
            kw = {k: t[k] for k in ("B", "C", "D", "z", "delta_bias")}
            seconds = best_time(
                lambda m=method, t=t, kw=kw: selective_scan(t["u"], t["delta"], t["A"], method=m, **kw), device
            )
            print(f"{device.type:8} {method:16} {seconds / (b * length) * 1e6:9.1f}")
        # Training: forward and backward (the adjoint scan of _LinearRecurrence) with every input needing a gradient.
        for method in ("loop", "doubling"):
            grad = {k: v.clone().requires_grad_() for k, v in t.items()}
            kw = {k: grad[k] for k in ("B", "C", "D", "z", "delta_bias")}

            def step(m=method, grad=grad, kw=kw) -> None:
                selective_scan(grad["u"], grad["delta"], grad["A"], method=m, **kw).sum().backward()

            seconds = best_time(step, device)
            print(f"{device.type:8} {method + ' fwd+bwd':16} {seconds / (b * length) * 1e6:9.1f}")
    config = json.loads((REPO / "tests/fixtures/gfm/caduceus/config.json").read_text()) | {
        "d_model": 256,
        "n_layer": 16,
    }
    for device in devices:
        model = caduceus.build_lm(config, kind="masked").to(device)
        ids = torch.randint(7, 11, (b, length), generator=g).to(device)
        with torch.no_grad():
            seconds = best_time(lambda model=model, ids=ids: model(ids), device, repeat=1)
        print(
            f"Caduceus-PS d_model 256 x 16 layers forward on {device.type}: {seconds / (b * length) * 1e3:.2f} ms/token"
        )


if __name__ == "__main__":
    main()
