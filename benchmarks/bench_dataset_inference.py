"""The calibration of dataset inference on a real run's attack scores: does the test reject when it should, keep its
level when it should not, and does DUCI's share land on the truth?

Reads the results folder of a finished ``make demo-inference`` run (``attacks/<model>/scores.tsv``, the target's
``membership.tsv``) and runs the library's own functions (gfm_audit.privacy.dataset_inference) on its scores:

1. **members**: the target's member windows as the suspect set against its non-members as the validation set, as
   rule dataset_inference does (``score_table_inference``: the combined p-value of the seeded splits, the effect
   size, the rule's control row) and the p-value against the number of suspect windows (``p_value_curve``).
2. **H0 calibration**: the non-members cut by ``--h0-splits`` seeded permutations into a suspect half and a
   validation half (disjoint); nothing differs between them, so the rule's p-value (``dataset_inference``, the
   splits' min(1, 2 median p)) should reject at ``--h0-alpha`` at most that often. The false-positive rate gets a
   Clopper-Pearson interval (the library's); its target is met when the interval reaches down to the level. The
   p-values are kept: a single split's should be uniform (two-sided KS test), the combined one at most as small as
   uniform (one-sided KS, against p-values piled at 0). Both KS tests have little power at 20 p-values, and the
   halves share windows across permutations, so the 20 verdicts are not independent trials.
3. **DUCI**: suspect sets of ``--duci-size`` windows with 0, 25, 50 and 100% members, ``--duci-draws`` seeded draws
   each, estimated by ``cross_fitted_duci`` (each half of the suspect set calibrated on the labelled windows outside
   it, as the rule does). Per draw: the raw estimate, its delta-method standard error, whether the true share lies
   within 1.96 of them; per share, the coverage with its Clopper-Pearson interval (target: reaches up to 95%).

Writes one row per case (``--out``) and the summary into the page (``--page``, between its dataset-inference
markers). Exit status 1 when a target is missed (the table and the page are written first).

Run: .venv/bin/python benchmarks/bench_dataset_inference.py [--results demo-inference/results] [--model demo_lm]
(a few seconds to a minute on one core).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import kstest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow_scripts"))
from gfm_audit.privacy.dataset_inference import (  # noqa: E402
    complete_features,
    cross_fitted_duci,
    dataset_inference,
    disjoint_sets,
    score_table_inference,
)
from gfm_audit.privacy.metrics import clopper_pearson, read_scores  # noqa: E402

START, END = "<!-- dataset-inference:start -->", "<!-- dataset-inference:end -->"
SHARES = (0.0, 0.25, 0.5, 1.0)
Z95 = 1.959964  # a two-sided 95% normal interval: DUCI's estimate +- Z95 standard errors
LEVEL = 0.95  # of every Clopper-Pearson interval here
COLUMNS = (
    "case",
    "attack",
    "split",
    "draw",
    "true_share",
    "n_suspect",
    "n_validation",
    "n_features",
    "p_value",
    "p_single",
    "p_median",
    "p_min",
    "p_max",
    "alpha",
    "rejected",
    "t_statistic",
    "mean_difference",
    "cohens_d",
    "repeats",
    "p_mean",
    "rejected_share",
    "estimate",
    "estimate_clipped",
    "standard_error",
    "covered",
    "guessed_share",
    "tpr",
    "fpr",
    "threshold",
    "n_cal_members",
    "n_cal_nonmembers",
)


def read_run(results: Path, model: str | None) -> tuple[str, pd.DataFrame, str]:
    """The model's score table, checked against membership.tsv, and a short digest of scores.tsv (which run)."""
    if model is None:
        found = sorted(p.parent.name for p in (results / "attacks").glob("*/scores.tsv"))
        if len(found) != 1:
            raise SystemExit(f"{results}/attacks: {len(found)} models with scores.tsv ({found}); name one with --model")
        model = found[0]
    path = results / "attacks" / model / "scores.tsv"
    table = read_scores(path)
    membership = pd.read_csv(results / "membership.tsv", sep="\t", dtype={"window_id": str})
    # The score table's labels are the target's: a folder whose two files disagree is not one run.
    truth = table[["window_id", "member"]].merge(membership[["window_id", "target_member"]], on="window_id")
    if len(truth) != len(table) or (truth.member != truth.target_member).any():
        raise SystemExit(f"{path}: its member column is not {results / 'membership.tsv'}'s target_member")
    return model, table, hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def members_case(table: pd.DataFrame, args: argparse.Namespace) -> pd.DataFrame:
    """The rule's two rows (members against non-members, and its control) and the p-value curve."""
    member = table.member.to_numpy()
    result, curve = score_table_inference(
        table,
        member == 1,
        member == 0,
        names=("members", "non_members"),
        splits=args.splits,
        seed=args.seed,
        alpha=args.alpha,
        clip=args.clip,
        C=args.C,
        curve_repeats=args.curve_repeats,
        duci_attack=args.duci_attacks[0],
    )
    # The rule's DUCI share of each row's suspect side, beside the truth: every member, or none.
    rows = result.assign(
        case=result.test.map({"suspect": "members", "control": "control"}),
        attack=result.duci_attack,
        true_share=result.test.map({"suspect": 1.0, "control": 0.0}),
    ).rename(columns={f"duci_{c}": c for c in ("guessed_share", "tpr", "fpr", "threshold")})
    rows = rows.rename(
        columns={
            "duci_fraction_raw": "estimate",
            "duci_fraction": "estimate_clipped",
            "duci_standard_error": "standard_error",
            "duci_n_members": "n_cal_members",
            "duci_n_nonmembers": "n_cal_nonmembers",
        }
    )
    rows["covered"] = (rows.estimate - rows.true_share).abs() <= Z95 * rows.standard_error
    rows = rows[[c for c in COLUMNS if c in rows.columns]]
    curve = curve.assign(case="curve")
    return pd.concat([rows, curve[[c for c in COLUMNS if c in curve.columns]]], ignore_index=True)


def h0_splits(table: pd.DataFrame, args: argparse.Namespace) -> tuple[pd.DataFrame, list[tuple[list[str], list[str]]]]:
    """One row per seeded cut of the non-members into a suspect half and a validation half, and the cuts' ids."""
    nonmembers = table[table.member == 0]
    features = nonmembers.drop(columns=["window_id", "member"])
    ids = nonmembers.window_id.astype(str).to_numpy()
    rows, sets = [], []
    for i in range(args.h0_splits):
        order = np.random.default_rng([args.seed, 2, i]).permutation(len(nonmembers))
        half = len(order) // 2
        s_rows, v_rows = order[:half], order[half:]
        disjoint_sets(ids[s_rows].tolist(), ids[v_rows].tolist(), suspect_key="H0 suspect", validation_key="H0 half")
        sets.append((ids[s_rows].tolist(), ids[v_rows].tolist()))
        cols, s, v = complete_features(features.iloc[s_rows], features.iloc[v_rows])
        result = dataset_inference(
            s.to_numpy(), v.to_numpy(), splits=args.splits, seed=args.seed, clip=args.clip, C=args.C, where="H0 split"
        )
        summary = result.row()
        rows.append(
            {
                "case": "h0",
                "split": i,
                "n_suspect": len(s),
                "n_validation": len(v),
                "n_features": len(cols),
                **{k: summary[k] for k in ("p_value", "p_median", "p_min", "p_max", "t_statistic", "cohens_d")},
                "mean_difference": summary["mean_difference"],
                # One split's p-value is uniform under H0; the combination is not (it is conservative).
                "p_single": result.splits[0].p_value,
                "alpha": args.h0_alpha,
                "rejected": bool(summary["p_value"] < args.h0_alpha),
            }
        )
    return pd.DataFrame(rows), sets


def duci_draws(table: pd.DataFrame, args: argparse.Namespace) -> pd.DataFrame:
    """One row per attack, true share and seeded draw of a suspect set of args.duci_size windows."""
    rows = []
    for attack in args.duci_attacks:
        scored = table[attack].notna().to_numpy()
        scores, member = table[attack].to_numpy(float)[scored], table.member.to_numpy(int)[scored]
        members, nonmembers = np.flatnonzero(member == 1), np.flatnonzero(member == 0)
        for share in args.shares:
            k = round(share * args.duci_size)
            if k > len(members) or args.duci_size - k > len(nonmembers):
                raise SystemExit(f"{attack}: a suspect set of {args.duci_size} at share {share} needs more windows")
            for d in range(args.duci_draws):
                # The same draws for every attack scored on the same windows: the attacks are compared on one set.
                rng = np.random.default_rng([args.seed, 3, round(share * 100), d])
                suspect = np.zeros(len(scores), bool)
                suspect[rng.choice(members, k, replace=False)] = True
                suspect[rng.choice(nonmembers, args.duci_size - k, replace=False)] = True
                duci = cross_fitted_duci(scores, member, suspect, seed=args.seed)
                rows.append(
                    {
                        "case": "duci",
                        "attack": attack,
                        "draw": d,
                        "true_share": share,
                        "n_suspect": duci.n_suspect,
                        "estimate": duci.fraction_raw,
                        "estimate_clipped": duci.fraction,
                        "standard_error": duci.standard_error,
                        "covered": bool(abs(duci.fraction_raw - share) <= Z95 * duci.standard_error),
                        "guessed_share": duci.guessed_share,
                        "tpr": duci.tpr,
                        "fpr": duci.fpr,
                        "threshold": duci.threshold,
                        "n_cal_members": duci.n_members,
                        "n_cal_nonmembers": duci.n_nonmembers,
                    }
                )
    return pd.DataFrame(rows)


def cell(v) -> str:
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if isinstance(v, float | np.floating):
        return "" if math.isnan(v) else f"{v:.3g}"
    return str(v)


def md_table(frame: pd.DataFrame) -> str:
    head = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns) + "\n"
    return head + "".join("| " + " | ".join(cell(v) for v in r) + " |\n" for r in frame.itertuples(index=False))


def summarise(table: pd.DataFrame, args: argparse.Namespace) -> tuple[str, list[str]]:
    """The page's block and the targets missed."""
    missed = []
    rule = table[table.case.isin(["members", "control"])]
    members = rule[rule.case == "members"].iloc[0]
    if not members.p_value < args.alpha:
        missed.append(f"members: p = {members.p_value:.3g}, not below {args.alpha:g}")
    first = pd.DataFrame(
        {
            "test": rule.case,
            "suspect windows": rule.n_suspect.astype(int),
            "validation windows": rule.n_validation.astype(int),
            "features": rule.n_features.astype(int),
            "p (2 x median)": rule.p_value,
            "p range over splits": [f"{a:.3g} to {b:.3g}" for a, b in zip(rule.p_min, rule.p_max, strict=True)],
            "Cohen's d": rule.cohens_d,
            f"rejected at {args.alpha:g}": rule.p_value < args.alpha,
            "DUCI attack": rule.attack,
            "true share": rule.true_share,
            "DUCI share (raw)": rule.estimate,
            "standard error": rule.standard_error,
            "within 1.96 SE": rule.covered.astype(bool),
        }
    )
    for r in rule[~rule.covered.astype(bool)].itertuples():
        missed.append(
            f"the rule's DUCI on the {r.case} row: {r.estimate:.3g} +- {r.standard_error:.3g}, truth {r.true_share:g}"
        )
    curve = table[table.case == "curve"]
    curve_md = pd.DataFrame(
        {
            "suspect windows": curve.n_suspect.astype(int),
            "validation windows": curve.n_validation.astype(int),
            "repeats": curve.repeats.astype(int),
            "median p": curve.p_median,
            f"power at {args.alpha:g}": curve.rejected_share,
        }
    )

    h0 = table[table.case == "h0"]
    n = len(h0)
    # The combination is conservative by design: only p-values piled below uniform's speak against it.
    ks_label = {"greater": "one-sided: below uniform?", "two-sided": "two-sided"}
    lines = []
    for name, p, ks_alt in (
        ("the rule's p (2 x median of the splits)", h0.p_value, "greater"),
        ("one split's p", h0.p_single, "two-sided"),
    ):
        k = int((p < args.h0_alpha).sum())
        lo, hi = clopper_pearson(np.array([k]), n, LEVEL)
        ks = kstest(p.to_numpy(float), "uniform", alternative=ks_alt).pvalue
        lines.append(
            {
                "p-value": name,
                "splits": n,
                f"rejected at {args.h0_alpha:g}": k,
                "false-positive rate": k / n,
                "95% Clopper-Pearson": f"{lo[0]:.3g} to {hi[0]:.3g}",
                "target met": bool(lo[0] <= args.h0_alpha),
                "median p": float(p.median()),
                "smallest p": float(p.min()),
                "KS test vs uniform": f"{ks:.3g} ({ks_label[ks_alt]})",
            }
        )
    h0_md = pd.DataFrame(lines)
    if not h0_md["target met"].iloc[0]:
        missed.append("H0: the rule's false-positive rate is above the level beyond sampling error")

    duci = table[table.case == "duci"]
    parts = []
    for (attack, share), g in duci.groupby(["attack", "true_share"], sort=False):
        k = int(g.covered.sum())
        lo, hi = clopper_pearson(np.array([k]), len(g), LEVEL)
        met = bool(hi[0] >= LEVEL)
        if not met:
            missed.append(f"DUCI {attack} at share {share:g}: {k} of {len(g)} draws cover the truth")
        parts.append(
            {
                "attack": attack,
                "true share": share,
                "draws": len(g),
                "suspect windows": int(g.n_suspect.iloc[0]),
                "mean estimate": g.estimate.mean(),
                "sd over draws": g.estimate.std(ddof=1) if len(g) > 1 else math.nan,
                "mean standard error": g.standard_error.mean(),
                "largest error": (g.estimate - share).abs().max(),
                "within 1.96 SE": f"{k} of {len(g)}",
                "coverage 95% CP": f"{lo[0]:.3g} to {hi[0]:.3g}",
                "target met": met,
                "mean TPR": g.tpr.mean(),
                "mean FPR": g.fpr.mean(),
            }
        )
    duci_md = pd.DataFrame(parts)
    block = (
        f"Members against non-members (the rule's test, {args.splits} splits; the control row is the rule's "
        "two halves of the non-members):\n\n"
        + md_table(first)
        + "\nThe p-value against the number of suspect windows (`p_value_curve`):\n\n"
        + md_table(curve_md)
        + f"\nH0: {n} seeded cuts of the non-members into a suspect half and a validation half:\n\n"
        + md_table(h0_md)
        + f"\nDUCI: suspect sets of {args.duci_size} windows, {args.duci_draws} seeded draws per share "
        "(`cross_fitted_duci`):\n\n" + md_table(duci_md)
    )
    return block, missed


def write_page(page: Path, text: str) -> None:
    content = page.read_text()
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    if not pattern.search(content):
        raise SystemExit(f"{page}: no {START} ... {END} block to fill")
    page.write_text(pattern.sub(lambda _: f"{START}\n{text}{END}", content))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default=str(REPO / "demo-inference" / "results"))
    parser.add_argument("--model", help="the audited model (default: the only one under attacks/)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "dataset_inference.tsv"))
    parser.add_argument("--page", default=str(REPO / "docs" / "benchmarks" / "dataset-inference.md"))
    # The rule's settings, at the schema's defaults.
    parser.add_argument("--splits", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--clip", type=float, default=0.025)
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--curve-repeats", type=int, default=20)
    parser.add_argument("--h0-splits", type=int, default=20)
    parser.add_argument("--h0-alpha", type=float, default=0.05)
    parser.add_argument(
        "--duci-attacks",
        nargs="+",
        default=["loss", "gradnorm"],
        help="score columns for DUCI; the first is the rule's (default loss), the others show a weaker attack",
    )
    parser.add_argument("--duci-size", type=int, default=100)
    parser.add_argument("--duci-draws", type=int, default=20)
    parser.add_argument("--shares", type=float, nargs="+", default=list(SHARES))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    model, table, digest = read_run(Path(args.results), args.model)
    missing = [a for a in args.duci_attacks if a not in table.columns.drop(["window_id", "member"])]
    if missing:
        raise SystemExit(f"--duci-attacks {missing}: not columns of {model}'s scores.tsv")
    h0, _ = h0_splits(table, args)
    rows = pd.concat([members_case(table, args), h0, duci_draws(table, args)], ignore_index=True)
    rows = rows.reindex(columns=list(COLUMNS))
    rows.to_csv(args.out, sep="\t", index=False, float_format="%.6g")
    block, missed = summarise(rows, args)
    source = (
        f"Input: model `{model}`, {int((table.member == 1).sum())} member and {int((table.member == 0).sum())} "
        f"non-member windows, {table.shape[1] - 2} attack scores (scores.tsv sha256 {digest}...).\n\n"
    )
    verdict = "\nTargets: " + ("all met." if not missed else "missed: " + "; ".join(missed) + ".") + "\n"
    write_page(Path(args.page), source + block + verdict)
    print(source + block + verdict)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
