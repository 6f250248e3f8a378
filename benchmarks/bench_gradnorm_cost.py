"""Cost of the gradient-norm attack's feature against plain loss scoring, side by side in one run.

Run: nice .venv/bin/python benchmarks/bench_gradnorm_cost.py [--windows N] [--repeats R] [--threads T]

On the demo's character LM (resources/demo/char_lm: its config and tokenizer, weights drawn from a seed, as the
demo trains it from scratch) and ``--windows`` windows of the demo's length (256 bp) cut from the demo genome:
- loss: the scoring jobs' forward pass (``Scorer.score``, batches of the demo's scoring.batch_size, 32), which
  gives every per-token feature;
- gradnorm_parameters / gradnorm_embeddings: the gradient-norm feature (``gradient_norms``): one forward and
  one backward pass per window, with respect to all parameters or to the input embeddings.
Each is timed ``--repeats`` times in turn, in the same process on the same threads; the median seconds and the
ratio to loss's median go to benchmarks/gradnorm_cost.tsv (the figure is the ratio: the absolute seconds depend
on the machine and on what else runs on it).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow_scripts"))

import gfm_audit  # noqa: E402,F401  (MKL settings before torch)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from gfm_audit.fasta import read_fasta  # noqa: E402
from gfm_audit.models import ModelSpec, load_tokenizer, model_from_scratch  # noqa: E402
from gfm_audit.privacy.scoring import Scorer, gradient_norms, scored_positions_many  # noqa: E402
from gfm_audit.tokens import encode_many  # noqa: E402

CHAR_LM = REPO / "resources" / "demo" / "char_lm"
GENOME = REPO / "resources" / "demo" / "z.fa"
OUT = REPO / "benchmarks" / "gradnorm_cost.tsv"
LENGTH, BATCH = 256, 32


def windows(n: int) -> list[str]:
    """``n`` windows of LENGTH bases without N, evenly spaced along the demo genome's first contig."""
    contig = next(iter(read_fasta(GENOME).values())).upper()
    starts = np.linspace(0, len(contig) - LENGTH, 4 * n).astype(int)
    found = [contig[s : s + LENGTH] for s in starts if "N" not in contig[s : s + LENGTH]]
    return found[:n]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    spec = ModelSpec("demo_char_lm", str(CHAR_LM), "causal", init="scratch")
    tokenizer = load_tokenizer(spec)
    model = model_from_scratch(spec, seed=0).eval()
    texts = windows(args.windows)
    batch = encode_many(tokenizer, texts, seq_ids=[f"w{i}" for i in range(len(texts))], model=spec.name)
    positions = scored_positions_many(batch, "causal", masking="exact")
    scorer = Scorer(model, "causal", pad_id=tokenizer.pad_token_id, mask_id=None, batch_size=BATCH, device="cpu")
    runs = {
        "loss": lambda: scorer.score(batch, positions),
        "gradnorm_parameters": lambda: gradient_norms(model, batch, positions, wrt="parameters", device="cpu"),
        "gradnorm_embeddings": lambda: gradient_norms(model, batch, positions, wrt="embeddings", device="cpu"),
    }
    seconds = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():  # interleaved: a slow spell of the machine hits every method alike
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
    base = float(np.median(seconds["loss"]))
    table = pd.DataFrame(
        [
            {
                "method": name,
                "windows": len(texts),
                "window_bp": LENGTH,
                "median_s": round(float(np.median(times)), 4),
                "ratio_to_loss": round(float(np.median(times)) / base, 2),
                "repeats": args.repeats,
                "torch_threads": args.threads,
                "cpu": platform.processor() or platform.machine(),
                "cores": os.cpu_count(),
            }
            for name, times in seconds.items()
        ]
    )
    table.to_csv(OUT, sep="\t", index=False)
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
