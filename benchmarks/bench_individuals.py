"""Person-level membership and genotype signal against training length, on real 1000 Genomes people.

The individuals demo (config/individuals.yaml) must finish in 10 minutes on 2 CPU cores, which bounds how
long its target trains. This benchmark follows the same set-up further: the target and K reference models
train on the haplotype windows of their member people in stages (from scratch, then continued from the
previous stage's weights with a fresh optimizer: the epochs add up, AdamW's moments restart), and after
each stage every haplotype window is scored and the person-level attacks are evaluated (AUC, and AUC with
1, 4, 16 windows per person). Output: benchmarks/individuals/individuals_epochs.tsv and
benchmarks/individuals/individuals_epochs.png (BENCHMARKS.md, Personal genomes).

Usage: python benchmarks/bench_individuals.py [--people 40] [--windows 16] [--stages 1,2,4,8,16]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow_scripts"))
OUT = REPO / "benchmarks" / "individuals"
WORK = REPO / "benchmarks" / "results"  # checkpoints (ignored by git)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=40)
    parser.add_argument("--windows", type=int, default=16)
    parser.add_argument("--stages", default="1,2,4,8,16")
    parser.add_argument("--references", type=int, default=2)
    parser.add_argument("--lr", type=float, default=0.003)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--tag", default="individuals_epochs")
    parser.add_argument(
        "--evaluate-only", action="store_true", help="score the saved checkpoints of every stage again, train nothing"
    )
    args = parser.parse_args()

    import pandas as pd
    import pysam
    import torch
    from gfm_audit.models import ModelSpec
    from gfm_audit.privacy.haplotypes import build_haplotypes
    from gfm_audit.privacy.individuals.membership import individuals_split
    from gfm_audit.privacy.individuals.person_attacks import PERSON_ATTACKS, person_scores
    from gfm_audit.privacy.individuals.scores import alt_offsets, sequence_features
    from gfm_audit.privacy.individuals.windows_curve import windows_curve
    from gfm_audit.privacy.scoring import SeqRecord, score_sequences
    from gfm_audit.privacy.training import train_model
    from sklearn.metrics import roc_auc_score

    torch.set_num_threads(1)
    res = REPO / "resources" / "individuals"
    bed = pd.read_csv(res / "dense_snvs.bed", sep="\t", header=None, names=["chrom", "start", "end", "note"])
    windows = bed.iloc[: args.windows].sort_values("start").reset_index(drop=True)
    windows.insert(0, "window_id", [f"w{i:06d}" for i in range(len(windows))])
    params = {"samples": "all", "n": args.people, "seed": 0, "phasing": "phased"}
    with pysam.FastaFile(str(REPO / "resources" / "demo" / "z.fa")) as fasta:
        samples, seqs, alleles, _ = build_haplotypes(
            str(res / "phased_snvs.vcf.gz"), windows, fasta=fasta, params=params, max_ref_mismatch_fraction=0.01
        )
    index = pd.DataFrame(
        [(sid, samples[int(sid[1:6])], int(sid[8]), sid[10:]) for sid in seqs],
        columns=["seq_id", "sample", "haplotype", "window_id"],
    )
    membership = individuals_split(samples, member_fraction=0.5, n_references=args.references, seed=0)
    models = ["target", *[f"ref_{i}" for i in range(args.references)]]
    columns = {"target": "target_member", **{m: f"{m}_member" for m in models[1:]}}
    offsets = alt_offsets(alleles)
    records = [SeqRecord(s, s, "haplotype", None, None, t) for s, t in seqs.items()]
    work = WORK / f"{args.tag}_models"
    stages = [int(s) for s in args.stages.split(",")]
    rows, done = [], 0
    start = time.perf_counter()
    for epochs in stages:
        features = {}
        for m in models:
            if args.evaluate_only:
                scored = ModelSpec.from_config(m, {"path": str(work / f"{m}_{epochs}"), "kind": "causal"})
                table = score_sequences(scored, records, snp_offsets=offsets, batch_size=64, seed=0, device="cpu")
                features[m] = sequence_features(table.to_pandas(), offsets)
                continue
            members = set(membership["sample"][membership[columns[m]] == 1])
            train = [seqs[s] for s in index.seq_id[index["sample"].isin(members)]]
            init = {"path": str(res / "char_lm"), "kind": "causal", "init": "scratch"}
            if done:
                init = {"path": str(work / f"{m}_{done}"), "kind": "causal", "init": "pretrained"}
            spec = ModelSpec.from_config(m, init)
            losses = train_model(
                spec,
                train,
                params={
                    "epochs": epochs - done,
                    "learning_rate": args.lr,
                    "batch_size": args.batch,
                    "weight_decay": 0.0,
                },
                seed=stages.index(epochs) * 100 + models.index(m),
                out_dir=work / f"{m}_{epochs}",
                device="cpu",
            )
            scored = ModelSpec.from_config(m, {"path": str(work / f"{m}_{epochs}"), "kind": "causal"})
            table = score_sequences(scored, records, snp_offsets=offsets, batch_size=64, seed=0, device="cpu")
            features[m] = sequence_features(table.to_pandas(), offsets)
            print(f"epochs {epochs} {m}: loss {losses[-1]:.4f} ({time.perf_counter() - start:.0f} s)", flush=True)
        for centre in (True, False):
            person = person_scores(features, index, membership, target="target", centre=centre)
            curve = windows_curve(features, index, membership, target="target", repeats=5, seed=0, centre=centre)
            for attack in PERSON_ATTACKS:
                if attack == "alt_alleles" and not centre:
                    continue  # not affected by centring
                ok = person[attack].notna()
                auc = roc_auc_score(person.member[ok], person[attack][ok])
                name = attack if centre or attack == "alt_alleles" else f"{attack}_uncentred"
                row = {"epochs": epochs, "attack": name, "auc_all_windows": auc}
                for k, g in curve[curve.attack == attack].groupby("windows"):
                    row[f"auc_{k}_windows"] = float(g.auc_mean.iloc[0])
                rows.append(row)
                print(f"  {name}: AUC {auc:.3f}", flush=True)
        losses = {m: float(features[m].loss.mean()) for m in models}
        print(f"  mean loss over all haplotypes: {losses}", flush=True)
        done = epochs
        result = pd.DataFrame(rows)
        OUT.mkdir(parents=True, exist_ok=True)
        result.to_csv(OUT / f"{args.tag}.tsv", sep="\t", index=False, float_format="%.4f")
    _figure(result, OUT / f"{args.tag}.png", title=f"{args.people} people, {args.windows} windows of 256 bp")
    print(f"done in {time.perf_counter() - start:.0f} s", flush=True)


def _figure(result, path, *, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for attack, g in result.groupby("attack", sort=False):
        ax.plot(g.epochs, g.auc_all_windows, marker="o", label=attack)
    ax.axhline(0.5, color="k", ls=":", lw=0.8)
    ax.set(xscale="log", xlabel="training epochs", ylabel="person-level AUC (all windows)", ylim=(0, 1), title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
