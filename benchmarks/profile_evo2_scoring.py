"""Where our scoring path's extra time goes for Evo 2: torch profiler of ``Scorer.score`` against the bare forward.

Run: .venv/bin/python benchmarks/profile_evo2_scoring.py [--tokens 60000] [--rounds 3] [--folder DIR]

The setting of ``bench_families.py`` (the Evo 2 fixture, demo windows of 498 bp, about 60,000 tokens, batch 16,
one CPU thread): both paths run ``--rounds`` times under ``torch.profiler``, alternating, and the table gives,
per operator, the self CPU time of each path and their difference (ours - bare), largest difference first: the
operators that our path adds to the module's forward (the statistics), and the forward's own, which differ only
by noise. The last lines give the totals. CPU time under the profiler includes its own overhead per operator
call (a few microseconds), so per-call costs of small operators are overstated; the totals are for reading the
shares, the benchmark's ratios are measured without it.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_families as bf  # noqa: E402  (puts workflow_scripts on the path)
import torch  # noqa: E402
from gfm_audit.models import ModelSpec, load_model, load_tokenizer  # noqa: E402
from gfm_audit.privacy.scoring import Scorer, scored_positions  # noqa: E402
from gfm_audit.tokens import encode_many  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402


def self_times(fn, rounds: int) -> tuple[dict[str, float], dict[str, int]]:
    """Self CPU time (ms) and calls per operator over ``rounds`` calls of ``fn`` under the profiler."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(rounds):
            fn()
    times, calls = defaultdict(float), defaultdict(int)
    for event in prof.key_averages():
        times[event.key] += event.self_cpu_time_total / 1e3
        calls[event.key] += event.count
    return times, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--folder", default=None, help="another Evo 2 checkpoint than the fixture")
    args = parser.parse_args()
    torch.set_num_threads(1)
    folder = args.folder or str(bf.FIXTURES / "evo2")
    spec = ModelSpec("evo2", folder, "causal")
    model, tokenizer = load_model(spec), load_tokenizer(spec)
    seqs = bf.windows(200, 498)
    n = min(len(seqs), -(-args.tokens // 498))
    encodings = encode_many(tokenizer, seqs[:n], seq_ids=[f"w{i}" for i in range(n)], model="evo2")
    positions = [scored_positions(e, "causal", masking="exact", offsets=None) for e in encodings]
    scorer = Scorer(model, "causal", pad_id=tokenizer.pad_token_id, mask_id=None, batch_size=16, device="cpu")
    batches = list(scorer._batches(encodings, positions))

    def ours() -> None:
        scorer.score(encodings, positions)

    def bare() -> None:
        with torch.inference_mode():
            for x, _, _ in batches:
                model(input_ids=torch.from_numpy(x)).logits  # noqa: B018

    ours(), bare()  # warm-up
    totals = {"ours": defaultdict(float), "bare": defaultdict(float)}
    counts = {"ours": defaultdict(int), "bare": defaultdict(int)}
    for _ in range(args.rounds):  # alternating, one round of each at a time
        for name, fn in (("ours", ours), ("bare", bare)):
            times, calls = self_times(fn, 1)
            for key, value in times.items():
                totals[name][key] += value / args.rounds
                counts[name][key] += calls[key]
    params = sum(p.numel() for p in model.parameters())
    tokens = sum(int(a.sum()) for _, a, _ in batches)
    print(
        f"# Evo 2 {Path(folder).name} ({params} parameters), {n} windows of 498 bp, {tokens} tokens, batch 16, one "
        f"CPU thread; self CPU ms per run under torch.profiler, mean of {args.rounds} alternating runs of each path"
    )
    print("operator\tours_ms\tbare_ms\tours_minus_bare_ms\tours_calls_per_run\tbare_calls_per_run")
    keys = sorted(set(totals["ours"]) | set(totals["bare"]), key=lambda k: totals["bare"][k] - totals["ours"][k])
    for key in keys:
        a, b = totals["ours"][key], totals["bare"][key]
        if max(a, b) >= 0.5:
            calls = f"{counts['ours'][key] // args.rounds}\t{counts['bare'][key] // args.rounds}"
            print(f"{key}\t{a:.1f}\t{b:.1f}\t{a - b:+.1f}\t{calls}")
    ours_total, bare_total = sum(totals["ours"].values()), sum(totals["bare"].values())
    # Operators the bare forward never calls: the statistics and the bookkeeping of our path.
    only_ours = sum(v for k, v in totals["ours"].items() if counts["bare"][k] == 0)
    print(f"TOTAL\t{ours_total:.1f}\t{bare_total:.1f}\t{ours_total - bare_total:+.1f}\t\t")
    print(f"ONLY_OURS\t{only_ours:.1f}\t0.0\t{only_ours:+.1f}\t\t")
    print(f"# operators the bare forward never calls: {only_ours / ours_total:.1%} of our path's time")
    print(f"# bare / ours under the profiler: {bare_total / ours_total:.3f}")


if __name__ == "__main__":
    main()
