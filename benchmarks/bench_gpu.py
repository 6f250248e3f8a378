"""P4: GPU scoring throughput of native HyenaDNA-small, NT-v2-50M, Evo-2-1B and NT-v3-100M-sized models, long-context
memory of the last two, and Caduceus' scan per token.

Run: .venv/bin/python benchmarks/bench_gpu.py                        (CUDA: the full sizes; Markdown tables)
     .venv/bin/python benchmarks/bench_gpu.py --device cpu --smoke   (any machine: tiny sizes, checks the script)
     --models evo2-1b-8k ntv3-100m-pre picks rows; --skip-scan leaves out the Caduceus scan.

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
- Evo 2 1B base (``evo2-1b-8k``; gfm_audit.gfm.evo2): every size of evo2/configs/evo2-1b-8k.yml of
  ArcInstitute/evo2 at commit 53f1959 (the file whose sha256, 11ff03d4...3ce4b3, tests/fixtures/gfm/evo2/README.md
  records): hidden 1920, 25 blocks (Hyena-SE 0, 4, 7, 11, 14, 18, 21; Hyena-MR 1, 5, 8, 12, 15, 19, 22, 128 taps;
  Hyena-LI 2, 6, 9, 13, 16, 20, 23, state_size 16; attention 3, 10, 17, 24 with 15 heads), filter groups 128,
  inner MLP 5120, vocab 512, tied head; 1,107,989,760 parameters in our model. Every other key as in that file
  (the golden fixture's YAML, which follows evo2-7b-1m.yml, less its two rotary interpolation keys: then the
  keys and values are exactly the 1B file's). Written as the evo2 package downloads it: the YAML and a .pt of
  ``torch.save(state_dict())`` under vortex's names, no config.json. ``max_seqlen`` (8,192) is raised to the
  longest window measured, as it bounds only the input length. Inputs of 1, 8 and 32 kb (one token per base);
  chunks of 131,072 tokens (CHUNK_TOKENS); bf16 + pinned only (ABLATED).
- NT v3 100M pre-trained (``ntv3-100m-pre``; gfm_audit.gfm.nt_v3): the sizes of the hub config.json of
  InstaDeepAI/NTv3_100M_pre as carried in the public repository hanyuchenBio/KPKTP (NTv3_100M_pre/config.json,
  commit 2dbc679; not read from the hub here): num_downsamples 7, token_embed_dim 16,
  conv_init_embed_dim and embed_dim 768 (towers 768 wide throughout), 6 layers, 12 heads of key_size 64,
  ffn_embed_dim 3072; 106,463,419 parameters in our model (the repository's table calls it 100M). Every other key
  as in tests/fixtures/gfm/nt_v3/config.json (the 8M checkpoint's keys). Inputs of 1 and 8 kb (multiples of 128),
  ``sampled`` masking of 15%, up to 256 masked copies per batch (64 at 8 kb); bf16 + pinned only.

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
complex product per token; the filter's own transform is once per batch); Evo 2 and NT v3 as flops_per_token says.

Long-context memory (Evo 2 and NT v3, MEMORY_LENGTHS): one window per batch through the same scoring path, bf16
autocast, at 1 kb to 128 kb; torch.cuda.max_memory_allocated after each length (the peak statistics reset and the
cache emptied before it), the weights resident before it, and the peak above the weights per token. NT v3 scores 4
masked copies per window there (a peak of one forward, whatever the count).

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
    # Evo 2 1B base: every size of evo2/configs/evo2-1b-8k.yml (module docstring); max_seqlen raised in checkpoint_for.
    "evo2-1b-8k": (
        "evo2",
        {
            "model_name": "shc-evo2-1b-8k-2T-v2",
            "vocab_size": 512,
            "hidden_size": 1920,
            "num_filters": 1920,
            "attn_layer_idxs": [3, 10, 17, 24],
            "hcl_layer_idxs": [2, 6, 9, 13, 16, 20, 23],
            "hcm_layer_idxs": [1, 5, 8, 12, 15, 19, 22],
            "hcs_layer_idxs": [0, 4, 7, 11, 14, 18, 21],
            "hcm_filter_length": 128,
            "hcl_filter_groups": 1920,
            "hcm_filter_groups": 128,
            "hcs_filter_groups": 128,
            "hcs_filter_length": 7,
            "num_layers": 25,
            "short_filter_length": 3,
            "num_attention_heads": 15,
            "state_size": 16,
            "rotary_emb_base": 10000,
            "inner_size_multiple_of": 16,
            "inner_mlp_size": 5120,
            "max_seqlen": 8192,
        },
        # The golden fixture's tiny sizes: one block of each kind.
        {
            "hidden_size": 32,
            "num_filters": 32,
            "attn_layer_idxs": [3],
            "hcl_layer_idxs": [2],
            "hcm_layer_idxs": [1],
            "hcs_layer_idxs": [0, 4],
            "hcl_filter_groups": 32,
            "hcm_filter_groups": 4,
            "hcs_filter_groups": 4,
            "num_layers": 5,
            "num_attention_heads": 4,
            "state_size": 8,
            "inner_mlp_size": 48,
        },
        [1_024, 8_192, 32_768],
        [256, 1_024],
    ),
    # NT v3 100M pre-trained (InstaDeepAI/NTv3_100M_pre's config.json; module docstring).
    "ntv3-100m-pre": (
        "nt_v3",
        {
            "num_downsamples": 7,
            "token_embed_dim": 16,
            "conv_init_embed_dim": 768,
            "embed_dim": 768,
            "ffn_embed_dim": 3072,
            "num_layers": 6,
            "attention_heads": 12,
            "key_size": 64,
        },
        # The golden fixture's tiny sizes (inputs a multiple of 8).
        {
            "num_downsamples": 3,
            "token_embed_dim": 4,
            "conv_init_embed_dim": 8,
            "embed_dim": 16,
            "ffn_embed_dim": 32,
            "num_layers": 2,
            "attention_heads": 2,
            "key_size": 8,
        },
        [1_024, 8_192],
        [256],
    ),
}
# The fp32, unpinned and unpadded ablations for the two small models only: for a 1B model they would take most of
# the run, and what they measure (autocast, copies, padding) is the same code path for every family.
ABLATED = ("hyenadna-small-32k", "nt-v2-50m")
# Tokens per chunk of the causal rows (8 chunks per run): a job's chunk is about 1 M tokens, but a 1B model runs
# some 20 times fewer tokens per second than HyenaDNA-small, so 8 M tokens per run would take minutes per length.
CHUNK_TOKENS = {"evo2-1b-8k": 131_072}
# Long-context memory: peak GPU memory of scoring one window (batch 1) per length, (lengths, smoke lengths).
MEMORY_LENGTHS = {
    "evo2-1b-8k": ([1_024, 8_192, 32_768, 65_536, 131_072], [256, 1_024]),
    "ntv3-100m-pre": ([1_024, 8_192, 32_768, 131_072], [256, 1_024]),
}
# Keys of the fixture's YAML (which follows evo2-7b-1m.yml) that evo2-1b-8k.yml does not have: with them left out,
# the written YAML has exactly the 1B file's keys and values.
EVO2_7B_ONLY = ("rotary_emb_scaling_factor", "use_interpolated_rotary_pos_emb")
# Masked copies scored per window in the memory rows: the peak is one forward's, whatever the number of copies.
MEMORY_COPIES = 4
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
    if family == "evo2":
        return build_evo2_checkpoint(sizes, folder)
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


def evo2_config(sizes: dict) -> dict:
    """The YAML of an Evo 2 1B-layout checkpoint: the released switches (the fixture's, less EVO2_7B_ONLY), these
    sizes."""
    import yaml

    base = yaml.safe_load((FIXTURES / "evo2" / "evo2-tiny.yml").read_text())
    return {k: v for k, v in base.items() if k not in EVO2_7B_ONLY} | sizes


def build_evo2_checkpoint(sizes: dict, folder: Path) -> dict:
    """An Evo 2 folder as the evo2 package downloads it: the model's YAML and a ``.pt`` written with ``torch.save``
    of the state dict under the original's names (the golden fixture's layout); returns the YAML's config."""
    import yaml

    folder.mkdir(parents=True)
    config = evo2_config(sizes)
    (folder / "evo2-1b-8k.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    torch.manual_seed(0)
    model = registry.family_module("evo2").build_lm(config)
    torch.save(model.state_dict(), folder / "evo2_1b_base.pt")
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


def fft_conv_flops(tokens: int) -> float:
    """Per channel and token, a causal convolution by FFT of size 2L: two real FFTs and a complex product."""
    return 10 * math.log2(2 * tokens) + 6


def flops_per_token(family: str, config: dict, n_params: int, tokens: int) -> float:
    """Forward FLOPs per token (module docstring): 2 x parameters plus attention or the FFT long convolution.

    - HyenaDNA: 2P + n_layer x d_model (hyena_order - 1) x (10 log2(2L) + 6).
    - NT v2: 2P + 4 x layers x L x hidden (QK^T and the weighted sum of V).
    - Evo 2: 2P + (Hyena-MR + Hyena-LI blocks) x D x (10 log2(2L) + 6) (both long convolutions run by FFT; the
      LI filter's own taps, D x state_size x L, once per batch) + Hyena-SE blocks x 2 x 7 x D (the 7-tap FIR,
      whose hcs_filter_groups filters each serve D / groups channels) + attention blocks x 4 x L x D (a causal
      kernel skips about half of it).
    - NT v3: not 2P, as each weight works at its own resolution. Per base, with widths f_0 .. f_n of the towers
      (n = num_downsamples), D = embed_dim, F = ffn_embed_dim, L' = L / 2^n: the stem 2 x 15 x token_embed_dim x
      f_0; each down block i, at L / 2^i positions, 2 x (5 f_i f_(i+1) + f_(i+1)^2) / 2^i; each up block the
      mirror, 2 x (5 f_(i+1) f_i + f_i^2) / 2^i; the transformer on L': layers x (2 (4 D^2 + 3 D F) + 4 L' D) /
      2^n (projections, SwiGLU, attention); the LM head 2 x f_0 x alphabet.
    """
    if family == "nt_v2":
        return 2 * n_params + 4 * config["num_hidden_layers"] * tokens * config["hidden_size"]
    if family == "evo2":
        d = config["hidden_size"]
        long_convs = len(config["hcm_layer_idxs"]) + len(config["hcl_layer_idxs"])
        return (
            2 * n_params
            + long_convs * d * fft_conv_flops(tokens)
            + len(config["hcs_layer_idxs"]) * 2 * config["hcs_filter_length"] * d
            + len(config["attn_layer_idxs"]) * 4 * tokens * d
        )
    if family == "nt_v3":
        from gfm_audit.gfm import nt_v3

        cfg = nt_v3._config(config)
        f, n = cfg.filters, int(cfg.num_downsamples)
        d, ffn = int(cfg.embed_dim), int(cfg.ffn_embed_dim)
        towers = sum(
            2 * (5 * f[i] * f[i + 1] + f[i + 1] ** 2 + 5 * f[i + 1] * f[i] + f[i] ** 2) / 2**i for i in range(n)
        )
        compressed = tokens / 2**n
        transformer = int(cfg.num_layers) * (2 * (4 * d * d + 3 * d * ffn) + 4 * compressed * d) / 2**n
        edges = 2 * 15 * int(cfg.token_embed_dim) * f[0] + 2 * f[0] * int(cfg.alphabet_size)
        return towers + transformer + edges
    channels = config["d_model"] * (config["hyena_order"] - 1)
    return 2 * n_params + config["n_layer"] * channels * fft_conv_flops(tokens)


BUILT: dict[Path, dict] = {}


def selected(args) -> dict:
    """The MODELS rows that --models names (all by default)."""
    return {name: MODELS[name] for name in args.models} if args.models else dict(MODELS)


def checkpoint_for(name: str, args, tmp: Path) -> tuple[str, dict, ModelSpec]:
    """Build (once per run) the folder of row ``name`` at its full or smoke sizes; its family, config and spec."""
    family, sizes, smoke_sizes, lengths, smoke_lengths = MODELS[name]
    folder = tmp / name
    sizes = sizes | (smoke_sizes if args.smoke else {})
    if family == "evo2":
        # max_seqlen bounds only the input length (rotary positions, no table): raised to the longest window
        # measured so that scoring takes the long-context ones; past 8,192 the 1B model extrapolates, which does
        # not change its cost.
        memory, smoke_memory = MEMORY_LENGTHS.get(name, ([], []))
        longest = max(smoke_lengths + smoke_memory if args.smoke else lengths + memory)
        sizes = sizes | {"max_seqlen": max(sizes["max_seqlen"], longest)}
    if folder not in BUILT:  # the throughput and the memory tables share one folder
        BUILT[folder] = build_checkpoint(family, sizes, folder)
    config = BUILT[folder]
    kind = registry.family_module(family).KINDS[0]
    return family, config, ModelSpec(name, str(folder), kind, masking="sampled", mask_fraction=0.15)


def model_rows(args, device: str, limits, tmp: Path) -> list[list]:
    rng = np.random.default_rng(0)
    tokens_per_batch = 4_000 if args.smoke else 131_072
    masked_budget = 20_000 if args.smoke else 8_000_000  # tokens through the model per masked measurement
    rows = []
    for name, (_, _, _, lengths, smoke_lengths) in selected(args).items():
        family, config, spec = checkpoint_for(name, args, tmp)
        kind = spec.kind
        for length in smoke_lengths if args.smoke else lengths:
            if kind == "causal":
                batch = max(1, tokens_per_batch // length)
                # A job's chunk is 1,024 sequences (scoring.chunk_size); about 1 M tokens at any length here, and
                # 8 chunks, so the first chunk's tokenisation and the last one's reduction (which nothing can
                # overlap) weigh as in a shard of 8 chunks.
                chunk_tokens = 4_000 if args.smoke else CHUNK_TOKENS.get(name, 1_048_576)
                chunk = max(batch, chunk_tokens // length)
                records = windows(8 * chunk, length, rng)
            else:
                # Up to 256 masked copies per batch and 524,288 tokens (NT v2's 1,001-token windows: 256; NT v3's
                # 8 kb: 64), so that a 768-wide U-Net's activations at full resolution stay well within the GPU.
                pool = windows(64, length, rng)
                tokenizer = load_tokenizer(spec)
                n_ids = len(encode_many(tokenizer, [pool[0].text], seq_ids=["x"])[0].ids)
                batch = 64 if args.smoke else min(256, max(1, 4 * tokens_per_batch // n_ids))
                cost = np.cumsum(through_model(spec, tokenizer, pool))
                n = int(np.searchsorted(cost, masked_budget)) + 1
                records = windows(n, length, rng) if n > len(pool) else pool[:n]
                chunk = -(-len(records) // 8)
            for label, options in (
                ("bf16 + pinned", ScoringOptions()),
                ("fp32", replace(ScoringOptions(), bf16_autocast=False)),
                ("bf16, unpinned", replace(ScoringOptions(), pin_memory=False)),
                ("bf16, no pad to 8", replace(ScoringOptions(), pad_multiple=1)),
            ):
                if label != "bf16 + pinned" and (device == "cpu" or name not in ABLATED):
                    continue  # the options differ only on CUDA; ablations for the small models only (ABLATED)
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
                # NT v3 refuses an input shorter than one down-sampling block.
                probe_length = max(4, getattr(loaded.scorer.model, "min_input_tokens", 4))
                with torch.inference_mode():
                    probe = loaded.scorer.model(input_ids=torch.ones(1, probe_length, dtype=torch.long, device=device))
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


def memory_rows(args, device: str, tmp: Path) -> list[list]:
    """Peak memory of scoring one window (batch 1, bf16 autocast on CUDA) as the length grows, per MEMORY_LENGTHS
    row: torch.cuda.max_memory_allocated after the scoring path, its statistics and the reduction, reset before
    each length; what it adds to the weights, per token. On the CPU the path runs and no memory is read."""
    rng = np.random.default_rng(1)
    rows = []
    for name in selected(args):
        if name not in MEMORY_LENGTHS:
            continue
        _, _, spec = checkpoint_for(name, args, tmp)
        lengths, smoke_lengths = MEMORY_LENGTHS[name]
        loaded = _load(spec, batch_size=1, device=device, options=ScoringOptions())
        for length in smoke_lengths if args.smoke else lengths:
            # A few masked copies: at batch 1 the peak is one forward's, whatever the number of copies.
            row_spec = replace(spec, mask_fraction=MEMORY_COPIES / length) if spec.kind == "masked" else spec
            records = windows(1, length, rng)
            if device == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
                resident = torch.cuda.memory_allocated()
            try:
                seconds, _ = scoring_seconds(row_spec, loaded, records, device, 1)
            except torch.OutOfMemoryError:
                rows.append([name, f"{length:,} bp", "out of memory", "", "", ""])
                print(rows[-1], flush=True)
                break  # the longer windows need more
            tokens = len(encode_many(loaded.tokenizer, [records[0].text], seq_ids=["x"])[0].ids)
            if device == "cuda":
                peak = torch.cuda.max_memory_allocated()
                above = (peak - resident) / tokens
                cells = [f"{peak / 2**30:.2f}", f"{resident / 2**30:.2f}", f"{above / 2**10:.1f}"]
            else:
                cells = ["n/a", "n/a", "n/a"]
            rows.append([f"{name} (smoke sizes)" if args.smoke else name, f"{length:,} bp ({tokens} tokens)", *cells])
            rows[-1].append(f"{seconds:.2f}")
            print(rows[-1], flush=True)
        del loaded
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    parser.add_argument("--smoke", "--quick", action="store_true", help="tiny sizes, to check the script runs")
    parser.add_argument("--skip-models", action="store_true", help="only the Caduceus scan")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), help="only these rows (default: all)")
    parser.add_argument("--skip-scan", action="store_true", help="no Caduceus scan")
    args = parser.parse_args(argv)
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is visible")
    if args.smoke or device == "cpu":
        torch.set_num_threads(1)
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    limits = device_limits(name) if device == "cuda" else None
    print(f"device: {name}; torch {torch.__version__}; mamba_ssm fused scan importable: {fused_scan_available()}")
    rows, memory = [], []
    if not args.skip_models:
        with tempfile.TemporaryDirectory() as tmp:
            rows = model_rows(args, device, limits, Path(tmp))
            memory = memory_rows(args, device, Path(tmp))
    scans = [] if args.skip_scan else scan_rows(args, device)
    head = ["model", "params", "length", "batch", "mode", "tokens/s", "peak GiB", "bare / ours", "GPU busy"]
    if limits:
        head += ["of peak bf16 FLOP/s", "of memory bandwidth"]
    if rows:
        print("\n" + table(head, rows))
    if memory:
        print("\nLong-context memory: one window per batch, scoring path, bf16 autocast on CUDA\n")
        print(
            table(
                ["model", "length", "peak GiB", "resident before (weights) GiB", "KiB per token above it", "seconds"],
                memory,
            )
        )
    if not scans:
        return
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
