"""Masked models' scoring cost, ``sampled`` and ``stride`` pseudo-log-likelihood against ``exact``.

Run: nice .venv/bin/python benchmarks/bench_masked_cost.py [--model char|nt_v2] [--windows N] [--references R]
     [--seeds S] [--strides K ...] [--out TSV]

What it does, in one process on a temporary folder:
1. The demo's data the demo's way (config/demo.yaml): reference staging, windows, SNP neighbors and controls,
   and the membership split (the library functions the workflow's rules call).
2. A masked target trained on the demo's member windows with the demo's training recipe (membership.training:
   epochs, learning rate, batch size; the masked-token loss of ``training.py``), and ``--references`` reference
   models on their own random halves, as the workflow trains them. ``--model char``: the ESM-style character
   masked LM of ``char_lm.save_char_masked_lm`` (the architecture the tests use), from scratch. ``--model
   nt_v2``: the native Nucleotide Transformer v2 (``gfm.nt_v2``: rotary attention, SwiGLU, the hub's 6-mer
   tokenizer from tests/fixtures/gfm/nt_v2) at ``--hidden``/``--layers``/``--heads``, from random weights
   seeded per model (the library cannot train a native family from ``init: scratch``; it fine-tunes a folder).
3. Every model scores ``--windows`` demo windows (half members, half non-members, seeded) and their neighbors in
   ``exact`` mode (one forward pass per token) through the library's scoring path.
4. ``sampled`` at each ``--fractions`` value: a masked model's pseudo-log-likelihood of a token comes from the
   forward pass that masks that token alone, so the log p, mean and std of a token scored in ``sampled`` mode are
   those of the same token in ``exact`` mode. The sampled features are therefore the library's own reduction
   (``_feature_rows``) of the exact statistics at the positions ``sampled`` mode picks (``sampled_offsets``,
   ``scored_positions``), for scoring seeds 0..S-1: S draws of the sampled subset at no extra forward passes.
   On ``--timing-windows`` windows each sampled setting is also scored for real (seed 0), to time it against
   exact on the same sequences and to check that its statistics equal the derived ones.
5. ``stride`` at each ``--strides`` k: every model scores every sequence for real (k forward passes per
   sequence, pass j masking the scored tokens of rank j mod k; every token scored once), timed on the target.
   Stride has no random draw, so it has one setting per k.
6. The attacks run through the attack registry (``run_attacks``) on each setting's per-window table; AUC by
   ``metrics.auc_with_ci``; for every attack variant, AUC(setting) - AUC(exact) with a 95% paired bootstrap
   interval over windows (``paired_auc_difference``). A stride k meets the target when every variant's interval
   lies within +-``--tolerance``.

Cost: forward passes (one sequence through the model each; every pass carries the whole sequence, so tokens
through the model are in the same ratio) relative to exact, counted on all scored sequences; wall time relative
to exact, measured on the timing windows (sampled) or on all of the target's sequences (stride). Also the passes
of one 1 kb window (the first 1,000 bases of the demo's windows, joined) under exact and stride, counted from the
model's own tokenizer, without a forward pass.

Output: a TSV (``--out``), one row per setting and attack variant, and a summary on stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
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
from gfm_audit.gfm import nt_v2  # noqa: E402
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
from gfm_audit.tokens import encode  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

TARGET = "masked_lm"
NT_V2_FIXTURE = REPO / "tests" / "fixtures" / "gfm" / "nt_v2"


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


def build_nt_v2(folder: Path, *, hidden: int, layers: int, heads: int, seed: int) -> int:
    """A hub-layout NT v2 folder: the fixture's tokenizer files and config keys (6-mer vocabulary, rotary, SwiGLU
    without feed-forward bias) at these sizes (intermediate 4 x hidden, as in the 50M checkpoint), random weights
    seeded by ``seed``; returns the parameter count."""
    folder.mkdir(parents=True)
    for file in NT_V2_FIXTURE.iterdir():
        if file.is_file() and file.suffix not in (".safetensors", ".npz", ".py", ".md"):
            shutil.copy(file, folder / file.name)
    sizes = {"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads}
    config = json.loads((NT_V2_FIXTURE / "config.json").read_text()) | sizes | {"intermediate_size": 4 * hidden}
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    torch.manual_seed(seed)
    model = nt_v2.build_lm(config, kind="masked")
    # Tied weights share storage, which safetensors refuses: one copy per name (equal values).
    save_file({k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}, folder / "model.safetensors")
    return sum(p.numel() for p in model.parameters())


def train(tmp: Path, config: dict, windows: dict[str, str], split: pd.DataFrame, args) -> dict[str, ModelSpec]:
    """The target and the reference models, trained the demo's way (seeds as rules/training.smk gives them)."""
    arch = save_char_masked_lm(tmp / "arch", hidden=args.hidden, layers=args.layers, weights_seed=None)
    arch = arch if args.model == "char" else None
    m = config["membership"]
    training = dict(m["training"])
    if args.epochs is not None:
        training["epochs"] = args.epochs
    columns = {TARGET: "target_member", **{f"ref_{i}": f"ref_{i}_member" for i in range(args.references)}}
    specs = {}
    for i, (name, column) in enumerate(columns.items()):
        labels = split.set_index("window_id")[column].to_dict()
        if args.model == "char":
            spec = ModelSpec(name=name, path=str(arch), kind="masked", init="scratch", masking="exact")
        else:
            folder = tmp / "init" / name
            n = build_nt_v2(folder, hidden=args.hidden, layers=args.layers, heads=args.heads, seed=m["seed"] + i)
            print(f"# {name}: native NT v2, {n:,} parameters", flush=True)
            spec = ModelSpec(name=name, path=str(folder), kind="masked", init="pretrained", masking="exact")
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
    exact: np.ndarray, other: np.ndarray, member: np.ndarray, *, n_boot: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """AUC(other) - AUC(exact) and its 95% percentile interval over windows resampled together (paired
    bootstrap: both scorings of a window enter or leave a resample at once, so the interval reflects how far
    the two scorings disagree, not how far either AUC is from the population's). Resamples that miss a class are
    dropped.

    A resample's AUC is the Mann-Whitney statistic weighted by how often each window was drawn,
    ``sum_ij c_i c_j [s_i > s_j] + 0.5 [s_i = s_j] / (sum_i c_i sum_j c_j)`` over members i and non-members j,
    which is the AUC of the resampled list with its repeats; one matrix product for all resamples."""
    ok = np.isfinite(exact) & np.isfinite(other)
    exact, other, member = exact[ok], other[ok], member[ok].astype(bool)
    rng = np.random.default_rng(seed)
    point = roc_auc_score(member, other) - roc_auc_score(member, exact)
    n = len(member)
    counts = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(n_boot)]).astype(float)
    pos, neg = counts[:, member], counts[:, ~member]
    keep = (pos.sum(1) > 0) & (neg.sum(1) > 0)
    pos, neg = pos[keep], neg[keep]

    def resampled_auc(score: np.ndarray) -> np.ndarray:
        a, b = score[member][:, None], score[~member][None, :]
        wins = (a > b) + 0.5 * (a == b)
        return ((pos @ wins) * neg).sum(1) / (pos.sum(1) * neg.sum(1))

    lo, hi = np.percentile(resampled_auc(other) - resampled_auc(exact), [2.5, 97.5])
    return float(point), float(lo), float(hi)


def passes_per_kb(tokenizer, text: str, strides: list[int]) -> dict[str, int]:
    """Forward passes of one 1,000-base window (``text[:1000]``) per setting, from the tokenizer's scorable
    tokens: exact one per token, stride k min(k, tokens)."""
    enc = encode(tokenizer, text[:1000], seq_id="1 kb window")
    n = len(scored_positions(enc, "masked", masking="exact", offsets=None))
    return {"exact": n, **{f"stride {k}": min(k, n) for k in strides}}


def setting_rows(
    setting: str, scores: pd.DataFrame, exact_scores: pd.DataFrame, *, cost: dict, worst: dict | None = None
) -> list[dict]:
    """One TSV row per attack variant: the setting's AUC and AUC(setting) - AUC(exact) with its paired interval."""
    rows = []
    member = exact_scores.member.to_numpy(int)
    for column in exact_scores.columns.drop(["window_id", "member"]):
        e, o = exact_scores[column].to_numpy(float), scores[column].to_numpy(float)
        ok = np.isfinite(o)
        d, lo, hi = paired_auc_difference(e, o, member)
        rows.append(
            {
                "setting": setting,
                **cost,
                "attack": column,
                "auc": roc_auc_score(member[ok], o[ok]),
                "d_auc": d,
                "d_auc_lo": lo,
                "d_auc_hi": hi,
                "worst_seed_abs_d_auc": abs(d) if worst is None else worst[column],
            }
        )
    return rows


def attack_table(table: pd.DataFrame, settings: list[str]) -> str:
    """The page's per-attack table from a run's TSV: exact's AUC with its CI, and each setting's AUC(setting) -
    AUC(exact) with its paired 95% interval (marked when within the tolerance)."""
    exact = table[table.setting == "exact"].set_index("attack")
    lines = [
        "| attack | exact AUC [95% CI] | " + " | ".join(f"{c}: dAUC [95% paired CI]" for c in settings) + " |",
        "|---|---|" + "---|" * len(settings),
    ]
    for attack, e in exact.iterrows():
        cells = []
        for setting in settings:
            g = table[(table.setting == setting) & (table.attack == attack)].iloc[0]
            mark = " (within)" if g.within_tolerance else ""
            cells.append(f"{g.d_auc:+.3f} [{g.d_auc_lo:+.3f}, {g.d_auc_hi:+.3f}]{mark}")
        lines.append(f"| {attack} | {e.auc:.3f} [{e.auc_lo:.3f}, {e.auc_hi:.3f}] | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["char", "nt_v2"], default="char", help="the masked architecture")
    parser.add_argument("--windows", type=int, default=40, help="demo windows scored (half members)")
    parser.add_argument("--timing-windows", type=int, default=2, help="windows also scored for real in sampled mode")
    parser.add_argument("--references", type=int, default=0, help="reference models (the demo trains 2)")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.0, 0.02, 0.05, 0.1, 0.15, 0.25])
    parser.add_argument("--strides", type=int, nargs="+", default=[3, 6, 12], help="stride_k values")
    parser.add_argument("--tolerance", type=float, default=0.01, help="the paired interval's target half-width")
    parser.add_argument("--seeds", type=int, default=5, help="draws of the sampled positions per fraction")
    parser.add_argument("--epochs", type=int, default=None, help="default: the demo's membership.training.epochs")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4, help="attention heads (nt_v2; the char model has 4)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="TSV (default benchmarks/masked_cost_<model>.tsv)")
    parser.add_argument(
        "--table", type=Path, default=None, help="print the page's per-attack table of this TSV (no run)"
    )
    parser.add_argument("--table-settings", nargs="+", default=["stride 3", "stride 6", "stride 12", "sampled 0.15"])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.table:
        print(attack_table(pd.read_csv(args.table, sep="\t"), args.table_settings))
        return
    out = args.out or REPO / "benchmarks" / f"masked_cost_{args.model}.tsv"
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
        exact_seconds = 0.0
        for name, spec in specs.items():
            loaded[name] = _load(spec, batch_size=batch_size, device="cpu", options=None)
            start = time.perf_counter()
            exact[name] = _score_loaded(
                spec, loaded[name], records, snp_offsets=snp_offsets, seed=scoring_seed, progress=False
            )
            seconds = time.perf_counter() - start
            exact_seconds = seconds if name == TARGET else exact_seconds
            print(f"# exact scoring of {name}: {len(records)} sequences, {seconds:.0f} s", flush=True)
        n_params = sum(p.numel() for p in loaded[TARGET].scorer.model.parameters())
        kb = passes_per_kb(loaded[TARGET].tokenizer, "".join(windows.values()), args.strides)

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
        n_sequences = len(records) * len(specs)

        def cost(passes: int, seconds: float, basis: str, kb_passes: int | None) -> dict:
            return {
                "passes_per_sequence": passes / n_sequences,
                "passes_over_exact": passes / exact_passes,
                "passes_1kb": kb_passes,
                "passes_1kb_over_exact": None if kb_passes is None else kb_passes / kb["exact"],
                "seconds": seconds,
                "time_over_exact": seconds / basis_seconds[basis],
                "time_basis": basis,
            }

        # Wall time of sampled on the timing windows (target only): exact and each sampled setting scored for real,
        # one after the other on the same sequences.
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
        timing_basis = f"target, {len(timing_records)} sequences of {len(timing_ids)} windows"
        all_basis = f"target, all {len(records)} sequences"
        basis_seconds = {timing_basis: times[None], all_basis: exact_seconds}

        rows = []
        for column in exact_scores.columns.drop(["window_id", "member"]):
            auc, lo, hi = reference[column]
            rows.append(
                {
                    "setting": "exact",
                    **cost(exact_passes, exact_seconds, all_basis, kb["exact"]),
                    "attack": column,
                    "auc": auc,
                    "auc_lo": lo,
                    "auc_hi": hi,
                    "d_auc": 0.0,
                    "d_auc_lo": 0.0,
                    "d_auc_hi": 0.0,
                    "worst_seed_abs_d_auc": 0.0,
                }
            )
        for fraction in args.fractions:
            per_seed = []
            for seed in sorted({scoring_seed, *range(args.seeds)}):
                t, passes = tables_for(fraction, seed)
                per_seed.append(attack_aucs(t, split, ids, params, names))
                if seed == scoring_seed:
                    shown = (attack_scores(t, split, ids, params, names), passes)
            worst = {c: max(abs(a[c][0] - reference[c][0]) for a in per_seed if c in a) for c in reference}
            rows += setting_rows(
                f"sampled {fraction:g}",
                shown[0],
                exact_scores,
                cost=cost(shown[1], times[fraction], timing_basis, None),
                worst=worst,
            )
            print(f"# sampled {fraction:g} done", flush=True)
        for k in args.strides:
            t, passes, seconds = {}, 0, 0.0
            for name, spec in specs.items():
                start = time.perf_counter()
                encodings, positions, stats = _score_loaded(
                    replace(spec, masking="stride", stride_k=k),
                    loaded[name],
                    records,
                    snp_offsets=snp_offsets,
                    seed=scoring_seed,
                    progress=False,
                )
                seconds = time.perf_counter() - start if name == TARGET else seconds
                passes += sum(min(k, len(p)) for p in positions)
                scored = scored_tokens(records, encodings, positions, stats=stats, snp_offsets=snp_offsets)
                t[name] = window_table(pd.DataFrame(_feature_rows(records, scored, features)))
            rows += setting_rows(
                f"stride {k}",
                attack_scores(t, split, ids, params, names),
                exact_scores,
                cost=cost(passes, seconds, all_basis, kb[f"stride {k}"]),
            )
            print(f"# stride {k} scored: {seconds:.1f} s on the target", flush=True)

        table = pd.DataFrame(rows)
        table.insert(0, "model", f"{args.model} ({n_params:,} parameters)")
        table["within_tolerance"] = (table.d_auc_lo >= -args.tolerance) & (table.d_auc_hi <= args.tolerance)
        out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out, sep="\t", index=False, float_format="%.4g")

        members = int(split.set_index("window_id").loc[ids].target_member.sum())
        print(
            f"\n# {args.model}, {n_params:,} parameters; windows: {len(ids)} ({members} members), sequences scored "
            f"per model: {len(records)}, models: {', '.join(specs)}; 1 kb window: {kb['exact']} scored tokens"
        )
        print(f"# sampled statistics scored for real vs derived from exact: max |difference| {max_diff:.2e}")
        print(f"# load average at end: {os.getloadavg()}; table: {out}\n")
        print(
            "| setting | passes / exact | passes / exact (1 kb) | time / exact | max abs dAUC | widest paired 95% "
            f"interval bound | variants within +-{args.tolerance:g} |"
        )
        print("|---|---|---|---|---|---|---|")
        for setting, g in table.groupby("setting", sort=False):
            first = g.iloc[0]
            bound = max(g.d_auc_lo.abs().max(), g.d_auc_hi.abs().max())
            kb_ratio = "" if pd.isna(first.passes_1kb_over_exact) else f"{first.passes_1kb_over_exact:.4f}"
            print(
                f"| {setting} | {first.passes_over_exact:.4f} | {kb_ratio} | {first.time_over_exact:.3f} | "
                f"{g.d_auc.abs().max():.4f} | {bound:.4f} | {int(g.within_tolerance.sum())} of {len(g)} |"
            )


if __name__ == "__main__":
    main()
