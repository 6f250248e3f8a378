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
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow_scripts"))

import gfm_audit  # noqa: E402,F401  (MKL settings before torch)
import numpy as np  # noqa: E402
import pysam  # noqa: E402
import torch  # noqa: E402
from gfm_audit.char_lm import save_char_causal_lm, save_char_masked_lm  # noqa: E402
from gfm_audit.models import ModelSpec, load_model, load_tokenizer  # noqa: E402
from gfm_audit.scoring import SeqRecord, sampled_offsets, score_sequences  # noqa: E402


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
    with tempfile.TemporaryDirectory() as tmp:
        for hidden, label in ((256, "demo-sized causal LM (1.6 M params)"), (64, "small causal LM (0.1 M params)")):
            folder = save_char_causal_lm(Path(tmp) / f"c{hidden}", hidden=hidden, layers=2, heads=4,
                                         max_positions=1024, weights_seed=0)  # fmt: skip
            spec = ModelSpec("causal", str(folder), "causal")
            model, tok = load_model(spec), load_tokenizer(spec)
            t_bare = timed(bare_forward(model, tok, texts, args.batch_size))
            t_score = timed(lambda spec=spec: score_sequences(spec, records(texts), {}, args.batch_size, 0, "cpu"))
            few = texts[: max(8, args.sequences // 16)]
            t_loop = timed(per_sequence_causal(model, tok, few), repeat=1) * len(texts) / len(few)
            out.append((f"{label}: scoring path vs bare batched forward", t_bare / t_score, ">= 0.9"))
            out.append((f"{label}: scoring path vs per-sequence loop (batch 1, .item())", t_loop / t_score, ">= 10"))
            print(f"{label}: bare {tokens / t_bare:,.0f} tok/s, scoring {tokens / t_score:,.0f} tok/s, "
                  f"loop {tokens / t_loop:,.0f} tok/s")  # fmt: skip
        causal = spec

        jitter = demo_sequences(args.sequences, args.length, rng, jitter=args.length // 2)
        bucketed = timed(lambda: score_sequences(causal, records(jitter), {}, args.batch_size, 0, "cpu"))
        import gfm_audit.scoring as scoring

        original_batches = scoring.Scorer._batches

        def unsorted_batches(self, encodings, positions):
            order = list(range(len(encodings)))
            for k in range(0, len(order), self.batch_size):
                chunk = order[k : k + self.batch_size]
                ids, attention = self._stack([encodings[i].ids for i in chunk])
                yield ids, attention, [(i, positions[i]) for i in chunk]

        scoring.Scorer._batches = unsorted_batches
        t_unsorted = timed(lambda: score_sequences(causal, records(jitter), {}, args.batch_size, 0, "cpu"))
        scoring.Scorer._batches = original_batches
        out.append(("length bucketing on lengths 128-384 (time unsorted / sorted)", t_unsorted / bucketed, "> 1"))

        masked = ModelSpec("masked", str(save_char_masked_lm(Path(tmp) / "m", hidden=128, layers=2, heads=4)),
                           "masked", masking="sampled", mask_fraction=0.05)  # fmt: skip
        mmodel, mtok = load_model(masked), load_tokenizer(masked)
        small = texts[: args.sequences // 4]
        t_mscore = timed(lambda: score_sequences(masked, records(small), {}, args.batch_size, 0, "cpu"), repeat=1)
        pos = [1 + sampled_offsets(f"s{i}", len(t), np.zeros(0, int), 0.05, 0) for i, t in enumerate(small)]
        few = small[:8]
        t_mloop = timed(per_sequence_masked(mmodel, mtok, few, pos[:8]), repeat=1) * len(small) / len(few)
        out.append(("masked LM, sampled PLL: scoring path vs per-sequence loop", t_mloop / t_mscore, ">= 10"))

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak resident memory of this benchmark: {peak:.0f} MiB\n")
    print("| measurement | ratio | target |\n|---|---|---|")
    for name, ratio, target in out:
        print(f"| {name} | {ratio:.2f}x | {target} |")


if __name__ == "__main__":
    main()
