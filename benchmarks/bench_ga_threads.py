"""Does the GA's table depend on how many threads torch runs the classifier on, and what does a thread buy?

A CNN is trained once (one thread, as the stages train) on 2,000 rows of the demo's GUE ``prom_300_all`` split, then
the same seeded GA attacks the same 40 test sequences with torch on 1, 2, 3 and 4 intra-op threads. Per thread count:
a digest of the classifier's probabilities on 512 test sequences and their largest difference from the first
thread count's, a digest of the adversarial table, the GA's mean queries per sequence and the attack's wall time
(side by side in one run; on a machine with fewer cores than threads the time says nothing about speed, only the
digests count). Equal digests mean bit-identical outputs.
The whole measurement runs twice, in two processes: on the CPU's own kernels and with ``ATEN_CPU_CAPABILITY=default``
(no vector extensions), where training itself gives another model.

Why it matters: the robustness rules run torch on their declared ``threads`` (``determinism.use_job_threads``),
so that a config gives the same tables on machines with any number of cores.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_ga_threads.py   # writes benchmarks/ga_threads.tsv
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow_scripts"))

from gfm_audit.robustness.ga.attack import adversarial_table, attack_sequences, sample_rows  # noqa: E402
from gfm_audit.robustness.ga.classifiers import CNNClassifier  # noqa: E402
from gfm_audit.robustness.ga.constraints import Constraints  # noqa: E402
from gfm_audit.robustness.ga.data import encode  # noqa: E402
from gfm_audit.robustness.ga.search import GAParams  # noqa: E402
from gfm_audit.robustness.ga.splits import load_splits  # noqa: E402

TASK = REPO / "resources/demo/gue_prom_300_all"
THREADS = (1, 2, 3, 4)
TRAINING = {"epochs": 2, "learning_rate": 0.001, "batch_size": 64, "weight_decay": 0.01}


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def measure(threads_list=THREADS, *, train_rows: int = 2000, attacked: int = 40) -> pd.DataFrame:
    import torch

    train, test = load_splits(str(TASK / "dev.csv"), str(TASK / "test.csv"), "skip")
    train = train.subset(sample_rows(len(train), train_rows, 0))
    clf = CNNClassifier("cnn", len(train.sequences[0]), seed=0)
    clf.fit(encode(train.sequences), train.labels, training=TRAINING, seed=0)
    chosen = test.subset(sample_rows(len(test), attacked, 1))
    codes = encode(test.sequences[:512])
    rows, first = [], None
    for threads in threads_list:
        torch.set_num_threads(threads)
        proba = np.ascontiguousarray(clf.predict_proba(codes))
        first = proba if first is None else first
        started = time.perf_counter()
        run = attack_sequences(
            clf, chosen, constraints=Constraints(), params=GAParams(population=20, generations=30), seed=0
        )
        seconds = time.perf_counter() - started
        table = adversarial_table(run)
        rows.append(
            dict(
                threads=threads,
                probabilities=digest(proba.tobytes()),
                max_probability_difference=float(np.abs(proba - first).max()),
                adversarial_table=digest(table.to_csv(sep="\t", index=False).encode()),
                mean_queries=round(float(table.queries.mean()), 3),
                attack_seconds=round(seconds, 2),
                cpu_capability=torch.backends.cpu.get_cpu_capability(),
            )
        )
        print(rows[-1], file=sys.stderr, flush=True)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--one"]:  # one kernel set, this process's: the table on stdout
        table = measure()
        sys.stdout.write("TABLE\n" + table.to_csv(sep="\t", index=False))
        return 0
    tables = []
    for capability in (None, "default"):
        env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
        if capability:
            env["ATEN_CPU_CAPABILITY"] = capability
        done = subprocess.run([sys.executable, __file__, "--one"], env=env, capture_output=True, text=True, check=True)
        tables.append(pd.read_csv(io.StringIO(done.stdout.split("TABLE\n", 1)[1]), sep="\t"))
    out = REPO / "benchmarks/ga_threads.tsv"
    pd.concat(tables, ignore_index=True).to_csv(out, sep="\t", index=False)
    print(pd.read_csv(out, sep="\t").to_string(index=False))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
