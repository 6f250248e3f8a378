"""P4: GPU scoring throughput of native HyenaDNA-small and NT-v2-50M-sized models, and Caduceus' scan per token.

Run: .venv/bin/python benchmarks/bench_gpu.py                        (CUDA: the full sizes; Markdown tables)
     .venv/bin/python benchmarks/bench_gpu.py --device cpu --smoke   (any machine: tiny sizes, checks the script)

Models: our own native implementations (gfm_audit.gfm.hyenadna, gfm_audit.gfm.nt_v2), built in-process from a
config.json with the real checkpoints' sizes and random weights (throughput only; no hub), written as hub-layout
folders (the golden fixture's tokenizer files, config.json, model.safetensors under the original weight names)
and loaded through ``architecture: auto`` exactly as a downloaded checkpoint would be.

- HyenaDNA-small-32k: d_model 256, n_layer 4, d_inner 1024, filter_order 64, emb_dim 5, short_filter_order 3,
  hyena_order 2, num_inner_mlps 2, activation_freq 10, max_seq_len 32770, vocab 12 (padded to 16). Source: the
  config.json of LongSafari/hyenadna-small-32k-seqlen-hf as carried by its fine-tuned copies on the hub (e.g.
  tanoManzo/hyenadna-small-32k-seqlen-hf_ft_BioS45_1kbpHG19_DHSs_H3K27AC, "_name_or_path":
  "LongSafari/hyenadna-small-32k-seqlen-hf"); every other key as in tests/fixtures/gfm/hyenadna/config.json.
  Inputs of 1, 4, 16 and 32 kb.
- Nucleotide Transformer v2 50M multi-species: hidden 512, 12 layers, 16 heads, intermediate 2048 (SwiGLU,
  no feed-forward bias), rotary, max_position_embeddings 2050, vocab 4107 (6-mers). Sources: the NT v2 model
  table (Dalla-Torre et al., Nature Methods 2024) for the depth; width, heads and intermediate size as in the hub
  config.json of InstaDeepAI/nucleotide-transformer-v2-100m-multi-species (the same width at 22 layers); the
  50M checkpoint's own values (12 layers, hidden 512, 16 heads, intermediate 2048, rotary, 55,904,972
  parameters at hub revision 81b29e5) as stated in the model card of the public repository
  kurtvalcorza/nucleotide-transformer-genomics-pipeline (MODEL_CARD.md); our model at these
  sizes has exactly 55,904,972 parameters. Every other key as in
  tests/fixtures/gfm/nt_v2/config.json (the 50M checkpoint's keys). Inputs of 1 and 6 kb (167 and 1,001 tokens),
  ``sampled`` masking of 15% of the bases: one forward of a masked copy per masked token.

Each is scored through gfm-audit's scoring path (what a ``score_shard`` job runs once the model is loaded, less
the file writes: chunks tokenised, scored positions, batching, masking, statistics, the reduction to per-window
features, with the next chunk's tokenisation and the last one's reduction in threads as on any GPU) in bf16
autocast, and again with bf16 off, with pinned memory off and with padding to a multiple of 8 off (the GPU-only
ablations). Reported: tokens through the
model per second, peak GPU memory, the time of a bare bf16 forward of the very same batches (already tokenised,
padded, masked and on the device) against the scoring path's (>= 0.9 is the target), the GPU's utilisation
(NVML, sampled every 20 ms) while the scoring path runs, achieved FLOP/s against the GPU's peak dense bf16
FLOP/s and the bytes a forward must move (weights once per batch, logits written and read) against its memory
bandwidth. FLOPs per token: 2 x parameters, plus 4 x layers x length x hidden for attention (NT v2), plus the
FFT long convolution for Hyena (per layer and channel about 10 log2(2L) + 6: two real FFTs of size 2L and a
complex product per token; the filter's own transform is once per batch).

Caduceus: the selective scan of one Mamba direction at the size of caduceus-ps_seqlen-131k_d_model-256_n_layer-16
(d_inner 512, d_state 16), our pure-PyTorch scan (``loop``: one step per position; ``doubling``: the blocked
Hillis-Steele scan that ``auto`` picks on a GPU) beside mamba_ssm's fused CUDA kernel when it imports; a
Caduceus-PS forward runs 64 such scans per token (16 layers x forward and reverse x both strands).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow_scripts"))

import gfm_audit  # noqa: E402,F401  (MKL settings before torch)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from gfm_audit.gfm import registry  # noqa: E402
from gfm_audit.gfm.caduceus_scan import fused_scan_available, selective_scan  # noqa: E402
from gfm_audit.models import ModelSpec, load_tokenizer  # noqa: E402
from gfm_audit.prefetch import InOrder  # noqa: E402
from gfm_audit.privacy.features import BASE_FEATURES  # noqa: E402
from gfm_audit.privacy.score_table import scored_tokens  # noqa: E402
from gfm_audit.privacy.scoring import (  # noqa: E402
    ScoringOptions,
    SeqRecord,
    _feature_rows,
    _load,
    sampled_offsets,
    score_chunks,
    scored_positions,
    window_chunks,
)
from gfm_audit.tokens import encode_many  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "gfm"
FEATURES = [*BASE_FEATURES, "min_k_k0.2", "min_k_pp_k0.2"]

# Dense bf16 tensor-core peak (FLOP/s) and memory bandwidth (B/s) from the vendors' data sheets.
DEVICES = {
    "H200": (989e12, 4.8e12),
    "H100 PCIe": (756e12, 2.0e12),
    "H100": (989e12, 3.35e12),  # SXM
    "A100-SXM4-80GB": (312e12, 2.04e12),
    "A100": (312e12, 1.555e12),
}

# name: (family, sizes, smoke sizes, lengths in bp, smoke lengths)
MODELS = {
    "hyenadna-small-32k": (
        "hyenadna",
        {
            "d_model": 256,
            "n_layer": 4,
            "d_inner": 1024,
            "filter_order": 64,
            "emb_dim": 5,
            "short_filter_order": 3,
            "hyena_order": 2,
            "num_inner_mlps": 2,
            "activation_freq": 10,
            "max_seq_len": 32770,
        },
        {"d_model": 32, "n_layer": 2, "d_inner": 64, "filter_order": 16, "max_seq_len": 2050},
        [1_000, 4_000, 16_000, 32_000],
        [500, 2_000],
    ),
    "nt-v2-50m": (
        "nt_v2",
        {
            "hidden_size": 512,
            "num_hidden_layers": 12,
            "num_attention_heads": 16,
            "intermediate_size": 2048,
            "max_position_embeddings": 2050,
        },
        {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64},
        [1_000, 6_000],
        [300],
    ),
}
# Caduceus-PS 131k: d_model 256, expand 2, d_state 16, 16 layers; 4 scans per layer.
SCAN_SIZE, SCAN_SMOKE = (512, 16), (32, 4)
SCANS_PER_TOKEN = 16 * 4


def device_limits(name: str) -> tuple[float, float] | None:
    for key, limits in DEVICES.items():
        if key in name:
            return limits
    return None


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def build_checkpoint(family: str, sizes: dict, folder: Path) -> dict:
    """A hub-layout folder of ``family`` with these sizes and random weights; returns its config."""
    source = FIXTURES / family
    folder.mkdir(parents=True)
    for file in source.iterdir():
        if file.is_file() and file.suffix not in (".safetensors", ".npz", ".py", ".md"):
            shutil.copy(file, folder / file.name)
    config = json.loads((source / "config.json").read_text()) | sizes
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    torch.manual_seed(0)
    model = registry.family_module(family).build_lm(config, kind=registry.family_module(family).KINDS[0])
    # Tied weights share storage, which safetensors refuses: one copy per name (equal values).
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    return config


def windows(n: int, length: int, rng: np.random.Generator) -> list[SeqRecord]:
    texts = ["".join(rng.choice(list("ACGT"), size=length)) for _ in range(n)]
    return [SeqRecord(f"s{i}", f"s{i}", "window", None, None, t) for i, t in enumerate(texts)]


def through_model(spec: ModelSpec, tokenizer, records: list[SeqRecord]) -> list[int]:
    """Tokens each record sends through the model: once if causal, once per masked copy if masked."""
    encs = encode_many(tokenizer, [r.text for r in records], seq_ids=[r.seq_id for r in records], model=spec.name)
    if spec.kind == "causal":
        return [len(e.ids) for e in encs]
    empty = np.zeros(0, dtype=np.int64)
    out = []
    for r, e in zip(records, encs, strict=True):
        offsets = sampled_offsets(r.window_id, len(r.text), snp_offsets=empty, fraction=spec.mask_fraction, seed=0)
        out.append(len(e.ids) * len(scored_positions(e, spec.kind, masking="sampled", offsets=offsets)))
    return out


def scoring_seconds(spec: ModelSpec, loaded, records: list[SeqRecord], device: str, chunk: int) -> tuple[float, int]:
    """Wall time of what a ``score_shard`` job does with ``records`` once the model is loaded, less the file
    writes: chunks of ``chunk`` sequences tokenised, scored and reduced to the per-window features (on CUDA,
    overlapped as the job overlaps them), and the tokens it sent through the model."""
    seen = loaded.scorer.tokens_seen
    synchronize(device)
    start = time.perf_counter()

    def reduce(part, encodings, positions, stats):
        _feature_rows(part, scored_tokens(part, encodings, positions, stats=stats, snp_offsets={}), FEATURES)

    with InOrder(enabled=device == "cuda") as background:
        parts = window_chunks(records, chunk)
        for scored in score_chunks(spec, loaded, parts, snp_offsets={}, seed=0, progress=False):
            background.submit(reduce, *scored)
    synchronize(device)
    return time.perf_counter() - start, loaded.scorer.tokens_seen - seen


def bare_forward_seconds(spec: ModelSpec, loaded, records: list[SeqRecord], device: str) -> float:
    """A bare forward of the scoring path's own batches, ids already on the device, bf16 autocast on CUDA."""
    scorer, tokenizer = loaded.scorer, loaded.tokenizer
    encs = encode_many(tokenizer, [r.text for r in records], seq_ids=[r.seq_id for r in records], model=spec.name)
    empty = np.zeros(0, dtype=np.int64)
    positions = [
        scored_positions(
            e,
            spec.kind,
            masking=spec.masking,
            offsets=sampled_offsets(r.window_id, len(r.text), snp_offsets=empty, fraction=spec.mask_fraction, seed=0)
            if spec.kind == "masked"
            else None,
        )
        for r, e in zip(records, encs, strict=True)
    ]
    batches = []
    for ids, attention, _ in scorer._batches(encs, positions):
        inputs = {"input_ids": torch.from_numpy(ids).to(device)}
        if spec.kind != "causal" and not attention.all() and scorer.accepts_mask:
            inputs["attention_mask"] = torch.from_numpy(attention).to(device)
        batches.append(inputs)
    model = scorer.model
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
        model(**{k: v[:1] for k, v in batches[0].items()})  # warm-up
        synchronize(device)
        start = time.perf_counter()
        for inputs in batches:
            model(**inputs).logits  # noqa: B018
        synchronize(device)
    return time.perf_counter() - start


class Utilisation:
    """Mean GPU utilisation (%) while the ``with`` block runs: NVML through torch (needs the nvidia-ml-py
    package) sampled every 20 ms, else ``nvidia-smi -lms 20``; no samples (n/a) without either."""

    def __enter__(self):
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._smi = None
        if not torch.cuda.is_available():
            self._thread = threading.Thread(target=lambda: None)
            self._thread.start()
            return self
        try:
            torch.cuda.utilization()
            target = self._sample_nvml
        except Exception:  # no pynvml: nvidia-smi, when there is one, reads the same counter
            target = self._sample_smi
            command = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-lms", "20"]
            try:
                self._smi = subprocess.Popen(
                    [*command, "-i", str(torch.cuda.current_device())],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                )
            except (OSError, RuntimeError):  # no nvidia-smi, or no CUDA device at all
                self._smi = None
        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()
        return self

    def _sample_nvml(self) -> None:
        while not self._stop.wait(0.02):
            self.samples.append(float(torch.cuda.utilization()))

    def _sample_smi(self) -> None:
        if self._smi is None:
            return
        for line in self._smi.stdout:
            if line.strip().isdigit():
                self.samples.append(float(line))

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._smi is not None:
            self._smi.terminate()
            self._smi.wait(timeout=5)
        self._thread.join(timeout=5)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples) if self.samples else float("nan")


def flops_per_token(family: str, config: dict, n_params: int, tokens: int) -> float:
    """Forward FLOPs per token (module docstring): 2 x parameters plus attention or the FFT long convolution."""
    if family == "nt_v2":
        return 2 * n_params + 4 * config["num_hidden_layers"] * tokens * config["hidden_size"]
    channels = config["d_model"] * (config["hyena_order"] - 1)
    return 2 * n_params + config["n_layer"] * channels * (10 * math.log2(2 * tokens) + 6)


def model_rows(args, device: str, limits, tmp: Path) -> list[list]:
    rng = np.random.default_rng(0)
    tokens_per_batch = 4_000 if args.smoke else 131_072
    masked_budget = 20_000 if args.smoke else 8_000_000  # tokens through the model per masked measurement
    rows = []
    for name, (family, sizes, smoke_sizes, lengths, smoke_lengths) in MODELS.items():
        config = build_checkpoint(family, sizes | (smoke_sizes if args.smoke else {}), tmp / name)
        kind = registry.family_module(family).KINDS[0]
        spec = ModelSpec(name, str(tmp / name), kind, masking="sampled", mask_fraction=0.15)
        for length in smoke_lengths if args.smoke else lengths:
            if kind == "causal":
                batch = max(1, tokens_per_batch // length)
                # A job's chunk is 1,024 sequences (scoring.chunk_size); about 1 M tokens at any length here, and
                # 8 chunks, so the first chunk's tokenisation and the last one's reduction (which nothing can
                # overlap) weigh as in a shard of 8 chunks.
                chunk = max(batch, (4_000 if args.smoke else 1_048_576) // length)
                records = windows(8 * chunk, length, rng)
            else:
                batch = 64 if args.smoke else 256
                pool = windows(64, length, rng)
                cost = np.cumsum(through_model(spec, load_tokenizer(spec), pool))
                n = int(np.searchsorted(cost, masked_budget)) + 1
                records = windows(n, length, rng) if n > len(pool) else pool[:n]
                chunk = -(-len(records) // 8)
            for label, options in (
                ("bf16 + pinned", ScoringOptions()),
                ("fp32", replace(ScoringOptions(), bf16_autocast=False)),
                ("bf16, unpinned", replace(ScoringOptions(), pin_memory=False)),
                ("bf16, no pad to 8", replace(ScoringOptions(), pad_multiple=1)),
            ):
                if device == "cpu" and label != "bf16 + pinned":
                    continue  # the options differ only on CUDA
                loaded = _load(spec, batch_size=batch, device=device, options=options)
                n_params = sum(p.numel() for p in loaded.scorer.model.parameters())
                # Warm-up at full batch size: kernels, the allocator and cuFFT's plans for these shapes.
                scoring_seconds(spec, loaded, records[: batch if kind == "causal" else 4], device, chunk)
                if device == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                # Best of two: the first full-size run still grows the pinned-memory pool and the allocator.
                with Utilisation() as busy:
                    runs = [scoring_seconds(spec, loaded, records, device, chunk) for _ in range(2)]
                seconds, n_tokens = min(runs)
                # Read before the bare forward, whose batches all sit on the device at once.
                peak_mem = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
                ratio = float("nan")
                if label == "bf16 + pinned":
                    ratio = bare_forward_seconds(spec, loaded, records, device) / seconds
                rate = n_tokens / seconds
                tokens_per_seq = len(encode_many(loaded.tokenizer, [records[0].text], seq_ids=["x"])[0].ids)
                fpt = flops_per_token(family, config, n_params, tokens_per_seq)
                row = [
                    f"{name} (smoke sizes)" if args.smoke else name,
                    f"{n_params / 1e6:.1f} M",
                    f"{length:,} bp ({tokens_per_seq} tokens)",
                    batch,
                    label if device == "cuda" else "default (CPU, fp32)",
                    f"{rate:,.0f}",
                    f"{peak_mem:.1f}",
                    f"{ratio:.2f}x" if ratio == ratio else "",
                    f"{busy.mean:.0f}%" if busy.samples else "n/a",
                ]
                with torch.inference_mode():
                    probe = loaded.scorer.model(input_ids=torch.ones(1, 4, dtype=torch.long, device=device))
                if limits:
                    peak_flops, bandwidth = limits
                    n_batches = n_tokens / (batch * tokens_per_seq)
                    bytes_moved = n_batches * 2 * n_params + n_tokens * probe.logits.shape[-1] * 2 * 2
                    row += [
                        f"{100 * fpt * rate / peak_flops:.1f}%",
                        f"{100 * bytes_moved / seconds / bandwidth:.1f}%",
                    ]
                rows.append(row)
                print(row, flush=True)
                del loaded, probe
                if device == "cuda":
                    torch.cuda.empty_cache()
    return rows


def scan_rows(args, device: str) -> list[list]:
    """Microseconds per token of one selective scan, per method; median of 3 after a warm-up."""
    d_inner, d_state = SCAN_SMOKE if args.smoke else SCAN_SIZE
    shapes = [(1, 256)] if args.smoke else [(4, 1_024), (4, 16_384)]
    g = torch.Generator().manual_seed(0)
    rows = []
    for batch, length in shapes:
        t = {
            "u": torch.randn(batch, d_inner, length, generator=g),
            "delta": torch.randn(batch, d_inner, length, generator=g),
            "A": -torch.exp(torch.randn(d_inner, d_state, generator=g)),
            "B": torch.randn(batch, d_state, length, generator=g),
            "C": torch.randn(batch, d_state, length, generator=g),
            "D": torch.randn(d_inner, generator=g),
            "z": torch.randn(batch, d_inner, length, generator=g),
            "delta_bias": torch.randn(d_inner, generator=g),
        }
        t = {k: v.to(device) for k, v in t.items()}
        kw = {k: t[k] for k in ("B", "C", "D", "z", "delta_bias")}
        methods = ["loop", "doubling"] + (["fused"] if device == "cuda" and fused_scan_available() else [])
        for method in methods:
            times = []
            with torch.inference_mode():
                for k in range(4):
                    synchronize(device)
                    start = time.perf_counter()
                    selective_scan(t["u"], t["delta"], t["A"], method=method, **kw)
                    synchronize(device)
                    if k:  # the first is a warm-up
                        times.append(time.perf_counter() - start)
            us = statistics.median(times) / (batch * length) * 1e6
            rows.append([f"{d_inner} x {d_state}", batch, length, method, f"{us:.3f}", f"{us * SCANS_PER_TOKEN:.1f}"])
            print(rows[-1], flush=True)
    return rows


def table(head: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(str(x) for x in row) + " |" for row in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    parser.add_argument("--smoke", "--quick", action="store_true", help="tiny sizes, to check the script runs")
    parser.add_argument("--skip-models", action="store_true", help="only the Caduceus scan")
    args = parser.parse_args()
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is visible")
    if args.smoke or device == "cpu":
        torch.set_num_threads(1)
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    limits = device_limits(name) if device == "cuda" else None
    print(f"device: {name}; torch {torch.__version__}; mamba_ssm fused scan importable: {fused_scan_available()}")
    rows = []
    if not args.skip_models:
        with tempfile.TemporaryDirectory() as tmp:
            rows = model_rows(args, device, limits, Path(tmp))
    scans = scan_rows(args, device)
    head = ["model", "params", "length", "batch", "mode", "tokens/s", "peak GiB", "bare / ours", "GPU busy"]
    if limits:
        head += ["of peak bf16 FLOP/s", "of memory bandwidth"]
    if rows:
        print("\n" + table(head, rows))
    print(
        "\nCaduceus selective scan (one direction of one layer; wall time"
        f"{' after a CUDA synchronise' if device == 'cuda' else ', one CPU thread'})\n"
    )
    print(
        table(
            [
                "d_inner x d_state",
                "batch",
                "length",
                "method",
                "us per token",
                "x 64 scans: us per token of a PS model",
            ],
            scans,
        )
    )


if __name__ == "__main__":
    main()
