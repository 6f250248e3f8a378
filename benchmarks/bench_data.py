"""P2: the data stages scale with the number of windows, not with the size of the VCF.

The same 500 windows are selected from the demo VCF and from one 10x larger
(the demo's records plus synthetic SNVs spread over 9 synthetic megabases of
other contigs, made here in a temporary folder), side by side in one run.
Run: .venv/bin/python benchmarks/bench_data.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow_scripts"))
sys.path.insert(0, str(REPO / "tests"))

import gzip  # noqa: E402

import numpy as np  # noqa: E402
import pysam  # noqa: E402
from gfm_audit.privacy.neighbors import make_neighbors  # noqa: E402
from gfm_audit.privacy.reference import prepare_reference, staged_layout  # noqa: E402
from gfm_audit.privacy.windows import select_windows  # noqa: E402

PARAMS = {
    "length": 1000,
    "n": 500,
    "chromosomes": ["z"],
    "placement": "fixed",
    "bed": None,
    "seed": 0,
    "max_n_fraction": 0.0,
    "max_ref_mismatch_fraction": 0.01,
}
NEIGHBORS = {"probs": [0.1, 0.2, 0.3], "per_prob": 3, "allele": "uniform", "control": True, "seed": 0}


def big_reference(tmp: Path, factor: int = 10) -> tuple[Path, Path]:
    """Demo FASTA and VCF plus (factor - 1) synthetic 1 Mb contigs with SNVs at the demo's density."""
    rng = np.random.default_rng(0)
    with pysam.FastaFile(str(REPO / "resources/demo/z.fa")) as fa:
        real = fa.fetch("z")
    with gzip.open(REPO / "resources/demo/z.vcf.gz", "rt") as fh:
        lines = fh.read().splitlines()
    header = [x for x in lines if x.startswith("#")]
    records = [x for x in lines if not x.startswith("#")]
    contigs = {"z": real}
    body = list(records)
    for k in range(1, factor):
        name = f"syn{k}"
        seq = "".join(rng.choice(list("ACGT"), len(real)))
        contigs[name] = seq
        positions = np.sort(rng.choice(np.arange(1, len(seq) + 1), len(records), replace=False))
        for p in positions:
            ref = seq[p - 1]
            alt = "ACGT"[("ACGT".index(ref) + 1 + rng.integers(3)) % 4]
            body.append(f"{name}\t{p}\t.\t{ref}\t{alt}\t100\tPASS\tAF=0.01")
    fasta = tmp / "big.fa"
    with open(fasta, "w") as fh:
        for name, seq in contigs.items():
            fh.write(f">{name}\n")
            fh.writelines(seq[i : i + 80] + "\n" for i in range(0, len(seq), 80))
    plain = tmp / "big.vcf"
    plain.write_text("\n".join(header + body) + "\n")
    pysam.tabix_compress(str(plain), str(plain) + ".gz", force=True)
    pysam.tabix_index(str(plain) + ".gz", preset="vcf", force=True)
    return fasta, Path(str(plain) + ".gz")


def select(tmp: Path, fasta: Path, vcf: Path, tag: str, params=PARAMS) -> tuple[float, Path]:
    layout = staged_layout(str(fasta), str(vcf), tmp / f"ref_{tag}")
    prepare_reference(str(fasta), str(vcf), layout)
    out = tmp / f"win_{tag}"
    out.mkdir()
    start = time.perf_counter()
    select_windows(
        str(layout.fasta),
        str(layout.vcf),
        str(layout.contigs),
        params=params,
        out_tsv=out / "windows.tsv",
        out_fasta=out / "windows.fa",
        out_snps=out / "snps.tsv.gz",
    )
    return time.perf_counter() - start, out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        fasta, vcf = big_reference(tmp)
        n_small = sum(1 for _ in pysam.VariantFile(str(REPO / "resources/demo/z.vcf.gz")))
        n_big = sum(1 for _ in pysam.VariantFile(str(vcf)))
        small = min(
            select(tmp, REPO / "resources/demo/z.fa", REPO / "resources/demo/z.vcf.gz", f"s{i}")[0] for i in range(3)
        )
        big = min(select(tmp, fasta, vcf, f"b{i}")[0] for i in range(3))
        _, out = select(tmp, REPO / "resources/demo/z.fa", REPO / "resources/demo/z.vcf.gz", "n")
        start = time.perf_counter()
        make_neighbors(
            str(out / "windows.fa"),
            str(out / "snps.tsv.gz"),
            params=NEIGHBORS,
            out_fasta=tmp / "n.fa",
            out_tsv=tmp / "n.tsv",
        )
        neighbors = time.perf_counter() - start
    print(f"VCF records: demo {n_small:,}, large {n_big:,} ({n_big / n_small:.1f}x)")
    print("| measurement | figure | target |\n|---|---|---|")
    print(f"| select_windows, 500 windows: large VCF / demo VCF time | {big / small:.2f}x | <= 1.5x |")
    print(f"| select_windows per 1,000 windows of 1 kb (demo VCF) | {small * 2:.2f} s | |")
    print(f"| make_neighbors per 1,000 windows (3 p x 3 replicates x snp+control) | {neighbors * 2:.2f} s | |")


if __name__ == "__main__":
    main()
