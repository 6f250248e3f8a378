"""Masked models' scoring cost, ``sampled`` pseudo-log-likelihood against ``exact``.

Run: nice .venv/bin/python benchmarks/bench_masked_cost.py [--windows N] [--references R] [--seeds S]

What it does, in one process on a temporary folder:
1. The demo's data the demo's way (config/demo.yaml): reference staging, windows, SNP neighbors and controls,
   and the membership split (the library functions the workflow's rules call).
2. A masked target trained from scratch on the demo's member windows with the demo's training recipe
   (membership.training: epochs, learning rate, batch size; the masked-token loss of ``training.py``), on the
   ESM-style character masked LM of ``char_lm.save_char_masked_lm`` (the architecture the tests use), and
   ``--references`` reference models on their own random halves, as the workflow trains them.
3. Every model scores ``--windows`` demo windows (half members, half non-members, seeded) and their neighbors in
   ``exact`` mode (one forward pass per token) through the library's scoring path.
4. ``sampled`` at each ``--fractions`` value: a masked model's pseudo-log-likelihood of a token comes from the
   forward pass that masks that token alone, so the log p, mean and std of a token scored in ``sampled`` mode are
   those of the same token in ``exact`` mode. The sampled features are therefore the library's own reduction
   (``_feature_rows``) of the exact statistics at the positions ``sampled`` mode picks (``sampled_offsets``,
   ``scored_positions``), for scoring seeds 0..S-1: S draws of the sampled subset at no extra forward passes.
   On ``--timing-windows`` windows each sampled setting is also scored for real (seed 0), to time it against
   exact on the same sequences and to check that its statistics equal the derived ones.
5. The attacks run through the attack registry (``run_attacks``) on each setting's per-window table; AUC by
   ``metrics.auc_with_ci``.

Cost: forward passes (one sequence through the model each; every pass carries the whole sequence, so tokens
through the model are in the same ratio) relative to exact, counted on all scored sequences; wall time relative
to exact, measured on the timing windows.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow_scripts"))

import gfm_audit  # noqa: E402,F401  (MKL settings before torch)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from gfm_audit.char_lm import save_char_masked_lm  # noqa: E402
from gfm_audit.config import load_config  # noqa: E402
from gfm_audit.fasta import read_fasta  # noqa: E402
from gfm_audit.models import ModelSpec  # noqa: E402
from gfm_audit.privacy.attacks import AttackData, required_features  # noqa: E402
from gfm_audit.privacy.attacks.runner import run_attacks  # noqa: E402
from gfm_audit.privacy.features import BASE_FEATURES, window_table  # noqa: E402
from gfm_audit.privacy.membership import finetune_split  # noqa: E402
from gfm_audit.privacy.metrics import auc_with_ci  # noqa: E402
from gfm_audit.privacy.neighbors import make_neighbors  # noqa: E402
from gfm_audit.privacy.reference import prepare_reference, staged_layout  # noqa: E402
from gfm_audit.privacy.score_table import scored_tokens  # noqa: E402
from gfm_audit.privacy.scoring import (  # noqa: E402
    _feature_rows,
    _load,
    _score_loaded,
    load_sequences,
    read_snp_offsets,
    sampled_offsets,
    scored_positions,
)
from gfm_audit.privacy.training import member_sequences, train_model  # noqa: E402
from gfm_audit.privacy.windows import select_windows  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

TARGET = "masked_lm"


def demo_data(tmp: Path, config: dict, n_references: int) -> tuple[Path, Path, Path, Path, pd.DataFrame]:
    """windows.fa, snps.tsv.gz, neighbors.fa, neighbors.tsv and the membership table, as the demo makes them."""
    ref = config["reference"]
    fasta, vcf = str(REPO / ref["fasta"]), str(REPO / ref["vcf"])
    layout = staged_layout(fasta, vcf, tmp / "reference")
    prepare_reference(fasta, vcf, layout)
    win = tmp / "windows"
    win.mkdir()
    select_windows(
        str(layout.fasta),
        str(layout.vcf),
        str(layout.contigs),
        params=config["windows"],
        out_tsv=win / "windows.tsv",
        out_fasta=win / "windows.fa",
        out_snps=win / "snps.tsv.gz",
    )
    make_neighbors(
        str(win / "windows.fa"),
        str(win / "snps.tsv.gz"),
        params=config["neighbors"],
        out_fasta=win / "neighbors.fa",
        out_tsv=win / "neighbors.tsv",
    )
    ids = list(read_fasta(win / "windows.fa"))
    m = config["membership"]
    split = finetune_split(ids, member_fraction=m["member_fraction"], n_references=n_references, seed=m["seed"])
    return win / "windows.fa", win / "snps.tsv.gz", win / "neighbors.fa", win / "neighbors.tsv", split


def train(tmp: Path, config: dict, windows: dict[str, str], split: pd.DataFrame, args) -> dict[str, ModelSpec]:
    """The target and the reference models, trained the demo's way (seeds as rules/training.smk gives them)."""
    arch = save_char_masked_lm(tmp / "arch", hidden=args.hidden, layers=args.layers, weights_seed=None)
    m = config["membership"]
    training = dict(m["training"])
    if args.epochs is not None:
        training["epochs"] = args.epochs
    columns = {TARGET: "target_member", **{f"ref_{i}": f"ref_{i}_member" for i in range(args.references)}}
    specs = {}
    for i, (name, column) in enumerate(columns.items()):
        labels = split.set_index("window_id")[column].to_dict()
        spec = ModelSpec(name=name, path=str(arch), kind="masked", init="scratch", masking="exact")
        start = time.perf_counter()
        losses = train_model(
            spec,
            member_sequences(windows, labels),
            params=training,
            seed=m["seed"] + i,
            out_dir=tmp / "models" / name,
            device="cpu",
        )
        print(
            f"# trained {name}: {training['epochs']} epochs, loss {losses[0]:.3f} -> {losses[-1]:.3f} "
            f"({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
        specs[name] = replace(spec, path=str(tmp / "models" / name), init="pretrained")
    return specs


def pick_windows(split: pd.DataFrame, n: int, seed: int) -> list[str]:
    """n windows, half members and half non-members of the target, seeded; in file order."""
    rng = np.random.default_rng(seed)
    member = split.target_member.to_numpy() == 1
    chosen = np.concatenate(
        [
            rng.choice(np.flatnonzero(member), n // 2, replace=False),
            rng.choice(np.flatnonzero(~member), n - n // 2, replace=False),
        ]
    )
    return split.window_id.to_numpy()[np.sort(chosen)].tolist()


def subset_columns(records, encodings, exact_positions, *, snp_offsets, fraction: float, seed: int) -> list:
    """Per sequence, the columns of its exact statistics that ``sampled`` mode scores (the library's choice)."""
    empty = np.zeros(0, dtype=np.int64)
    cache: dict[str, np.ndarray] = {}
    out = []
    for r, enc, exact in zip(records, encodings, exact_positions, strict=True):
        if r.window_id not in cache:
            cache[r.window_id] = sampled_offsets(
                r.window_id, len(r.text), snp_offsets=snp_offsets.get(r.window_id, empty), fraction=fraction, seed=seed
            )
        pos = scored_positions(enc, "masked", masking="sampled", offsets=cache[r.window_id])
        cols = np.searchsorted(exact, pos)
        assert np.array_equal(exact[cols], pos), "a sampled position that exact mode does not score"
        out.append(cols)
    return out


def attack_scores(tables: dict[str, pd.DataFrame], split: pd.DataFrame, ids: list[str], params, names) -> pd.DataFrame:
    """Every attack variant's score per window (columns), with ``window_id`` and ``member``."""
    labels = split.set_index("window_id").loc[ids]
    refs = [m for m in tables if m != TARGET]
    data = AttackData(
        target=TARGET,
        window_ids=ids,
        member=labels.target_member.to_numpy(),
        features={m: t.set_index("window_id").loc[ids] for m, t in tables.items()},
        references=refs,
        ref_member={r: labels[f"{r}_member"].to_numpy() for r in refs},
        params=params,
    )
    return run_attacks(data, names)[0]


def attack_aucs(tables: dict[str, pd.DataFrame], split: pd.DataFrame, ids: list[str], params, names, *, n_boot=0):
    """AUC (and its bootstrap CI with ``n_boot`` resamples) of every attack variant on these per-window tables."""
    scores = attack_scores(tables, split, ids, params, names)
    out = {}
    for column in scores.columns.drop(["window_id", "member"]):
        ok = scores[column].notna().to_numpy()
        y = scores.member.to_numpy(int)[ok]
        out[column] = auc_with_ci(scores[column].to_numpy(float)[ok], y, n_boot=n_boot, seed=0)
    return out


def paired_auc_difference(
    exact: np.ndarray, sampled: np.ndarray, member: np.ndarray, *, n_boot: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """AUC(sampled) - AUC(exact) and its 95% percentile interval over windows resampled together (paired
    bootstrap: both scorings of a window enter or leave a resample at once, so the interval reflects how far
    the two scorings disagree, not how far either AUC is from the population's)."""
    ok = np.isfinite(exact) & np.isfinite(sampled)
    exact, sampled, member = exact[ok], sampled[ok], member[ok].astype(bool)
    rng = np.random.default_rng(seed)
    point = roc_auc_score(member, sampled) - roc_auc_score(member, exact)
    diffs = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(member), len(member))
        if member[idx].all() or not member[idx].any():
            continue
        diffs.append(roc_auc_score(member[idx], sampled[idx]) - roc_auc_score(member[idx], exact[idx]))
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return float(point), float(lo), float(hi)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=40, help="demo windows scored (half members)")
    parser.add_argument("--timing-windows", type=int, default=2, help="windows also scored for real in sampled mode")
    parser.add_argument("--references", type=int, default=0, help="reference models (the demo trains 2)")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.0, 0.02, 0.05, 0.1, 0.15, 0.25])
    parser.add_argument("--seeds", type=int, default=5, help="draws of the sampled positions per fraction")
    parser.add_argument("--epochs", type=int, default=None, help="default: the demo's membership.training.epochs")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--strongest", type=int, default=3, help="attack variants, by exact AUC, for the target")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_config(REPO / "config/demo.yaml")
    params = config["attacks"]
    names = params["names"]
    features = [*BASE_FEATURES, *(f for f in required_features(names, params) if f not in BASE_FEATURES)]
    batch_size, scoring_seed = config["scoring"]["batch_size"], config["scoring"]["seed"]
    print(f"# load average at start: {os.getloadavg()}; torch threads {args.threads}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        windows_fa, snps, neighbors_fa, neighbors_tsv, split = demo_data(tmp, config, args.references)
        windows = read_fasta(windows_fa)
        specs = train(tmp, config, windows, split, args)
        ids = pick_windows(split, args.windows, seed=0)
        records = load_sequences(str(windows_fa), str(neighbors_fa), str(neighbors_tsv), window_ids=ids)
        snp_offsets = read_snp_offsets(str(snps))
        timing_ids = set(ids[: args.timing_windows])
        timing_records = [r for r in records if r.window_id in timing_ids]

        exact: dict[str, tuple] = {}
        loaded = {}
        for name, spec in specs.items():
            loaded[name] = _load(spec, batch_size=batch_size, device="cpu", options=None)
            start = time.perf_counter()
            exact[name] = _score_loaded(
                spec, loaded[name], records, snp_offsets=snp_offsets, seed=scoring_seed, progress=False
            )
            print(
                f"# exact scoring of {name}: {len(records)} sequences, {time.perf_counter() - start:.0f} s", flush=True
            )

        def tables_for(fraction: float | None, seed: int) -> tuple[dict[str, pd.DataFrame], int]:
            tables, passes = {}, 0
            for name, (encodings, positions, stats) in exact.items():
                if fraction is None:
                    pos, st = positions, stats
                else:
                    cols = subset_columns(
                        records, encodings, positions, snp_offsets=snp_offsets, fraction=fraction, seed=seed
                    )
                    pos = [p[c] for p, c in zip(positions, cols, strict=True)]
                    st = [s[:, c] for s, c in zip(stats, cols, strict=True)]
                passes += sum(len(p) for p in pos)
                scored = scored_tokens(records, encodings, pos, stats=st, snp_offsets=snp_offsets)
                rows = _feature_rows(records, scored, features)
                tables[name] = window_table(pd.DataFrame(rows))
            return tables, passes

        tables, exact_passes = tables_for(None, 0)
        reference = attack_aucs(tables, split, ids, params, names, n_boot=1000)
        exact_scores = attack_scores(tables, split, ids, params, names)
        # The attacks skipped for want of reference models were named once above; not again per setting.
        logging.getLogger("gfm_audit.privacy.attacks.runner").setLevel(logging.ERROR)

        # Wall time on the timing windows (target only): exact and each sampled setting scored for real, one after
        # the other on the same sequences.
        spec, model = specs[TARGET], loaded[TARGET]
        times: dict[float | None, float] = {}
        max_diff = 0.0
        timing_exact = None
        for fraction in [None, *args.fractions]:
            s = spec if fraction is None else replace(spec, masking="sampled", mask_fraction=fraction)
            start = time.perf_counter()
            enc, pos, st = _score_loaded(
                s, model, timing_records, snp_offsets=snp_offsets, seed=scoring_seed, progress=False
            )
            times[fraction] = time.perf_counter() - start
            if fraction is None:
                timing_exact = (enc, pos, st)
                continue
            cols = subset_columns(
                timing_records,
                timing_exact[0],
                timing_exact[1],
                snp_offsets=snp_offsets,
                fraction=fraction,
                seed=scoring_seed,
            )
            for real, full, c in zip(st, timing_exact[2], cols, strict=True):
                max_diff = max(max_diff, float(np.abs(real - full[:, c]).max(initial=0.0)))

        strongest = sorted(reference, key=lambda c: -reference[c][0])[: args.strongest]
        columns = sorted(reference, key=lambda c: -reference[c][0])
        print(
            f"\n# windows: {len(ids)} ({sum(split.set_index('window_id').loc[ids].target_member)} members), "
            f"sequences scored per model: {len(records)}, models: {', '.join(specs)}"
        )
        print(f"# sampled statistics scored for real vs derived from exact: max |difference| {max_diff:.2e}")
        print(f"# strongest attack variants under exact: {', '.join(strongest)}")
        print(f"# load average at end: {os.getloadavg()}\n")
        print("exact AUCs (95% bootstrap CI over windows):")
        for c in columns:
            auc, lo, hi = reference[c]
            print(f"  {c}: {auc:.3f} [{lo:.3f}, {hi:.3f}]")
        print()
        head = [
            "setting",
            "passes / exact",
            "time / exact",
            *(f"{c} AUC" for c in strongest),
            "max |dAUC| strongest (mean over seeds)",
            "max |dAUC| strongest (worst seed)",
            "max |dAUC| all variants (worst seed)",
            f"dAUC {strongest[0]} [95% paired CI]",
        ]
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        print(f"| exact | 1 | 1 | {' | '.join(f'{reference[c][0]:.3f}' for c in strongest)} | 0 | 0 | 0 | 0 |")
        for fraction in args.fractions:
            per_seed, ratio = [], None
            for seed in sorted({scoring_seed, *range(args.seeds)}):
                t, passes = tables_for(fraction, seed)
                aucs = attack_aucs(t, split, ids, params, names)
                per_seed.append(aucs)
                if seed == scoring_seed:
                    ratio = passes / exact_passes
                    shown = aucs
                    sampled_scores = attack_scores(t, split, ids, params, names)
                    paired = paired_auc_difference(
                        exact_scores[strongest[0]].to_numpy(float),
                        sampled_scores[strongest[0]].to_numpy(float),
                        exact_scores.member.to_numpy(int),
                    )
            d_strong = [max(abs(a[c][0] - reference[c][0]) for c in strongest) for a in per_seed]
            d_all = [max(abs(a[c][0] - reference[c][0]) for c in columns if c in a) for a in per_seed]
            print(
                f"| sampled {fraction:g} | {ratio:.3f} | {times[fraction] / times[None]:.3f} | "
                f"{' | '.join(f'{shown[c][0]:.3f}' for c in strongest)} | {np.mean(d_strong):.3f} | "
                f"{max(d_strong):.3f} | {max(d_all):.3f} | {paired[0]:+.3f} [{paired[1]:+.3f}, {paired[2]:+.3f}] |",
                flush=True,
            )
        print(
            f"\n(time / exact on {len(timing_records)} sequences of {len(timing_ids)} windows: exact took "
            f"{times[None]:.1f} s; passes / exact on all {len(records) * len(specs)} scored sequences)"
        )


if __name__ == "__main__":
    main()
