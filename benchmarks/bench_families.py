"""P1 per native family: gfm-audit's scoring path against a bare batched forward of the same module.

Run: .venv/bin/python benchmarks/bench_families.py [--tokens 60000] [--length 498] [--repeat 3]

Each family's tiny golden checkpoint (tests/fixtures/gfm/<family>/) scores real demo windows twice, one CPU
thread: through ``Scorer.score`` (what ``score_sequences`` runs once the model is loaded: batching, masking,
log-softmax statistics, bookkeeping) and through a bare loop that only calls the module's forward on the very
same batches (for a masked model: the same masked copies, ``sampled`` masking of 15% of the bases). The ratio
bare / ours is the share of the time that is the model itself; 1.0 means no overhead. The fixtures are tiny
(hidden 16-64, 2 layers), so this is the worst case for the ratio: real checkpoints spend far more time in the
forward pass.

Workload: every family gets the same budget of tokens through the model (``--tokens``; a masked model forwards
one copy of the window per masked token, so a character-level masked model such as Caduceus uses its budget on
few windows, a causal one on many), taking windows in a fixed order until the budget is reached (at least
one). Timings are the median of ``--repeat`` runs of each path (wall time; ours and bare alternate, so a load
change hits both); the last column is the same ratio in process CPU time, which a shared machine disturbs less.
Each family runs in a fresh process.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow_scripts"))

import gfm_audit  # noqa: E402,F401  (MKL settings before torch)
import numpy as np  # noqa: E402
import pysam  # noqa: E402
import torch  # noqa: E402
from gfm_audit.gfm import registry  # noqa: E402
from gfm_audit.gfm.loader import accepts_attention_mask  # noqa: E402
from gfm_audit.models import ModelSpec, load_model, load_tokenizer  # noqa: E402
from gfm_audit.privacy.scoring import Scorer, sampled_offsets, scored_positions  # noqa: E402
from gfm_audit.tokens import encode_many  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "gfm"


def windows(n: int, length: int, seed: int = 0) -> list[str]:
    with pysam.FastaFile(str(REPO / "resources/demo/z.fa")) as fa:
        seq = fa.fetch("z").upper()
    starts = np.random.default_rng(seed).integers(0, len(seq) - length, n * 4)
    out = [seq[s : s + length] for s in starts if "N" not in seq[s : s + length]]
    return out[:n]


def median_times(fns: list, repeat: int) -> list[tuple[float, float]]:
    """Median (wall, process CPU) time of each function over ``repeat`` rounds; the functions alternate within
    a round. CPU time counts every thread of the process (the scoring path's prefetch thread too)."""
    times: list[list[tuple[float, float]]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, out in zip(fns, times, strict=True):
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            out.append((time.perf_counter() - wall, time.process_time() - cpu))
    return [(statistics.median(w for w, _ in t), statistics.median(c for _, c in t)) for t in times]


def through_model(enc, kind: str, positions: np.ndarray) -> int:
    """Tokens one window sends through the model: once if causal, once per masked copy if masked."""
    return len(enc.ids) * (1 if kind == "causal" else len(positions))


def bench(
    family: str, seqs: list[str], *, batch_size: int, repeat: int, tokens: int, folder: str | None = None
) -> dict:
    """One family's row; ``folder``: another checkpoint of the family than its golden fixture."""
    kind = registry.family_module(family).KINDS[0]
    spec = ModelSpec(family, folder or str(FIXTURES / family), kind, masking="sampled", mask_fraction=0.15)
    model, tokenizer = load_model(spec), load_tokenizer(spec)
    ids = [f"w{i}" for i in range(len(seqs))]
    encodings = encode_many(tokenizer, seqs, seq_ids=ids, model=family)
    empty = np.zeros(0, dtype=np.int64)
    positions = [
        scored_positions(
            e,
            kind,
            masking="sampled",
            offsets=sampled_offsets(w, len(s), snp_offsets=empty, fraction=0.15, seed=0) if kind == "masked" else None,
        )
        for e, w, s in zip(encodings, ids, seqs, strict=True)
    ]
    # The same budget of tokens through the model for every family: the first windows that reach it.
    budget = np.cumsum([through_model(e, kind, p) for e, p in zip(encodings, positions, strict=True)])
    n = min(len(seqs), int(np.searchsorted(budget, tokens)) + 1)
    encodings, positions = encodings[:n], positions[:n]
    scorer = Scorer(
        model,
        kind,
        pad_id=tokenizer.pad_token_id or 0,
        mask_id=tokenizer.mask_token_id,
        batch_size=batch_size,
        device="cpu",
    )
    batches = list(scorer._batches(encodings, positions))
    mask = accepts_attention_mask(model)

    def bare(chosen: list | None = None) -> None:
        with torch.inference_mode():
            for x, a, _ in batches if chosen is None else chosen:
                inputs = {"input_ids": torch.from_numpy(x)}
                if mask and kind != "causal" and not a.all():
                    inputs["attention_mask"] = torch.from_numpy(a)
                model(**inputs).logits  # noqa: B018

    # Warm-up of both paths (allocator, oneDNN kernels): otherwise the first timed run, ours, pays for it.
    scorer.score(encodings[:1], positions[:1])
    bare(batches[:1])
    (ours, ours_cpu), (plain, plain_cpu) = median_times([lambda: scorer.score(encodings, positions), bare], repeat)
    n_tokens = sum(int(a.sum()) for _, a, _ in batches)
    return {
        "family": family,
        "kind": kind,
        "windows": n,
        "forwards": sum(len(x) for x, _, _ in batches),
        "tokens": n_tokens,
        "ours_s": ours,
        "bare_s": plain,
        "us_per_token": ours / n_tokens * 1e6,
        "ratio": plain / ours,
        "cpu_ratio": plain_cpu / ours_cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=60_000, help="tokens through the model per family")
    parser.add_argument("--windows", type=int, default=200, help="windows drawn (the budget takes a prefix)")
    parser.add_argument("--length", type=int, default=498, help="bp per window (498 = 83 six-mers)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--families", nargs="*", default=None, help="default: every available family")
    parser.add_argument("--folder", default=None, help="with one family: score this checkpoint, not the fixture")
    parser.add_argument("--row-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    seqs = windows(args.windows, args.length)
    if args.row_only:
        r = bench(
            args.families[0],
            seqs,
            batch_size=args.batch_size,
            repeat=args.repeat,
            tokens=args.tokens,
            folder=args.folder,
        )
        print(
            f"| {r['family']} | {r['kind']} | {r['windows']} | {r['forwards']} | {r['tokens']} | "
            f"{r['ours_s']:.3f} | {r['bare_s']:.3f} | {r['us_per_token']:.1f} | {r['ratio']:.2f} | "
            f"{r['cpu_ratio']:.2f} |"
        )
        return
    print(
        f"windows of {args.length} bp, about {args.tokens} tokens through the model per family, batch "
        f"{args.batch_size}, 1 CPU thread, median of {args.repeat}\n"
    )
    print(
        "| family | kind | windows | sequences through the model | tokens | ours (s) | bare forward (s) | "
        "ours (us/token) | bare / ours | bare / ours (CPU time) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    families = args.families or registry.available_families()
    if len(families) > 1:
        # Each family in a process of its own: in one process a family's timings depended on the families run
        # before it (NT v2: 0.87x after the others, 0.98x alone), through state no family should inherit.
        for family in families:
            command = [sys.executable, __file__, "--families", family, "--row-only"]
            command += ["--tokens", str(args.tokens), "--windows", str(args.windows), "--length", str(args.length)]
            command += ["--batch-size", str(args.batch_size), "--repeat", str(args.repeat)]
            print(subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip(), flush=True)
        return
    r = bench(families[0], seqs, batch_size=args.batch_size, repeat=args.repeat, tokens=args.tokens, folder=args.folder)
    print(
        f"| {r['family']} | {r['kind']} | {r['windows']} | {r['forwards']} | {r['tokens']} | {r['ours_s']:.3f} | "
        f"{r['bare_s']:.3f} | {r['us_per_token']:.1f} | {r['ratio']:.2f} | {r['cpu_ratio']:.2f} |",
        flush=True,
    )


if __name__ == "__main__":
    main()
