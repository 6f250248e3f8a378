"""Do the edits that break the CNN remove the task's own sequence signal? A label-preserving attack is what robust
accuracy assumes; on a short sequence a few substitutions may rewrite the very motif the label rests on.

Per task (the benchmark config's tasks; default the deep CNN at seed 0), the undefended CNN of
bench_adversarial_training.py is trained, and the task's signal is taken from its training split: the ``top``
canonical k-mers (a k-mer and its reverse complement counted as one, as a TF binds either strand) most enriched in
label-1 sequences (GUE: bound / promoter) over label-0 ones, by the log ratio of the shares of sequences that carry
them, among k-mers carried by at least ``min_support`` of the label-1 sequences (rarer ones have noisy ratios).
White-box HotFlip at the full budget then attacks the held-out sample (the robustness benchmark's); of the
sequences it breaks:

- label 1: the share whose edits **destroy** an occurrence of an enriched k-mer (a window that was one no longer
  is), against the same share for random substitutions, the same number per sequence at positions the
  constraints leave editable (``repeats`` seeded draws; the GC bound cannot bind: budget 5 moves G+C by at most
  5/101 < 5 points);
- label 0: the share whose edits **create** one.

An attack that destroys the motif far more often than chance is taking the label's evidence away, so some of its
"adversarial" examples may carry the other label, and a model that must keep its answer on them has to stop
reading the motif (clean accuracy lost). Usage: ``.venv/bin/python benchmarks/motif_edits.py [--config C]
[--tasks ...] --out T.tsv``; ``--render T1.tsv T2.tsv ...`` fills the page's ``adversarial-motif-edits`` block.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow_scripts"))
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_adversarial_training as bench  # noqa: E402
from gfm_audit.robustness.ga.attack import attack_targets  # noqa: E402
from gfm_audit.robustness.ga.classifiers import CNNClassifier  # noqa: E402
from gfm_audit.robustness.ga.constraints import Constraints  # noqa: E402
from gfm_audit.robustness.ga.data import encode  # noqa: E402
from gfm_audit.robustness.ga.inner import hotflip_attack  # noqa: E402
from gfm_audit.robustness.ga.splits import load_splits  # noqa: E402

BLOCK = "adversarial-motif-edits"
PAGE = REPO / "docs/benchmarks/adversarial-training.md"
K, TOP, MIN_SUPPORT, REPEATS = 6, 10, 0.05, 20


def kmer_codes(codes: np.ndarray, k: int) -> np.ndarray:
    """(N, L-k+1) base-4 index of every k-mer window of (N, L) codes (A C G T = 0 1 2 3)."""
    n, length = codes.shape
    out = np.zeros((n, length - k + 1), dtype=np.int64)
    for j in range(k):
        out = out * 4 + codes[:, j : length - k + 1 + j]
    return out


def canonical(index: np.ndarray, k: int) -> np.ndarray:
    """The smaller of a k-mer's index and its reverse complement's."""
    rc = np.zeros_like(index)
    rest = index.copy()
    for _ in range(k):
        rc = rc * 4 + (3 - rest % 4)  # complement of the last base becomes the first of the reverse complement
        rest //= 4
    return np.minimum(index, rc)


def enriched_kmers(
    codes: np.ndarray, labels: np.ndarray, k: int = K, top: int = TOP, min_support: float = MIN_SUPPORT
) -> pd.DataFrame:
    """The ``top`` canonical k-mers by log2((a1 + 1) / (n1 + 2)) - log2((a0 + 1) / (n0 + 2)), a_c the label-c
    sequences carrying the k-mer and n_c all label-c sequences (add-one smoothing), among those carried by at least
    ``min_support`` of the label-1 sequences; columns kmer (index), share1, share0, log2_ratio."""
    windows = canonical(kmer_codes(codes, k), k)
    present = np.zeros((len(codes), 4**k), dtype=bool)
    present[np.repeat(np.arange(len(codes)), windows.shape[1]), windows.ravel()] = True
    pos, neg = present[labels == 1], present[labels == 0]
    a1, a0 = pos.sum(axis=0), neg.sum(axis=0)
    ratio = np.log2((a1 + 1) / (len(pos) + 2)) - np.log2((a0 + 1) / (len(neg) + 2))
    keep = np.flatnonzero(a1 >= min_support * len(pos))
    # Stable sort on the negated ratio, so ties keep the smaller index first: the same table on every run.
    best = keep[np.argsort(-ratio[keep], kind="stable")[:top]]
    return pd.DataFrame(
        {"kmer": best, "share1": a1[best] / len(pos), "share0": a0[best] / len(neg), "log2_ratio": ratio[best]}
    )


def kmer_text(index: int, k: int = K) -> str:
    return "".join("ACGT"[(index >> (2 * (k - 1 - j))) & 3] for j in range(k))


def motif_windows(codes: np.ndarray, kmers: np.ndarray, k: int = K) -> np.ndarray:
    """(N, L-k+1) True where the window is one of ``kmers`` (canonical indices)."""
    return np.isin(canonical(kmer_codes(codes, k), k), kmers)


def destroyed(before: np.ndarray, after: np.ndarray, kmers: np.ndarray, k: int = K) -> np.ndarray:
    """Per row: some window that was one of ``kmers`` before is not one after."""
    return (motif_windows(before, kmers, k) & ~motif_windows(after, kmers, k)).any(axis=1)


def created(before: np.ndarray, after: np.ndarray, kmers: np.ndarray, k: int = K) -> np.ndarray:
    """Per row: some window that was not one of ``kmers`` before is one after."""
    return (~motif_windows(before, kmers, k) & motif_windows(after, kmers, k)).any(axis=1)


def random_edits(codes: np.ndarray, n_edits: np.ndarray, editable: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``n_edits[i]`` substitutions of row i at distinct editable positions, each to one of the three other bases."""
    out = codes.copy()
    for i, n in enumerate(n_edits):
        where = rng.choice(np.flatnonzero(editable[i]), size=int(n), replace=False)
        out[i, where] = (out[i, where] + rng.integers(1, 4, size=where.size)) % 4
    return out


def measure_task(task: str, spec: dict, cfg: dict) -> tuple[list[dict], pd.DataFrame]:
    seed = cfg["seed"]
    train, test = load_splits(str(REPO / spec["train"]), str(REPO / spec["test"]), "skip")
    if spec.get("train_rows"):
        train = train.subset(bench.sample_rows(len(train), spec["train_rows"], seed))
    train_codes = encode(train.sequences)
    clf = CNNClassifier(task, train_codes.shape[1], seed=seed, **cfg["cnn"])
    clf.fit(train_codes, train.labels, training=cfg["clean_training"], seed=seed)
    kmers = enriched_kmers(train_codes, train.labels)
    constraints = Constraints(**cfg["attack"].get("constraints", {}))
    t = attack_targets(clf, test.subset(bench.holdout_rows(len(test), cfg)), constraints)
    res = hotflip_attack(clf, t.originals, t.labels, protected=t.protected, constraints=constraints)
    broken = clf.predict_proba(res.adversarial).argmax(axis=1) != t.labels
    n_edits = (res.adversarial != t.originals).sum(axis=1)
    rng = np.random.default_rng(seed)
    rows = []
    for label, change in ((1, destroyed), (0, created)):
        m = broken & (t.labels == label)
        before, after = t.originals[m], res.adversarial[m]
        chance = (
            np.mean(
                [
                    change(before, random_edits(before, n_edits[m], ~t.protected[m], rng), kmers.kmer.values).mean()
                    for _ in range(REPEATS)
                ]
            )
            if m.any()
            else np.nan
        )
        rows.append(
            dict(
                task=task,
                seed=seed,
                label=label,
                correct=int((t.labels == label).sum()),
                broken=int(m.sum()),
                edits_mean=float(n_edits[m].mean()) if m.any() else np.nan,
                with_kmer=float(motif_windows(before, kmers.kmer.values).any(axis=1).mean()) if m.any() else np.nan,
                change="destroys" if label == 1 else "creates",
                attack=float(change(before, after, kmers.kmer.values).mean()) if m.any() else np.nan,
                random=float(chance),
            )
        )
    print(task, rows, flush=True)
    return rows, kmers.assign(task=task, seed=seed, text=[kmer_text(int(x)) for x in kmers.kmer])


def render(table: pd.DataFrame, kmers: pd.DataFrame) -> str:
    lines = [
        f"Held-out sequences the undefended CNN classifies correctly and HotFlip breaks at budget 5; a sequence "
        f"counts when its edits destroy (label 1) or create (label 0) an occurrence of one of the task's {TOP} most "
        f"enriched canonical {K}-mers; 'random': the same number of random substitutions per sequence at editable "
        f"positions, mean of {REPEATS} seeded draws.\n",
        "| task | seed | label | broken / correct | edits (mean) | broken carrying a k-mer | share whose edits | "
        "HotFlip | random |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples():
        lines.append(
            f"| {r.task} | {r.seed} | {r.label} | {r.broken} / {r.correct} | {r.edits_mean:.2f} | {r.with_kmer:.3f} | "
            f"{r.change} one | {r.attack:.3f} | {r.random:.3f} |"
        )
    lines.append("")
    for (task, seed), g in table.groupby(["task", "seed"], sort=False):
        parts = [
            f"{r.change.removesuffix('s')} an enriched k-mer in {r.attack:.3f} of the label-{r.label} sequences it "
            f"breaks, {r.attack / r.random:.1f} times the random rate ({r.random:.3f})"
            for r in g.itertuples()
        ]
        lines.append(f"- {task}, seed {seed}: HotFlip's edits {'; '.join(parts)}")
    lines += ["", "The k-mers (label-1 share / label-0 share of the training sequences carrying them):", ""]
    for (task, seed), g in kmers.groupby(["task", "seed"], sort=False):
        listed = ", ".join(f"{r.text} ({r.share1:.2f} / {r.share0:.2f})" for r in g.itertuples())
        lines.append(f"- {task}, seed {seed}: {listed}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "benchmarks/adversarial_training_deep_seed0.yaml")
    parser.add_argument("--tasks", nargs="+")
    parser.add_argument("--out", type=Path, help="TSV of the measurement (its k-mers go beside it)")
    parser.add_argument("--render", type=Path, nargs="+", help="TSVs written by --out")
    args = parser.parse_args(argv)
    if args.render:
        table = pd.concat([pd.read_csv(p, sep="\t") for p in args.render], ignore_index=True)
        kmers = pd.concat([pd.read_csv(_kmers_path(p), sep="\t") for p in args.render], ignore_index=True)
        bench.write_page(PAGE, render(table, kmers), BLOCK)
        return 0
    if args.out is None:
        parser.error("--out or --render is needed")
    cfg = yaml.safe_load(args.config.read_text())
    rows, kmers = [], []
    for task in args.tasks or list(cfg["tasks"]):
        task_rows, task_kmers = measure_task(task, cfg["tasks"][task], cfg)
        rows += task_rows
        kmers.append(task_kmers)
    pd.DataFrame(rows).to_csv(args.out, sep="\t", index=False, float_format="%.4f")
    pd.concat(kmers).to_csv(_kmers_path(args.out), sep="\t", index=False, float_format="%.4f")
    return 0


def _kmers_path(tsv: Path) -> Path:
    return tsv.with_name(tsv.stem + "_kmers.tsv")


if __name__ == "__main__":
    raise SystemExit(main())
