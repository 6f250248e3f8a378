"""P1: scoring throughput against a bare forward pass and a per-sequence loop, side by side.

Run: .venv/bin/python benchmarks/bench_scoring.py [--sequences N] [--threads T] [--repeats R]
Every figure is a ratio of two timings taken in this one run on the same inputs.

Host-side cost: the tiny model's scoring path with the model and tokenizer loaded once (what a
shard of millions of tokens amortises) against the bare batched forward, in R interleaved repetitions (the
order rotates), medians; host-side cost per token = (scoring path - bare forward) / tokens, and directly: the
scoring path with a stand-in forward that costs nothing, in wall time and in CPU time of the process (all its
threads: the cost on one core, and less sensitive than wall time to other processes on a shared machine).
Only that section, on one torch thread, in about a minute:

    .venv/bin/python benchmarks/bench_scoring.py --host-only --sequences 512 --repeats 11
"""

from __future__ import annotations

import argparse
import statistics
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
from gfm_audit import tokens  # noqa: E402
from gfm_audit.char_lm import save_char_causal_lm, save_char_masked_lm  # noqa: E402
from gfm_audit.models import ModelSpec, load_model, load_tokenizer  # noqa: E402
from gfm_audit.peak_memory import peak_rss_mib  # noqa: E402
from gfm_audit.privacy import scoring  # noqa: E402
from gfm_audit.privacy.features import BASE_FEATURES  # noqa: E402
from gfm_audit.privacy.score_table import scored_tokens  # noqa: E402
from gfm_audit.privacy.scoring import ScoringOptions, SeqRecord, sampled_offsets, score_sequences  # noqa: E402
from gfm_audit.tokens import _vectorised  # noqa: E402


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


def interleaved(runs: dict, repeats: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall time and median process CPU time of each callable over ``repeats`` rounds that run them all,
    in a rotating order, so that load from other processes falls on all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start, start_cpu = time.perf_counter(), time.process_time()
            runs[name]()
            times[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return (
        {name: statistics.median(t) for name, t in times.items()},
        {name: statistics.median(t) for name, t in cpu.items()},
    )


class Replay(torch.nn.Module):
    """Stands in for a model whose forward costs nothing: returns stored logits of the batch's shape, so that
    the scoring path's time with it is its host-side work alone (tokenising, batching, statistics, table)."""

    def __init__(self, model, vocab: int) -> None:
        super().__init__()
        self.config, self.vocab, self.stored = model.config, vocab, {}

    def forward(self, input_ids, attention_mask=None):
        # Contiguous, as a real model's logits are; made once per batch shape.
        shape = (*input_ids.shape, self.vocab)
        if shape not in self.stored:
            self.stored[shape] = torch.randn(shape)
        return type("Out", (), {"logits": self.stored[shape]})


def host_cost(folder: Path, texts: list[str], batch_size: int, repeats: int) -> list[tuple[str, float, str]]:
    """The tiny model's host-side cost per token, model and tokenizer loaded once, against the bare forward.

    The scoring path is score_sequences less its one-off model loading: tokenising with base offsets, the
    checks, scored positions, batching (prefetched in a thread), the forward, the statistics and the table."""
    spec = ModelSpec("tiny", str(folder), "causal")
    model, tok = load_model(spec), load_tokenizer(spec)
    start = time.perf_counter()
    _vectorised.layout(tok)  # derived once per tokenizer: timed apart from tokenising
    derive = time.perf_counter() - start
    plain_tok = load_tokenizer(spec)
    object.__setattr__(plain_tok, "_gfm_audit_layout", None)  # no layout: the tokenizer's own batched call
    tokens_n = sum(len(t) for t in texts)
    recs = records(texts)
    ids = [f"s{i}" for i in range(len(texts))]
    loaded = {"model": model, "tokenizer": tok}
    replay = Replay(model, model.config.vocab_size)

    def replayed():
        loaded["model"] = replay
        try:
            score()
        finally:
            loaded["model"] = model

    jobs: dict = {}

    def score(options=None):
        # What score_shard does for each chunk of a shard: the model loaded once per job (_load), then the
        # chunk tokenised, scored and tabled (score_sequences = _load + this).
        key = (id(loaded["model"]), id(loaded["tokenizer"]), options)
        if key not in jobs:
            jobs[key] = scoring._load(spec, batch_size=batch_size, device="cpu", options=options)
        enc, pos, stats = scoring._score_loaded(spec, jobs[key], recs, snp_offsets={}, seed=0, progress=False)
        return scoring._table(recs, enc, pos, stats, {})

    original = scoring.load_model, scoring.load_tokenizer
    scoring.load_model, scoring.load_tokenizer = (lambda s: loaded["model"]), (lambda s: loaded["tokenizer"])
    try:

        def with_plain_tokenizer():
            loaded["tokenizer"] = plain_tok
            try:
                score()
            finally:
                loaded["tokenizer"] = tok

        table = score()
        assert table.equals(score_sequences(spec, recs, snp_offsets={}, batch_size=batch_size, seed=0, device="cpu"))
        enc = tokens.encode_many(tok, texts, seq_ids=ids)
        pos = scoring.scored_positions_many(enc, "causal", masking="exact")
        scorer = scoring.Scorer(
            replay, "causal", pad_id=tok.pad_token_id or 0, mask_id=None, batch_size=batch_size, device="cpu"
        )
        stats = scorer.score(enc, pos)
        # The features the default attacks read; zlib_bytes (one zlib call per window) is left out.
        features = [*BASE_FEATURES, "min_k_k0.2", "min_k_pp_k0.2"]
        t, cpu = interleaved(
            {
                "bare": bare_forward(model, tok, texts, batch_size),
                "score": score,
                "score_no_prefetch": lambda: score(ScoringOptions(prefetch=0)),
                "host_only": replayed,
                "score_tokenizer_call": with_plain_tokenizer,
                "tokenise": lambda: tokens.encode_many(tok, texts, seq_ids=ids),
                "tokenise_tokenizer_call": lambda: tokens.encode_many(plain_tok, texts, seq_ids=ids),
                "scorer": lambda: scorer.score(enc, pos),
                "table": lambda: scoring._table(recs, enc, pos, stats, {}),
                "features": lambda: scoring._feature_rows(
                    recs, scored_tokens(recs, enc, pos, stats=stats, snp_offsets={}), features
                ),
            },
            repeats,
        )
    finally:
        scoring.load_model, scoring.load_tokenizer = original
    assert table.num_rows == len(texts)
    us = 1e6 / tokens_n
    print(
        f"tiny model, loaded once, medians of {repeats} interleaved runs ({tokens_n:,} tokens): "
        f"bare {t['bare'] * 1e3:.0f} ms, scoring path {t['score'] * 1e3:.0f} ms "
        f"(no prefetch {t['score_no_prefetch'] * 1e3:.0f} ms, "
        f"tokenizer's own call {t['score_tokenizer_call'] * 1e3:.0f} ms); "
        f"tokenisation {t['tokenise'] * us:.3f} us/token "
        f"(tokenizer's own batched call {t['tokenise_tokenizer_call'] * us:.3f}); "
        f"table {t['table'] * us:.3f} us/token; scoring path with a forward that costs nothing "
        f"{t['host_only'] * us:.3f} us/token (CPU time {cpu['host_only'] * us:.3f}); "
        f"layout derived once in {derive * 1e3:.0f} ms"
    )
    return [
        (
            "tiny causal LM (0.02 M), loaded once: scoring path vs bare batched forward (medians)",
            t["bare"] / t["score"],
            ">= 0.9",
        ),
        (
            "tiny causal LM: host-side cost per token, the scoring path with a forward that costs nothing, in us",
            t["host_only"] * us,
            "<= 0.2",
        ),
        (
            "  the same in CPU time of the process (all threads), in us",
            cpu["host_only"] * us,
            "<= 0.2",
        ),
        (
            "tiny causal LM: host-side cost per token, (scoring path - bare forward) / tokens, in us",
            (t["score"] - t["bare"]) * us,
            "<= 0.2",
        ),
        (
            "  the same without prefetching (ScoringOptions(prefetch=0)), in us",
            (t["score_no_prefetch"] - t["bare"]) * us,
            "",
        ),
        (
            "  the same with the tokenizer's own batched call instead of the lookup table, in us",
            (t["score_tokenizer_call"] - t["bare"]) * us,
            "",
        ),
        ("  of which tokenisation with offsets (lookup table), in us per token", t["tokenise"] * us, ""),
        (
            "  of which batching, the statistics over the vocabulary and their gather (Scorer.score), in us per token",
            t["scorer"] * us,
            "",
        ),
        ("  of which the Arrow table from offsets, in us per token", t["table"] * us, ""),
        (
            "  score_shard's per-sequence features (loss, snp_loss, min-k, min-k++; not in the path above), us/token",
            t["features"] * us,
            "",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sequences", type=int, default=512)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default 2; 1 with --host-only)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--host-only", action="store_true", help="only the host-side cost section")
    args = parser.parse_args()
    torch.set_num_threads(args.threads or (1 if args.host_only else 2))
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
        tiny = save_char_causal_lm(Path(tmp) / "tiny", hidden=32, layers=1, heads=2, max_positions=1024, weights_seed=0)
        out.extend(host_cost(tiny, texts, args.batch_size, args.repeats))
        if args.host_only:
            models = ()
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

        if args.host_only:
            report(out)
            return
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

    report(out)


def report(out) -> None:
    peak = peak_rss_mib()
    print(f"\npeak resident memory of this benchmark: {peak:.0f} MiB\n")
    print("| measurement | value | target |\n|---|---|---|")
    for name, value, target in out:
        print(f"| {name} | {value:.3f}{'' if ' us' in name else 'x'} | {target} |")


if __name__ == "__main__":
    main()
