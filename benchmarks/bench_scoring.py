"""P1: scoring throughput against a bare forward pass and a per-sequence loop, side by side.

Run: .venv/bin/python benchmarks/bench_scoring.py [--sequences N]
Every figure is a ratio of two timings taken in this one run on the same inputs.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow_scripts"))

import gfm_audit  # noqa: E402,F401  (MKL settings before torch)
import numpy as np  # noqa: E402
import pysam  # noqa: E402
import torch  # noqa: E402
from gfm_audit.char_lm import save_char_causal_lm, save_char_masked_lm  # noqa: E402
from gfm_audit.models import ModelSpec, load_model, load_tokenizer  # noqa: E402
from gfm_audit.privacy.scoring import ScoringOptions, SeqRecord, sampled_offsets, score_sequences  # noqa: E402


def demo_sequences(n: int, length: int, rng: np.random.Generator, jitter: int = 0) -> list[str]:
    with pysam.FastaFile(str(REPO / "resources/demo/z.fa")) as fa:
        seq = fa.fetch("z").upper()
    starts = rng.integers(0, len(seq) - length - jitter, n)
    lengths = length + (rng.integers(-jitter, jitter + 1, n) if jitter else np.zeros(n, int))
    return [seq[s : s + k] for s, k in zip(starts, lengths, strict=True)]


def timed(fn, repeat: int = 2) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def bare_forward(model, tokenizer, texts, batch_size):
    ids = [tokenizer(t)["input_ids"] for t in texts]
    batches = [torch.tensor(ids[i : i + batch_size]) for i in range(0, len(ids), batch_size)]

    def run():
        with torch.inference_mode():
            for x in batches:
                model(input_ids=x)

    return run


def per_sequence_causal(model, tokenizer, texts):
    """What the published tools do: batch 1, one .item() per token."""

    def run():
        with torch.no_grad():
            for t in texts:
                ids = torch.tensor([tokenizer(t)["input_ids"]])
                logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1], -1)
                _ = [logp[i, ids[0, i + 1]].item() for i in range(ids.shape[1] - 1)]

    return run


def per_sequence_masked(model, tokenizer, texts, positions):
    def run():
        with torch.no_grad():
            for t, pos in zip(texts, positions, strict=True):
                ids = torch.tensor([tokenizer(t)["input_ids"]])
                for p in pos:
                    x = ids.clone()
                    x[0, p] = tokenizer.mask_token_id
                    _ = torch.log_softmax(model(input_ids=x).logits[0, p], -1)[ids[0, p]].item()

    return run


def records(texts):
    return [SeqRecord(f"s{i}", f"s{i}", "window", None, None, t) for i, t in enumerate(texts)]


def float_storage(table, tmp: str) -> tuple[float, float, float]:
    """(in-memory bytes, parquet bytes, write time), each float32 / float16, for the same per-token table.

    Parquet dictionary-encodes repetitive values, so on an untrained model its ratio says little; the
    in-memory ratio is what a reader of the scores holds."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    wide = table
    for name in ("token_logprob", "token_mean", "token_std"):
        i = wide.schema.get_field_index(name)
        wide = wide.set_column(
            i, pa.field(name, pa.list_(pa.float32())), wide.column(name).cast(pa.list_(pa.float32()))
        )
    sizes, times = [], []
    for t, name in ((wide, "f32"), (table, "f16")):
        path = Path(tmp) / f"{name}.parquet"
        times.append(timed(lambda t=t, path=path: pq.write_table(t, path, compression="zstd"), repeat=3))
        sizes.append(path.stat().st_size)
    return wide.nbytes / table.nbytes, sizes[0] / sizes[1], times[0] / times[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sequences", type=int, default=512)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    texts = demo_sequences(args.sequences, args.length, rng)
    tokens = args.sequences * args.length
    out = []
    models = (
        (256, 2, 4, "demo-sized causal LM (1.6 M params)"),
        (64, 2, 4, "small causal LM (0.1 M params)"),
        (32, 1, 2, "tiny causal LM (0.02 M params)"),
    )
    with tempfile.TemporaryDirectory() as tmp:
        for hidden, layers, heads, label in models:
            folder = save_char_causal_lm(
                Path(tmp) / f"c{hidden}", hidden=hidden, layers=layers, heads=heads, max_positions=1024, weights_seed=0
            )
            spec = ModelSpec("causal", str(folder), "causal")
            model, tok = load_model(spec), load_tokenizer(spec)
            t_bare = timed(bare_forward(model, tok, texts, args.batch_size))
            t_score = timed(
                lambda spec=spec: score_sequences(
                    spec, records(texts), snp_offsets={}, batch_size=args.batch_size, seed=0, device="cpu"
                )
            )
            few = texts[: max(8, args.sequences // 16)]
            t_loop = timed(per_sequence_causal(model, tok, few), repeat=1) * len(texts) / len(few)
            out.append((f"{label}: scoring path vs bare batched forward", t_bare / t_score, ">= 0.9"))
            out.append((f"{label}: scoring path vs per-sequence loop (batch 1, .item())", t_loop / t_score, ">= 10"))
            out.append((f"{label}: bare batched forward vs per-sequence loop (the ceiling)", t_loop / t_bare, ""))
            print(
                f"{label}: bare {tokens / t_bare:,.0f} tok/s, scoring {tokens / t_score:,.0f} tok/s, "
                f"loop {tokens / t_loop:,.0f} tok/s"
            )
            if hidden == 64:
                small = spec

        # Ablations on the small model: each optimisation switched off alone, same inputs.
        jitter = demo_sequences(args.sequences, args.length, rng, jitter=args.length // 2)

        def run(options, seqs=texts):
            return lambda: score_sequences(
                small, records(seqs), snp_offsets={}, batch_size=args.batch_size, seed=0, device="cpu", options=options
            )

        base = ScoringOptions()
        t_on = timed(run(base, jitter))
        out.append(
            (
                "length bucketing, lengths 128-384 (time off / on)",
                timed(run(replace(base, bucketing=False), jitter)) / t_on,
                "> 1",
            )
        )
        t_plain = timed(run(base))
        out.append(
            (
                "inference_mode vs no_grad (time no_grad / inference_mode)",
                timed(run(replace(base, inference_mode=False))) / t_plain,
                ">= 1",
            )
        )
        table = score_sequences(small, records(texts), snp_offsets={}, batch_size=args.batch_size, seed=0, device="cpu")
        memory_ratio, size_ratio, write_ratio = float_storage(table, tmp)
        out.append(("per-token arrays as float16: table in memory float32 / float16", memory_ratio, "> 1"))
        out.append(("per-token arrays as float16: parquet size float32 / float16", size_ratio, "> 1"))
        out.append(("per-token arrays as float16: write time float32 / float16", write_ratio, ">= 1"))

        masked = ModelSpec(
            "masked",
            str(save_char_masked_lm(Path(tmp) / "m", hidden=128, layers=2, heads=4)),
            "masked",
            masking="sampled",
            mask_fraction=0.05,
        )
        mmodel, mtok = load_model(masked), load_tokenizer(masked)
        quarter = texts[: args.sequences // 4]
        t_mscore = timed(
            lambda: score_sequences(
                masked, records(quarter), snp_offsets={}, batch_size=args.batch_size, seed=0, device="cpu"
            ),
            repeat=1,
        )
        pos = [
            1 + sampled_offsets(f"s{i}", len(t), snp_offsets=np.zeros(0, int), fraction=0.05, seed=0)
            for i, t in enumerate(quarter)
        ]
        few = quarter[:8]
        t_mloop = timed(per_sequence_masked(mmodel, mtok, few, pos[:8]), repeat=1) * len(quarter) / len(few)
        out.append(("masked LM (0.4 M), sampled PLL: scoring path vs per-sequence loop", t_mloop / t_mscore, ">= 10"))

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak resident memory of this benchmark: {peak:.0f} MiB\n")
    print("| measurement | ratio | target |\n|---|---|---|")
    for name, ratio, target in out:
        print(f"| {name} | {ratio:.2f}x | {target} |")


if __name__ == "__main__":
    main()
