"""Which attack breaks the demo task's CNN, undefended and after one adversarial-training variant: per budget j,
the correctly classified held-out sequences made wrong within j edits by the evaluation GA (delta -inf, pruned), by
white-box HotFlip, by both and by each alone (the two attacks of ``robust_by_budget``).

A defended model still broken mostly by HotFlip, the attack it trains against, has not brought its adversarial
training loss down (under-trained); one broken mostly by the GA alone has learnt to resist HotFlip only.

Usage: ``.venv/bin/python benchmarks/adversarial_breaks.py [--config C] [--variant V] > out.txt`` (same seeds and
holdout as ``bench_adversarial_training.py``, so the models are that benchmark's).
"""

from __future__ import annotations

import argparse
import copy
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow_scripts"))
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_adversarial_training as bench  # noqa: E402
from gfm_audit.robustness.ga.classifiers import CNNClassifier  # noqa: E402
from gfm_audit.robustness.ga.constraints import Constraints  # noqa: E402
from gfm_audit.robustness.ga.data import encode  # noqa: E402
from gfm_audit.robustness.ga.robust_accuracy import broken_by_attack  # noqa: E402
from gfm_audit.robustness.ga.robust_training import robust_epochs  # noqa: E402
from gfm_audit.robustness.ga.search import GAParams  # noqa: E402
from gfm_audit.robustness.ga.splits import load_splits  # noqa: E402


def breaks(clf, holdout, constraints: Constraints, params: GAParams, seed: int) -> dict[str, np.ndarray]:
    """Per budget 1..max_edits: counts of correctly classified sequences broken by each attack."""
    b = broken_by_attack(clf, holdout, constraints=constraints, params=params, seed=seed)
    return {
        "correct": np.full(b.ga.shape[1], len(b.ga)),
        "ga": b.ga.sum(0),
        "hotflip": b.hotflip.sum(0),
        "both": (b.ga & b.hotflip).sum(0),
        "ga_only": (b.ga & ~b.hotflip).sum(0),
        "hotflip_only": (b.hotflip & ~b.ga).sum(0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "benchmarks/adversarial_training.yaml"))
    parser.add_argument("--task", default="prom_300_all")
    parser.add_argument("--variant", default="hotflip_finetune_lr5e4_5ep_b7")
    args = parser.parse_args(argv)
    cfg = yaml.safe_load(Path(args.config).read_text())
    spec, seed = cfg["tasks"][args.task], cfg["seed"]
    train, test = load_splits(str(REPO / spec["train"]), str(REPO / spec["test"]), "skip")
    if spec.get("train_rows"):
        train = train.subset(bench.sample_rows(len(train), spec["train_rows"], seed))
    holdout = test.subset(bench.holdout_rows(len(test), cfg))
    constraints = Constraints(**cfg["attack"].get("constraints", {}))
    params = GAParams(**cfg["attack"].get("ga", {}))
    clean = CNNClassifier(args.task, len(train.sequences[0]), seed=seed, **cfg["cnn"])
    clean.fit(encode(train.sequences), train.labels, training=cfg["clean_training"], seed=seed)
    settings = {**bench.COMMON, **bench.VARIANTS[args.variant]}
    defended = copy.deepcopy(clean)
    inner = replace(constraints, max_edits=settings.get("inner_max_edits") or constraints.max_edits)
    robust_epochs(defended, train, constraints=inner, settings=settings, training=cfg["clean_training"], seed=seed)
    print("task\tmodel\tcount\t" + "\t".join(f"budget_{j}" for j in range(1, constraints.max_edits + 1)))
    for name, clf in (("undefended", clean), (args.variant, defended)):
        for count, values in breaks(clf, holdout, constraints, params, seed).items():
            print(f"{args.task}\t{name}\t{count}\t" + "\t".join(str(int(v)) for v in values), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
