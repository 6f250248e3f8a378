"""Every generated block of docs/benchmarks/adversarial-training.md, rendered again from the committed TSVs.

Each block of that page is filled by one of four scripts (bench_adversarial_training.py ``--page-only``,
adversarial_seeds.py, motif_edits.py ``--render``, adversarial_fit.py ``--render``) from TSVs under benchmarks/.
``BLOCKS`` lists, per block, the renderer and its inputs, so that the whole page can be brought in line with the
TSVs in one command after a change to a renderer or to the rule that judges a gain, and so that a test can tell
when a block no longer says what its TSVs do. Run: ``.venv/bin/python benchmarks/adversarial_page.py`` (rewrite
every block) or ``--check`` (exit status 1 and the names of the blocks that differ; nothing written).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import adversarial_fit  # noqa: E402
import adversarial_paired  # noqa: E402
import adversarial_seeds  # noqa: E402
import bench_adversarial_training as bench  # noqa: E402
import motif_edits  # noqa: E402

PAGE = REPO / "docs/benchmarks/adversarial-training.md"
B = REPO / "benchmarks"


def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(B / name, sep="\t")


def _bench(name: str) -> Callable[[], str]:
    return lambda: bench.render(_read(name))


def _seeds(names: list[str], task: str = "prom_300_all", budget: int | None = None, seeds=None) -> Callable[[], str]:
    return lambda: adversarial_seeds.render([_read(n) for n in names], task, budget, seeds)


def _motifs(names: list[str]) -> Callable[[], str]:
    return lambda: motif_edits.render(
        pd.concat([_read(n) for n in names], ignore_index=True),
        pd.concat([_read(n.removesuffix(".tsv") + "_kmers.tsv") for n in names], ignore_index=True),
    )


def _fit(names: list[str]) -> Callable[[], str]:
    return lambda: adversarial_fit.render(
        pd.concat([_read(n) for n in names]), pd.concat([_read(n.removesuffix(".tsv") + "_edits.tsv") for n in names])
    )


def _paired(names: list[str], seeds: list[int | str], task: str, budgets: list[int]) -> Callable[[], str]:
    outcomes = [n.removesuffix(".tsv") + "_sequences.tsv" for n in names]
    return lambda: adversarial_paired.render(
        [_read(n) for n in names], [_read(n) for n in outcomes], seeds, task, budgets
    )


SEED_TSVS = ["adversarial_training.tsv"] + [f"adversarial_training_seed{i}.tsv" for i in range(1, 5)]
DEEP_TSVS = [f"adversarial_training_deep_seed{i}.tsv" for i in range(5)]
DEEP_TF0_TSVS = [f"adversarial_training_deep_tf0_seed{i}.tsv" for i in range(5)]
MOTIF_TSVS = [f"adversarial_training_deep_tf0_motifs_seed{i}.tsv" for i in (1, 2)]

BLOCKS: dict[str, Callable[[], str]] = {
    "adversarial-training": _bench("adversarial_training.tsv"),
    "adversarial-training-confirm": _bench("adversarial_training_confirm.tsv"),
    **{f"adversarial-training-seed{i}": _bench(f"adversarial_training_seed{i}.tsv") for i in range(1, 5)},
    "adversarial-training-seeds": _seeds(SEED_TSVS),
    "adversarial-training-wide": _bench("adversarial_training_wide.tsv"),
    "adversarial-training-wide-ema": _bench("adversarial_training_wide_ema.tsv"),
    **{f"adversarial-training-deep-seed{i}": _bench(f"adversarial_training_deep_seed{i}.tsv") for i in range(5)},
    "adversarial-training-deep-seeds": _seeds(DEEP_TSVS),
    "adversarial-training-deep-tf0": _bench("adversarial_training_deep_tf0_seed0.tsv"),
    **{f"adversarial-training-deep-tf0-seed{i}": _bench(DEEP_TF0_TSVS[i]) for i in range(1, 5)},
    "adversarial-training-deep-tf0-seeds": _seeds(DEEP_TF0_TSVS, "tf_0"),
    "adversarial-training-deep-tf0-seeds-b2": _seeds(DEEP_TF0_TSVS, "tf_0", budget=2),
    "adversarial-training-deep-tf0-seed0-avx2": _bench("adversarial_training_deep_tf0_seed0_avx2.tsv"),
    "adversarial-training-deep-tf0-paired": _paired(
        [DEEP_TF0_TSVS[1], DEEP_TF0_TSVS[2], DEEP_TF0_TSVS[4], "adversarial_training_deep_tf0_seed0_avx2.tsv"],
        [1, 2, 4, "0 (AVX2 re-run)"],
        "tf_0",
        [5, 2],
    ),
    "adversarial-motif-edits": _motifs(["motif_edits_deep_seed0.tsv", "motif_edits_deep_seed1.tsv"]),
    **{f"adversarial-training-deep-tf0-motifs-seed{i}": _bench(n) for i, n in zip((1, 2), MOTIF_TSVS, strict=True)},
    "adversarial-training-deep-tf0-motifs-seeds": _seeds(MOTIF_TSVS, "tf_0", seeds=[1, 2]),
    "adversarial-training-tf-full": _bench("adversarial_training_tf_full.tsv"),
    "adversarial-training-tf-15ep": _bench("adversarial_training_tf_15ep.tsv"),
    "adversarial-training-fit": _fit(["adversarial_training_fit_seed0.tsv", "adversarial_training_fit_seed3.tsv"]),
}


def page_blocks(text: str) -> dict[str, str]:
    """The content of every ``<!-- NAME:start -->`` ... ``<!-- NAME:end -->`` block of ``text``, by name."""
    return {m[1]: m[2] for m in re.finditer(r"<!-- ([\w-]+):start -->\n(.*?)<!-- \1:end -->", text, re.S)}


def stale(page: Path = PAGE) -> list[str]:
    """The blocks whose content differs from what their renderer makes of the TSVs now, and the page's blocks that
    no renderer fills (listed as 'NAME (no renderer)')."""
    have = page_blocks(page.read_text())
    differ = [name for name, make in BLOCKS.items() if have.get(name) != make()]
    return differ + [f"{name} (no renderer)" for name in have if name not in BLOCKS]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page", type=Path, default=PAGE)
    parser.add_argument("--check", action="store_true", help="list the blocks that differ; write nothing")
    args = parser.parse_args(argv)
    if args.check:
        differ = stale(args.page)
        for name in differ:
            print(f"{args.page}: block {name} is not what benchmarks/adversarial_page.py renders from its TSVs")
        return 1 if differ else 0
    for name, make in BLOCKS.items():
        bench.write_page(args.page, make(), name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
