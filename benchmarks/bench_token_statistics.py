"""The per-token statistics alone, on the Evo 2 fixture's logits: the current formula against the one it replaced.

Run: .venv/bin/python benchmarks/bench_token_statistics.py [--repeat 15] [--folder DIR]

``bench_families.py``'s setting (demo windows of 498 bp, 121 windows, batch 16, one CPU thread): the logits of
every batch are computed once; then, alternating, ``--repeat`` times each: the batches' forward, and the
statistics of every batch (``_causal_statistics_in_blocks``, blocks of 2^18 logits) with

- ``softmax``: :func:`gfm_audit.privacy.scoring.token_statistics` as it is (p from torch's softmax kernel,
  ``p log p`` reused for the second moment);
- ``exp_of_log_softmax``: the formula before it, ``p = exp(log_softmax(z))``, ``mean = sum p l``,
  ``var = sum p l^2 - mean^2``.

Prints a TSV: what, median and minimum wall time (ms) per pass over all batches, and the largest absolute
difference of each statistic between the two formulas.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_families as bf  # noqa: E402  (puts workflow_scripts on the path)
import torch  # noqa: E402
from gfm_audit.models import ModelSpec, load_model, load_tokenizer  # noqa: E402
from gfm_audit.privacy import scoring  # noqa: E402
from gfm_audit.tokens import encode_many  # noqa: E402


def exp_of_log_softmax(logits, targets):
    """The statistics as computed before: p = exp(log_softmax(z)) and sum p l^2 for the second moment."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    true = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    p = logp.exp()
    mean = (p * logp).sum(-1)
    var = (p * logp.square()).sum(-1) - mean.square()
    return true, mean, var.clamp_min(0).sqrt()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--windows", type=int, default=121)
    parser.add_argument("--folder", default=None, help="another Evo 2 checkpoint than the fixture")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load = os.getloadavg()
    spec = ModelSpec("evo2", args.folder or str(bf.FIXTURES / "evo2"), "causal")
    model, tokenizer = load_model(spec), load_tokenizer(spec)
    seqs = bf.windows(200, 498)[: args.windows]
    encodings = encode_many(tokenizer, seqs, seq_ids=[f"w{i}" for i in range(len(seqs))], model="evo2")
    positions = [scoring.scored_positions(e, "causal", masking="exact", offsets=None) for e in encodings]
    scorer = scoring.Scorer(model, "causal", pad_id=tokenizer.pad_token_id, mask_id=None, batch_size=16, device="cpu")
    batches = list(scorer._batches(encodings, positions))
    current = scoring.token_statistics
    with torch.inference_mode():
        outputs = [(scorer._forward(ids, attention), rows) for ids, attention, rows in batches]

        def forward():
            for ids, attention, _ in batches:
                scorer._forward(ids, attention)

        def stats(formula):
            scoring.token_statistics = formula
            try:
                return [scoring._causal_statistics_in_blocks(lg, x, rows.source) for (lg, x), rows in outputs]
            finally:
                scoring.token_statistics = current

        runs = {
            "forward": forward,
            "softmax": lambda: stats(current),
            "exp_of_log_softmax": lambda: stats(exp_of_log_softmax),
        }
        for fn in runs.values():
            fn()
        times = {name: [] for name in runs}
        for _ in range(args.repeat):
            for name, fn in runs.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        new, old = stats(current), stats(exp_of_log_softmax)
    diff = [max(float((a[i] - b[i]).abs().max()) for a, b in zip(new, old, strict=True)) for i in range(3)]
    tokens = sum(int(a.sum()) for _, a, _ in batches)
    print(
        f"# Evo 2 {Path(spec.path).name}, {len(seqs)} windows, {tokens} tokens, batch 16, one CPU thread, "
        f"{args.repeat} alternating runs; load average at the start {' '.join(f'{x:.2f}' for x in load)}"
    )
    print("what\tmedian_ms\tmin_ms")
    for name, values in times.items():
        print(f"{name}\t{statistics.median(values) * 1e3:.1f}\t{min(values) * 1e3:.1f}")
    print(f"# largest |softmax - exp_of_log_softmax|: log p {diff[0]:.3g}, mean {diff[1]:.3g}, std {diff[2]:.3g}")


if __name__ == "__main__":
    main()
