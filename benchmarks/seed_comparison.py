"""The seed benchmark in the project's own setting: the run's neighbourhood tables beside the published pilot.

Reads one run of config/studies/hyenadna_seed.yaml (`make study-seed`): results/attacks/<model>/scores.tsv,
neighborhood_thresholds.tsv and metrics.tsv. The pilot scored two neighbour sets, p = 0.1/0.2/0.3 and
p = 0.6/0.8/1.0, one neighbour at each p; the run scores one neighbour at each of the six p, so a set's
neighbourhood score (Mattern et al. 2023, with SNP neighbours) is pooled here from the run's per-p columns:

    score_set(x) = mean over p in the set of (L(n_p) - L(x)) = mean_n L(n) - L(x),

L the mean per-token loss on all tokens, or on the tokens over the window's SNP sites (``_snpsites``). The
per-p columns are first checked against the run's own neighborhood_thresholds.tsv (the same windows and the
same grid give the same rows, else the files are from different runs). Each set score then goes through the
library's threshold table (precision = TP / (TP + FP), recall = TP / members, FPR = FP / non-members at
t = 0.00 ... 0.19, a window called member when its score > t) and metrics (AUC with a bootstrap CI).

Writes --out (one row per threshold: the pilot's "precision" where known, then precision / recall / FPR of each
set and loss) and --auc (one row per attack: the pooled set scores, then every row of the run's metrics.tsv).
The pilot computed its "precision" on members only and published it rising from 0.000 at t = 0.00 to 0.870 at
t = 0.19; only those two values are known to us, and the column is empty elsewhere.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from gfm_audit.privacy.metrics import HYENADNA_BENCHMARK_THRESHOLDS, evaluate, read_scores, threshold_table

SETS = {"low": (0.1, 0.2, 0.3), "high": (0.6, 0.8, 1.0)}
LOSSES = {"all": "", "snp": "_snpsites"}
# The published pilot's column at the two thresholds we know it at; every other threshold is left empty.
PILOT = {0.0: 0.000, 0.19: 0.870}
METRIC_KEYS = ("precision", "recall", "fpr")
START, END = "<!-- seed-setting:start -->", "<!-- seed-setting:end -->"


def column(p: float, suffix: str) -> str:
    return f"neighborhood_snp_p{p:g}{suffix}"


def set_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """window_id, member and one pooled column per set and loss, ``neighborhood_snp_<set>_<loss>``."""
    out = scores[["window_id", "member"]].copy()
    for name, probs in SETS.items():
        for loss, suffix in LOSSES.items():
            needed = [column(p, suffix) for p in probs]
            missing = [c for c in needed if c not in scores]
            if missing:
                raise SystemExit(
                    f"scores.tsv has no column {missing[0]}: run the config with neighbors.probs holding "
                    f"{', '.join(f'{p:g}' for p in probs)} and attacks.names holding neighborhood"
                )
            out[f"neighborhood_snp_{name}_{loss}"] = scores[needed].to_numpy(float).mean(axis=1)
    return out


def check_run_table(scores: pd.DataFrame, run_table: pd.DataFrame) -> None:
    """The run's own threshold rows of the per-p columns must equal ours recomputed from scores.tsv."""
    columns = [column(p, s) for probs in SETS.values() for p in probs for s in LOSSES.values()]
    order = ["attack", "threshold"]
    ours = threshold_table(scores[["window_id", "member", *columns]], HYENADNA_BENCHMARK_THRESHOLDS)
    ours = ours.sort_values(order, kind="stable").reset_index(drop=True)
    theirs = run_table[run_table.attack.isin(columns)].sort_values(order, kind="stable").reset_index(drop=True)
    if len(theirs) != len(ours):
        raise SystemExit(
            f"neighborhood_thresholds.tsv has {len(theirs)} rows of the per-p columns, not {len(ours)}: "
            "run the config with attacks.neighborhood.thresholds: fixed"
        )
    for key in ("threshold", "called_members", *METRIC_KEYS):
        # The run writes 6 significant digits ("%.6g"): agreement to that rounding.
        if not np.allclose(ours[key].to_numpy(float), theirs[key].to_numpy(float), rtol=1e-5, atol=0, equal_nan=True):
            raise SystemExit(f"neighborhood_thresholds.tsv's {key} differs from scores.tsv's: files of two runs?")


def comparison(pooled: pd.DataFrame) -> pd.DataFrame:
    """One row per threshold: the pilot's value where known, and precision / recall / FPR of each set and loss."""
    table = threshold_table(pooled, HYENADNA_BENCHMARK_THRESHOLDS)
    wide = pd.DataFrame({"threshold": list(HYENADNA_BENCHMARK_THRESHOLDS)})
    wide["pilot_precision"] = [PILOT.get(t, np.nan) for t in wide.threshold]
    for name in SETS:
        for loss in LOSSES:
            rows = table[table.attack == f"neighborhood_snp_{name}_{loss}"].reset_index(drop=True)
            for key in METRIC_KEYS:
                wide[f"{name}_p_{loss}_{key}"] = rows[key].to_numpy(float)
    return wide


def aucs(pooled: pd.DataFrame, run_metrics: pd.DataFrame, *, n_boot: int, seed: int) -> pd.DataFrame:
    ours = evaluate(pooled, n_boot=n_boot, seed=seed, delta=1e-5, level=0.95).assign(source="pooled here")
    theirs = run_metrics.assign(source="run metrics.tsv")
    keep = ["attack", "source", "auc", "auc_low", "auc_high", "tpr_at_fpr_0.01", "n_members", "n_nonmembers"]
    return pd.concat([ours[keep], theirs[keep]], ignore_index=True)


def cell(value: float | str) -> str:
    # A TPR at low FPR is a word (insufficient_nonmembers) when too few non-members can reach that FPR.
    if isinstance(value, str):
        return value.replace("_", " ")
    return "" if pd.isna(value) else f"{value:.3f}"


def markdown(table: pd.DataFrame, auc_table: pd.DataFrame) -> str:
    """The page's block: each set and loss as precision / recall / FPR, then the AUCs."""
    groups = [(name, loss) for name in SETS for loss in LOSSES]
    title = {"all": "all tokens", "snp": "SNP sites"}
    head = "| t | pilot | " + " | ".join(
        f"p {'/'.join(f'{p:g}' for p in SETS[name])}, {title[loss]}" for name, loss in groups
    )
    lines = [head + " |", "|" + "---|" * (2 + len(groups))]
    for row in table.itertuples(index=False):
        values = row._asdict()
        # An undefined precision (no window called) reads "–", not an empty slot.
        cells = [
            " / ".join(cell(values[f"{name}_p_{loss}_{key}"]) or "–" for key in METRIC_KEYS) for name, loss in groups
        ]
        lines.append(f"| {row.threshold:.2f} | {cell(row.pilot_precision)} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| attack | source | AUC (95% CI) | TPR at FPR 0.01 | members | non-members |",
        "|---|---|---|---|---|---|",
    ]
    for row in auc_table.to_dict("records"):
        auc = f"{cell(row['auc'])} ({cell(row['auc_low'])}-{cell(row['auc_high'])})"
        tpr = cell(row["tpr_at_fpr_0.01"])
        lines.append(
            f"| {row['attack']} | {row['source']} | {auc} | {tpr} | {row['n_members']} | {row['n_nonmembers']} |"
        )
    return "\n".join(lines) + "\n"


def write_page(page: Path, text: str) -> None:
    content = page.read_text()
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    if not pattern.search(content):
        raise SystemExit(f"{page}: no {START} ... {END} block to fill")
    page.write_text(pattern.sub(lambda _: f"{START}\n{text}{END}", content))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="the run's results/ folder")
    parser.add_argument("--model", default="hyenadna")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/seed_comparison.tsv"))
    parser.add_argument("--auc", type=Path, default=Path("benchmarks/seed_comparison_auc.tsv"))
    # As the config's attacks.metrics, so that the pooled rows' CIs are drawn as the run's are.
    parser.add_argument("--page", type=Path, default=None, help="fill its generated block (docs/benchmarks/...)")
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    folder = args.results / "attacks" / args.model
    paths = {name: folder / f"{name}.tsv" for name in ("scores", "neighborhood_thresholds", "metrics")}
    for path in paths.values():
        if not path.exists():
            raise SystemExit(f"{path}: not found; run `make study-seed` first (or pass the run's results/ folder)")
    scores = read_scores(paths["scores"])
    check_run_table(scores, pd.read_csv(paths["neighborhood_thresholds"], sep="\t"))
    pooled = set_scores(scores)
    comparison(pooled).to_csv(args.out, sep="\t", index=False, float_format="%.4f", na_rep="")
    table = aucs(pooled, pd.read_csv(paths["metrics"], sep="\t"), n_boot=args.bootstrap, seed=args.seed)
    table.to_csv(args.auc, sep="\t", index=False, float_format="%.4f", na_rep="")
    if args.page is not None:
        write_page(args.page, markdown(pd.read_csv(args.out, sep="\t"), pd.read_csv(args.auc, sep="\t")))
    print(f"wrote {args.out} and {args.auc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
