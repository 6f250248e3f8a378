"""Does the defended CNN fit its robust objective on the sequences it was trained on? Robust accuracy under
white-box HotFlip at budgets 1..max_edits on a seeded sample of training rows and on the benchmark's held-out
sample, for the undefended model and one adversarial-training variant, and what the budget-5 edits that break a
held-out sequence do to its CpG and G+C counts.

Robust accuracy on training rows far above the held-out figure is robust overfitting (Rice et al., ICML 2020),
which more data, augmentation or early stopping address; the two close together mean the model does not reach a
higher robust accuracy even on the data it was fitted to, so those remedies cannot lift the held-out figure.
HotFlip alone is used because it is the attack that breaks these models (the GA adds almost nothing:
``adversarial_training_breaks.txt``); the held-out figure is therefore an upper bound of the strict one of
``bench_adversarial_training.py`` for the same model (same seeds: the models are that benchmark's).

Usage: ``.venv/bin/python benchmarks/adversarial_fit.py --config C [--variant V] --out T.tsv`` per seed, then
``.venv/bin/python benchmarks/adversarial_fit.py --render T1.tsv T2.tsv ...`` fills the page's
``adversarial-training-fit`` block.
"""

from __future__ import annotations

import argparse
import copy
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow_scripts"))
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_adversarial_training as bench  # noqa: E402
from gfm_audit.robustness.ga.attack import attack_targets, sample_rows  # noqa: E402
from gfm_audit.robustness.ga.classifiers import CNNClassifier, accuracy  # noqa: E402
from gfm_audit.robustness.ga.constraints import Constraints  # noqa: E402
from gfm_audit.robustness.ga.data import encode  # noqa: E402
from gfm_audit.robustness.ga.inner import hotflip_attack  # noqa: E402
from gfm_audit.robustness.ga.robust_accuracy import hotflip_broken  # noqa: E402
from gfm_audit.robustness.ga.robust_training import robust_epochs  # noqa: E402
from gfm_audit.robustness.ga.splits import load_splits  # noqa: E402

BLOCK = "adversarial-training-fit"
PAGE = REPO / "docs/benchmarks/adversarial-training.md"
# Seeds the training-row sample is drawn with, offset from the held-out sample's so the two draws differ.
TRAIN_SAMPLE_OFFSET = 1000


def cpg_count(codes: np.ndarray) -> np.ndarray:
    """CpG dinucleotides per row of (N, L) codes (A C G T = 0 1 2 3)."""
    return ((codes[:, :-1] == 1) & (codes[:, 1:] == 2)).sum(axis=1)


def gc_count(codes: np.ndarray) -> np.ndarray:
    """G and C bases per row of (N, L) codes."""
    return np.isin(codes, (1, 2)).sum(axis=1)


def robust_rows(clf, data, constraints: Constraints, *, seed: int, variant: str, sample: str) -> list[dict]:
    """One row per budget: HotFlip robust accuracy of ``clf`` on ``data`` (correct and not flipped within j
    edits, over all of ``data``), with the clean accuracy on the same rows."""
    t = attack_targets(clf, data, constraints)
    broken = hotflip_broken(clf, t, constraints)
    clean = len(t.labels) / len(data)
    return [
        dict(
            seed=seed,
            variant=variant,
            sample=sample,
            n=len(data),
            budget=j,
            clean_accuracy=clean,
            robust_accuracy=(len(t.labels) - int(broken[:, j - 1].sum())) / len(data),
        )
        for j in range(1, constraints.max_edits + 1)
    ]


def edit_effects(clf, data, constraints: Constraints, *, seed: int, variant: str) -> list[dict]:
    """Per true label: of the held-out sequences HotFlip breaks at the full budget, how many, and the mean change
    of their CpG and G+C counts made by the edits."""
    t = attack_targets(clf, data, constraints)
    res = hotflip_attack(clf, t.originals, t.labels, protected=t.protected, constraints=constraints)
    broken = clf.predict_proba(res.adversarial).argmax(axis=1) != t.labels
    rows = []
    for label in np.unique(data.labels):
        m = broken & (t.labels == label)
        d_cpg = cpg_count(res.adversarial[m]) - cpg_count(t.originals[m])
        d_gc = gc_count(res.adversarial[m]) - gc_count(t.originals[m])
        rows.append(
            dict(
                seed=seed,
                variant=variant,
                label=int(label),
                n_label=int((data.labels == label).sum()),
                cpg_mean=float(cpg_count(encode(data.sequences)[data.labels == label]).mean()),
                broken=int(m.sum()),
                cpg_change_mean=float(d_cpg.mean()) if m.any() else np.nan,
                cpg_up=int((d_cpg > 0).sum()),
                cpg_down=int((d_cpg < 0).sum()),
                gc_change_mean=float(d_gc.mean()) if m.any() else np.nan,
            )
        )
    return rows


def measure(config: Path, variant: str, task: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    cfg = yaml.safe_load(config.read_text())
    spec, seed = cfg["tasks"][task], cfg["seed"]
    train, test = load_splits(str(REPO / spec["train"]), str(REPO / spec["test"]), "skip")
    if spec.get("train_rows"):
        train = train.subset(bench.sample_rows(len(train), spec["train_rows"], seed))
    constraints = Constraints(**cfg["attack"].get("constraints", {}))
    holdout = test.subset(bench.holdout_rows(len(test), cfg))
    train_sample = train.subset(np.sort(sample_rows(len(train), cfg["holdout"], seed + TRAIN_SAMPLE_OFFSET)))
    clean = CNNClassifier(task, len(train.sequences[0]), seed=seed, **cfg["cnn"])
    clean.fit(encode(train.sequences), train.labels, training=cfg["clean_training"], seed=seed)
    settings = {**bench.COMMON, **bench.VARIANTS[variant]}
    if settings.get("inner") != "hotflip" or settings.get("init") != "clean":
        raise SystemExit(f"{variant}: only the HotFlip fine-tunes of bench_adversarial_training.py are measured here")
    defended = copy.deepcopy(clean)
    inner = replace(constraints, max_edits=settings.get("inner_max_edits") or constraints.max_edits)
    robust_epochs(defended, train, constraints=inner, settings=settings, training=cfg["clean_training"], seed=seed)
    fit, effects = [], []
    for name, clf in (("undefended", clean), (variant, defended)):
        fit += robust_rows(clf, train_sample, constraints, seed=seed, variant=name, sample="training rows")
        fit += robust_rows(clf, holdout, constraints, seed=seed, variant=name, sample="held out")
        effects += edit_effects(clf, holdout, constraints, seed=seed, variant=name)
        test_acc = accuracy(clf, encode(test.sequences), test.labels)
        print(f"{name}: clean accuracy on the whole test split {test_acc:.4f}", flush=True)
    return pd.DataFrame(fit), pd.DataFrame(effects)


def render(fit: pd.DataFrame, effects: pd.DataFrame) -> str:
    top = int(fit.budget.max())
    at_top = fit[fit.budget == top]
    lines = [
        f"Robust accuracy under HotFlip at budget {top} (clean accuracy in brackets) on {int(at_top.n.iloc[0])} "
        "training rows and on the held-out sample:\n",
        "| seed | model | training rows | held out | training - held out |",
        "|---|---|---|---|---|",
    ]
    for (seed, variant), g in at_top.groupby(["seed", "variant"], sort=False):
        tr = g[g["sample"] == "training rows"].iloc[0]
        ho = g[g["sample"] == "held out"].iloc[0]
        lines.append(
            f"| {seed} | `{variant}` | {tr.robust_accuracy:.3f} ({tr.clean_accuracy:.3f}) | "
            f"{ho.robust_accuracy:.3f} ({ho.clean_accuracy:.3f}) | {tr.robust_accuracy - ho.robust_accuracy:+.3f} |"
        )
    lines += [
        "",
        f"What HotFlip's edits at budget {top} do to the held-out sequences they break (per true label: the label's "
        "mean CpG count, sequences broken, how many of those gained / lost CpGs, mean change of CpG and G+C "
        "counts):\n",
        "| seed | model | label | mean CpG | broken | CpG up / down | CpG change | G+C change |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in effects.itertuples():
        lines.append(
            f"| {r.seed} | `{r.variant}` | {r.label} | {r.cpg_mean:.1f} | {r.broken} | {r.cpg_up} / {r.cpg_down} | "
            f"{r.cpg_change_mean:+.2f} | {r.gc_change_mean:+.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "benchmarks/adversarial_training.yaml")
    parser.add_argument("--task", default="prom_300_all")
    parser.add_argument("--variant", default="hotflip_finetune_lr5e4_10ep_b7_ema99_w07")
    parser.add_argument("--out", type=Path, help="TSV of the measurement (its edit effects go beside it)")
    parser.add_argument("--render", type=Path, nargs="+", help="TSVs written by --out, in seed order")
    args = parser.parse_args(argv)
    if args.render:
        fit = pd.concat([pd.read_csv(p, sep="\t") for p in args.render])
        effects = pd.concat([pd.read_csv(_effects_path(p), sep="\t") for p in args.render])
        bench.write_page(PAGE, render(fit, effects), BLOCK)
        return 0
    if args.out is None:
        parser.error("--out or --render is needed")
    fit, effects = measure(args.config, args.variant, args.task)
    fit.to_csv(args.out, sep="\t", index=False, float_format="%.4f")
    effects.to_csv(_effects_path(args.out), sep="\t", index=False, float_format="%.4f")
    return 0


def _effects_path(fit_tsv: Path) -> Path:
    return fit_tsv.with_name(fit_tsv.stem + "_edits.tsv")


if __name__ == "__main__":
    raise SystemExit(main())
