"""Attention runs in bfloat16 under every CPU kernel set PyTorch can dispatch to: the native families' and that of
models transformers implements."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from gfm_audit.gfm.attention import scaled_dot_product_attention
from torch.nn import functional as F  # noqa: N812

REPO = Path(__file__).resolve().parents[1]

# Run in a fresh interpreter: ATEN_CPU_CAPABILITY is read once, when torch starts. Prints the largest difference
# between bfloat16 attention (causal; with a boolean mask) and float32 attention of the same rounded inputs, 128
# positions (the fused kernel's block path, which refuses to run on AMX CPUs at a lowered capability).
SCRIPT = """
import json, torch
from gfm_audit.gfm.attention import scaled_dot_product_attention as sdpa
g = torch.Generator().manual_seed(0)
q, k, v = (torch.randn(1, 4, 128, 32, generator=g).bfloat16() for _ in range(3))
mask = torch.rand(1, 1, 128, 128, generator=g) > 0.2
mask[..., 0] = True  # every query sees one key at least
out = {}
for name, kwargs in (("causal", {"is_causal": True}), ("mask", {"attn_mask": mask})):
    low = sdpa(q, k, v, **kwargs).float()
    high = sdpa(q.float(), k.float(), v.float(), **kwargs)
    out[name] = float((low - high).abs().max())
out["capability"] = torch.backends.cpu.get_cpu_capability()
print(json.dumps(out))
"""


@pytest.mark.parametrize("capability", ["default", "avx2"])
def test_bfloat16_attention_runs_and_matches_float32_at_a_lowered_cpu_capability(capability):
    env = {**os.environ, "ATEN_CPU_CAPABILITY": capability, "PYTHONPATH": str(REPO / "workflow_scripts")}
    run = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout)
    # bfloat16 keeps 8 significant bits (relative rounding 2**-9 per operation); the output is a softmax-weighted
    # mean of v rows of size about 1 after 32-term dot products and the softmax, each rounded: a few times
    # 2**-9 x the largest |v| (about 4), i.e. some 1e-2. 0.05 bounds that with room, and a wrong mask, scale or
    # causal order moves outputs by about 1.
    assert result["causal"] < 0.05 and result["mask"] < 0.05, result


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_attention_leaves_torchs_own_kernel_choice_where_it_runs(dtype):
    # At this process's capability (the CPU's own unless lowered) the fused kernel runs, and the helper must give
    # torch's result bit for bit in float32; in bfloat16 it may pick the math kernel only at a lowered capability.
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 4, 96, 16, generator=g).to(dtype) for _ in range(3))
    ours = scaled_dot_product_attention(q, k, v, is_causal=True)
    if dtype == torch.float32 or torch.backends.cpu.get_cpu_capability().startswith("AVX512"):
        assert torch.equal(ours, F.scaled_dot_product_attention(q, k, v, is_causal=True))
    else:
        assert ours.dtype == dtype and torch.isfinite(ours).all()


# A transformers-implemented model (the char-level GPT-2 of the tests, loaded through the path a user's checkpoint
# takes) scored in bfloat16 at a lowered capability: its own SDPA call would reach the fused kernel. Prints the
# largest difference of its log-probabilities from the float32 model's, with one padded row.
TRANSFORMERS_SCRIPT = """
import json, sys, torch
from gfm_audit.models import ModelSpec, load_model
path = sys.argv[1]
ids = torch.randint(4, 8, (2, 200), generator=torch.Generator().manual_seed(0))
attention = torch.ones_like(ids)
attention[1, 150:] = 0
out = {}
for dtype in ("float32", "bfloat16"):
    model = load_model(ModelSpec("tiny", path, "causal", dtype=dtype))
    with torch.inference_mode():
        logits = model(input_ids=ids, attention_mask=attention).logits.float()
    out[dtype] = torch.log_softmax(logits, dim=-1)[attention.bool()]
print(json.dumps({"diff": float((out["bfloat16"] - out["float32"]).abs().max())}))
"""


@pytest.mark.parametrize("capability", ["default", "avx2"])
def test_a_transformers_model_scores_in_bfloat16_at_a_lowered_cpu_capability(tiny_causal, capability):
    env = {**os.environ, "ATEN_CPU_CAPABILITY": capability, "PYTHONPATH": str(REPO / "workflow_scripts")}
    run = subprocess.run(
        [sys.executable, "-c", TRANSFORMERS_SCRIPT, str(tiny_causal)], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-2000:]
    diff = json.loads(run.stdout.strip().splitlines()[-1])["diff"]
    # bfloat16 rounds every weight and activation to 8 significant bits (relative 2**-9, about 0.002); through two
    # layers of 32-wide dot products the log-probabilities, of size about 1, move by some 1e-3 to 1e-2 (about 0.002
    # measured at each capability on an AVX-512 CPU). 0.02 bounds that; the bug this guards is a crash.
    assert diff < 0.02, diff
