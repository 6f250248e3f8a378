"""P6b: peak memory of the reduce jobs (window_features, run_attacks, evaluate_attacks) against the window count.

Run: .venv/bin/python benchmarks/bench_reduce.py [--sizes 2000 20000 100000 200000]

The target: reduce jobs' memory <= 1 KB per window above a constant. bench_scale.py measures it through
the whole workflow (scoring included: hours at 100k windows on two cores); this isolates the reduce jobs, so that
they can be measured at up to 200k windows in minutes and side by side with their previous implementation.

Inputs, written to a temporary folder per size: per-sequence feature shards as the scoring jobs write them
(`feature_schema`; 1,000 windows per shard; each window with one SNP and one control neighbor at p 0.1, as
bench_scale.py's genome; every feature the default config's attacks need, random values), and a membership table
(random labels). Each job runs in a fresh Python process, which reports its own peak RSS (VmHWM: ru_maxrss
would include this parent's, see gfm_audit.peak_memory):
- window_features: `reduce_shards` over the shards;
- run_attacks: `load_attack_data` + `run_attacks` + `write_attack_outputs` with the default config's attacks;
- evaluate_attacks: `read_scores` + `evaluate` (1,000 bootstrap resamples, the default) + `threshold_table`.
"before" runs the same jobs with the previous code patched in (the whole-table concatenation in
`reduce_shards`, `read_parquet(...).set_index(...).loc[...]` in `read_window_features`, bootstrap blocks of 64
whatever the window count), defined below. Per job and variant: peak RSS per size and the least-squares slope in
bytes per window.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow_scripts"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import yaml  # noqa: E402
from gfm_audit.config import validate_config  # noqa: E402
from gfm_audit.peak_memory import peak_rss_mib_of  # noqa: E402
from gfm_audit.privacy.attacks import required_features  # noqa: E402
from gfm_audit.privacy.features import BASE_FEATURES, feature_schema  # noqa: E402

WINDOWS_PER_SHARD = 1_000

# The previous implementations, patched in for "before" (the code of the commit before this benchmark).
BEFORE = """
import numpy as np, pandas as pd
from gfm_audit.privacy import features as F, metrics as M
from gfm_audit.privacy.attacks import runner as R
from gfm_audit.outputs import atomic_outputs

def reduce_shards(paths, out_path):
    parts = [F.window_table(pd.read_parquet(p)) for p in paths]
    columns = [c for c in parts[0].columns]
    for part in parts[1:]:
        columns += [c for c in part.columns if c not in columns]
    table = pd.concat([p.reindex(columns=columns) for p in parts], ignore_index=True)
    with atomic_outputs(out_path) as (tmp,):
        table.to_parquet(tmp, index=False, compression="zstd")
    return len(table)

def read_window_features(path, window_ids, columns=None):
    table = pd.read_parquet(path).set_index("window_id")
    return table.loc[list(window_ids)]

def auc_with_ci(scores, labels, *, n_boot, seed, level=0.95):
    auc = M.roc_auc_score(labels, scores)
    rng = np.random.default_rng(seed)
    pos, neg = scores[labels == 1], np.sort(scores[labels == 0])
    boots = []
    for start in range(0, n_boot, 64):
        b = min(64, n_boot - start)
        boots.append(M.resampled_auc(pos, neg,
            pos_counts=rng.multinomial(len(pos), np.full(len(pos), 1 / len(pos)), size=b),
            neg_counts=rng.multinomial(len(neg), np.full(len(neg), 1 / len(neg)), size=b)))
    lo, hi = np.quantile(np.concatenate(boots), [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(auc), float(lo), float(hi)

F.reduce_shards, R.read_window_features, M.auc_with_ci = reduce_shards, read_window_features, auc_with_ci
"""

JOBS = {
    "window_features": """
from gfm_audit.privacy.features import reduce_shards
import glob
reduce_shards(sorted(glob.glob(f"{folder}/shard-*.parquet")), f"{folder}/windows.{variant}.parquet")
""",
    "run_attacks": """
from gfm_audit.privacy.attacks.runner import load_attack_data, run_attacks, write_attack_outputs
data = load_attack_data("target", feature_paths={"target": f"{folder}/windows.after.parquet"},
                        membership_path=f"{folder}/membership.tsv", references=[], params=attacks)
table, skipped = run_attacks(data, attacks["names"])
write_attack_outputs(table, skipped, scores_path=f"{folder}/scores.{variant}.tsv",
                     skipped_path=f"{folder}/skipped.{variant}.tsv")
""",
    "evaluate_attacks": """
from gfm_audit.privacy.metrics import evaluate, read_scores, threshold_table
scores = read_scores(f"{folder}/scores.after.tsv")
evaluate(scores, n_boot=metrics["bootstrap"], seed=metrics["seed"], delta=metrics["delta"], level=metrics["confidence"])
threshold_table(scores)
""",
}


def default_config() -> dict:
    return validate_config(yaml.safe_load((REPO / "config" / "demo.yaml").read_text()), source="config/demo.yaml")


def write_inputs(folder: Path, n: int, features: list[str], rng: np.random.Generator) -> None:
    """Feature shards of ``n`` windows (each with one snp and one control neighbor at p 0.1) and membership."""
    schema = feature_schema(features)
    for start in range(0, n, WINDOWS_PER_SHARD):
        ids = np.array([f"w{i:07d}" for i in range(start, min(n, start + WINDOWS_PER_SHARD))], dtype=object)
        kinds = np.array(["window", "snp", "control"], dtype=object)
        m = len(ids) * 3
        columns = {
            "sequence_id": np.array([f"{w}:{k}" for w in ids for k in range(3)], dtype=object),
            "window_id": np.repeat(ids, 3),
            "kind": np.tile(kinds, len(ids)),
            "prob": np.tile([np.nan, 0.1, 0.1], len(ids)),
            "replicate": np.tile(np.array([0, 0, 0], dtype=np.int32), len(ids)),
        }
        for f in features:
            if f in ("n_tokens", "zlib_bytes"):
                columns[f] = rng.integers(900, 1000, m).astype(np.int32)
            else:
                columns[f] = rng.normal(-1.3 if f.startswith("min_k") else 1.3, 0.1, m)
        frame = pd.DataFrame(columns)
        pq.write_table(
            pa.Table.from_pandas(frame, schema=schema, preserve_index=False), folder / f"shard-{start:08d}.parquet"
        )
    pd.DataFrame({"window_id": [f"w{i:07d}" for i in range(n)], "target_member": rng.integers(0, 2, n)}).to_csv(
        folder / "membership.tsv", sep="\t", index=False
    )


def peak_rss_mib(job: str, folder: Path, variant: str, config: dict) -> float:
    code = "\n".join(
        [
            "import sys",
            f"sys.path.insert(0, {str(REPO / 'workflow_scripts')!r})",
            "import gfm_audit",
            # The same modules loaded in both variants, so that the constant part of the memory is the same.
            "from gfm_audit.privacy import features, metrics",
            "from gfm_audit.privacy.attacks import runner",
            BEFORE if variant == "before" else "",
            f"folder, variant = {str(folder)!r}, {variant!r}",
            f"attacks, metrics = {config['attacks']!r}, {config['attacks']['metrics']!r}",
            JOBS[job],
        ]
    )
    return peak_rss_mib_of(code, label=f"{job} ({variant})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2_000, 20_000, 100_000, 200_000])
    parser.add_argument("--out", type=Path, default=None, help="JSON of the figures")
    parser.add_argument("--jobs", nargs="+", choices=list(JOBS), default=list(JOBS))
    args = parser.parse_args()
    config = default_config()
    features = [*BASE_FEATURES, *required_features(config["attacks"]["names"], config["attacks"])]
    features = list(dict.fromkeys(features))
    rng = np.random.default_rng(0)
    rss: dict[str, dict[str, list[float]]] = {job: {"before": [], "after": []} for job in args.jobs}
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            write_inputs(folder, n, features, rng)
            for job in JOBS:
                if job not in args.jobs:  # still made, as a later job's input
                    if job != "evaluate_attacks":
                        peak_rss_mib(job, folder, "after", config)
                    continue
                for variant in ("after", "before"):  # "after" first: later jobs read its outputs
                    rss[job][variant].append(peak_rss_mib(job, folder, variant, config))
                print(n, job, {v: f"{rss[job][v][-1]:.0f} MiB" for v in rss[job]}, flush=True)
    sizes = np.array(args.sizes, dtype=float)
    head = ["job", *(f"{n:,} windows: before / after MiB" for n in args.sizes), "before B/window", "after B/window"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    slopes = {}
    for job, by in rss.items():
        slope = {v: float(np.polyfit(sizes, np.array(by[v]) * 2**20, 1)[0]) for v in by} if len(sizes) > 1 else {}
        slopes[job] = slope
        cells = [f"{b:.0f} / {a:.0f}" for b, a in zip(by["before"], by["after"], strict=True)]
        lines.append(
            f"| {job} | "
            + " | ".join(cells)
            + f" | {slope.get('before', float('nan')):,.0f} | {slope.get('after', float('nan')):,.0f} |"
        )
    print(
        f"\nfeatures per sequence: {len(features)}; attacks: {', '.join(config['attacks']['names'])}; "
        "slopes: least squares over the sizes\n"
    )
    print("\n".join(lines))
    if args.out:
        args.out.write_text(
            json.dumps({"sizes": args.sizes, "peak_rss_mib": rss, "bytes_per_window": slopes}, indent=1)
        )


if __name__ == "__main__":
    main()
