"""P4: GPU scoring throughput against the GPU's limits (run on a CUDA machine).

Run: .venv/bin/python benchmarks/bench_gpu.py            (CUDA; writes a Markdown table)
     .venv/bin/python benchmarks/bench_gpu.py --quick    (any machine: tiny sizes, checks the script runs)

Two stand-ins built from configs (no hub): a HyenaDNA-sized causal LM (Llama
architecture with rotary positions, character tokens, ~3 M parameters; 1-32 kb
inputs) and a Nucleotide-Transformer-sized masked LM (ESM architecture, ~40 M
parameters, 1,000 tokens). Each is scored through gfm-audit's own scoring path
(``score_sequences``) in bf16 autocast, and again with bf16 off, with pinned
memory off and with padding to a multiple of 8 off (the GPU-only ablations;
inputs are 1 token longer than a multiple of 8, the worst case for padding). Achieved FLOP/s are set against the GPU's
peak dense bf16 FLOP/s, and the bytes a forward pass must move (weights once
per batch, plus logits written and read) against its memory bandwidth.
Hyena itself is O(L log L); the stand-in's attention is O(L^2) and its FLOPs
are counted as such.

Issue 19: for the causal model, the scoring path's time against a bare bf16
forward of the same model on the same batches (already tokenised, padded and
on the device), and the GPU's utilisation (NVML, sampled every 20 ms) while
the scoring path runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow_scripts"))

import gfm_audit  # noqa: E402,F401
import numpy as np  # noqa: E402
import torch  # noqa: E402
from gfm_audit.char_lm import char_tokenizer  # noqa: E402
from gfm_audit.models import ModelSpec  # noqa: E402
from gfm_audit.privacy.scoring import ScoringOptions, SeqRecord, score_sequences  # noqa: E402

# Dense bf16 tensor-core peak (FLOP/s) and memory bandwidth (B/s) from the vendors' data sheets.
DEVICES = {
    "H200": (989e12, 4.8e12),
    "H100 PCIe": (756e12, 2.0e12),
    "H100": (989e12, 3.35e12),  # SXM
    "A100-SXM4-80GB": (312e12, 2.04e12),
    "A100": (312e12, 1.555e12),
}


def device_limits(name: str) -> tuple[float, float] | None:
    for key, limits in DEVICES.items():
        if key in name:
            return limits
    return None


def save_models(tmp: Path, quick: bool) -> dict[str, tuple[Path, str]]:
    from transformers import EsmConfig, EsmForMaskedLM, LlamaConfig, LlamaForCausalLM

    tok = char_tokenizer()
    hyena = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64 if quick else 256,
        intermediate_size=128 if quick else 1024,
        num_hidden_layers=2 if quick else 4,
        num_attention_heads=4 if quick else 8,
        max_position_embeddings=40_000,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        architectures=["LlamaForCausalLM"],
    )
    nt = EsmConfig(
        vocab_size=len(tok),
        hidden_size=64 if quick else 512,
        num_hidden_layers=2 if quick else 12,
        num_attention_heads=4 if quick else 16,
        intermediate_size=128 if quick else 2048,
        max_position_embeddings=2050,
        position_embedding_type="rotary",
        pad_token_id=tok.pad_token_id,
        mask_token_id=tok.mask_token_id,
        architectures=["EsmForMaskedLM"],
    )
    out = {}
    for name, config, cls, kind in (
        ("hyena_sized", hyena, LlamaForCausalLM, "causal"),
        ("nt_sized", nt, EsmForMaskedLM, "masked"),
    ):
        torch.manual_seed(0)
        cls(config).save_pretrained(tmp / name)
        tok.save_pretrained(tmp / name)
        out[name] = (tmp / name, kind)
    return out


def bare_forward_seconds(spec: ModelSpec, texts: list[str], batch: int, device: str) -> float:
    """A bare forward of every batch, ids already on the device, bf16 autocast on CUDA: the ceiling."""
    from gfm_audit.models import load_model, load_tokenizer

    model, tok = load_model(spec).to(device), load_tokenizer(spec)
    ids = torch.tensor([tok(t)["input_ids"] for t in texts])
    batches = [ids[i : i + batch].to(device) for i in range(0, len(ids), batch)]
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
        model(input_ids=batches[0][:1])  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for x in batches:
            model(input_ids=x)
        if device == "cuda":
            torch.cuda.synchronize()
    return time.perf_counter() - start


class Utilisation:
    """Mean GPU utilisation (%) reported by NVML while the ``with`` block runs; nan without NVML."""

    def __enter__(self):
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            try:
                self.samples.append(float(torch.cuda.utilization()))
            except Exception:  # no NVML (pynvml) or no GPU: nothing to report
                return

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples) if self.samples else float("nan")


def flops_per_token(n_params: int, n_layers: int, hidden: int, length: int) -> float:
    """Forward FLOPs per token: 2 x parameters (matmuls) + 4 x layers x length x hidden (QK^T and AV)."""
    return 2 * n_params + 4 * n_layers * length * hidden


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="tiny sizes on any device, to check the script")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    limits = device_limits(name) if device == "cuda" else None
    rng = np.random.default_rng(0)
    bases = "ACGT"
    lengths = {
        "hyena_sized": [1_000, 4_000] if args.quick else [1_000, 4_000, 16_000, 32_000],
        "nt_sized": [1_000] if args.quick else [1_000],
    }
    tokens_per_batch = 8_000 if args.quick else 131_072
    print(f"device: {name}; torch {torch.__version__}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model_name, (folder, kind) in save_models(Path(tmp), args.quick).items():
            from transformers import AutoConfig

            config = AutoConfig.from_pretrained(folder)
            from gfm_audit.models import load_model

            spec = ModelSpec(model_name, str(folder), kind, masking="sampled", mask_fraction=0.15)
            n_params = sum(p.numel() for p in load_model(spec).parameters())
            for length in lengths[model_name]:
                n_seq = max(2, (4 if args.quick else 16) * tokens_per_batch // length)
                batch = max(1, tokens_per_batch // length) if kind == "causal" else 256
                texts = ["".join(rng.choice(list(bases), size=length)) for _ in range(n_seq)]
                recs = [SeqRecord(f"s{i}", f"s{i}", "window", None, None, t) for i, t in enumerate(texts)]
                for label, options in (
                    ("bf16 + pinned", ScoringOptions()),
                    ("fp32", replace(ScoringOptions(), bf16_autocast=False)),
                    ("bf16, unpinned", replace(ScoringOptions(), pin_memory=False)),
                    ("bf16, no pad to 8", replace(ScoringOptions(), pad_multiple=1)),
                ):
                    if device == "cpu" and label != "bf16 + pinned":
                        continue
                    score_sequences(
                        spec, recs[:2], snp_offsets={}, batch_size=batch, seed=0, device=device, options=options
                    )  # warm-up
                    if device == "cuda":
                        torch.cuda.synchronize()
                        torch.cuda.reset_peak_memory_stats()
                    with Utilisation() as busy:
                        start = time.perf_counter()
                        score_sequences(
                            spec, recs, snp_offsets={}, batch_size=batch, seed=0, device=device, options=options
                        )
                        if device == "cuda":
                            torch.cuda.synchronize()
                        seconds = time.perf_counter() - start
                    ratio = float("nan")
                    if kind == "causal" and label == "bf16 + pinned":
                        ratio = bare_forward_seconds(spec, texts, batch, device) / seconds
                    # Tokens through the model: causal = every token once; masked = one pass per masked position.
                    n_tokens = n_seq * (length + 1) * (1 if kind == "causal" else round(0.15 * length))
                    rate = n_tokens / seconds
                    fpt = flops_per_token(n_params, config.num_hidden_layers, config.hidden_size, length)
                    peak_mem = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
                    row = [
                        model_name,
                        f"{n_params / 1e6:.1f} M",
                        length,
                        batch,
                        label,
                        f"{rate:,.0f}",
                        f"{peak_mem:.1f}",
                        f"{ratio:.2f}x" if ratio == ratio else "",
                        f"{busy.mean:.0f}%" if busy.samples else "n/a",
                    ]
                    if limits:
                        peak_flops, bandwidth = limits
                        n_batches = n_tokens / (batch * (length + 1))
                        bytes_moved = n_batches * (2 * n_params + batch * (length + 1) * len(char_tokenizer()) * 2 * 2)
                        row += [
                            f"{100 * fpt * rate / peak_flops:.1f}%",
                            f"{100 * bytes_moved / seconds / bandwidth:.1f}%",
                        ]
                    rows.append(row)
                    print(row, flush=True)
    head = ["model", "params", "length", "batch", "mode", "tokens/s", "peak GiB", "vs bare forward", "GPU busy"]
    if limits:
        head += ["of peak bf16 FLOP/s", "of memory bandwidth"]
    print("\n| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(str(x) for x in row) + " |")


if __name__ == "__main__":
    main()
