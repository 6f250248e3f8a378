"""P6c: peak memory of select_windows, the one job that reads the whole genome before it is sharded.

Run: .venv/bin/python benchmarks/bench_select.py [--sizes 2000 20000 100000]

For each size, bench_scale.py's synthetic genome (random sequence at 41% GC, an SNV every ``--snp-spacing`` bases)
is written to a temporary folder and staged as the workflow stages a user's reference; then select_windows places
that many 1 kb windows, each variant in a fresh Python process that reports its own peak RSS (VmHWM: ru_maxrss
would include this parent's, see gfm_audit.peak_memory):
- "before": the previous code, patched in below: every sequence, window row and SNP line collected in lists and
  written at the end;
- "after": today's code, which writes each chunk of windows as it is read.
Both variants' outputs are compared byte for byte after decompression (the gzip stream of snps.tsv.gz is written
in pieces now, so its compressed bytes differ while its content does not). Per variant: peak RSS per size and the
least-squares slope in bytes per window.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow_scripts"))
sys.path.insert(0, str(REPO / "benchmarks"))

import numpy as np  # noqa: E402
from bench_scale import WINDOW, synthetic_genome  # noqa: E402
from gfm_audit.peak_memory import peak_rss_mib_of  # noqa: E402
from gfm_audit.privacy.reference import prepare_reference, staged_layout  # noqa: E402

# The previous select_windows (the code before this benchmark), patched in for "before".
BEFORE = """
from collections import Counter
import cyvcf2, pysam
from gfm_audit.outputs import atomic_outputs, write_fasta, write_text_gz
from gfm_audit.privacy import windows as W

def select_windows(fasta_path, vcf_path, contigs_path, *, params, out_tsv, out_fasta, out_snps):
    contigs = W.read_contigs(contigs_path)
    vcf_contig = {c.fasta_contig: c.vcf_contig for c in contigs}
    counts, rows, records, lines = Counter(), [], [], []
    with pysam.FastaFile(fasta_path) as fasta:
        windows = W.place_windows(params, contigs, fasta=fasta, fasta_path=fasta_path)
        seqs = [fasta.fetch(w.chrom, w.start, w.end).upper() for w in windows]
    vcf = cyvcf2.VCF(vcf_path, lazy=True)
    for w, seq in zip(windows, seqs, strict=True):
        sites, _ = W.extract_snps(vcf, vcf_contig[w.chrom], w.start, seq=seq, counts=counts)
        rows.append(f"{w.window_id}\\t{w.chrom}\\t{w.start}\\t{w.end}\\t{len(sites)}"
                    f"\\t{len(sites) / len(seq):.6f}\\t{W.gc_fraction(seq):.6f}")
        records.append((w.window_id, f"{w.chrom}:{w.start + 1}-{w.end}", seq))
        for s in sites:
            lines.append(f"{w.window_id}\\t{w.chrom}\\t{s.pos}\\t{s.offset}\\t{s.ref}\\t{','.join(s.alts)}"
                         f"\\t{';'.join(s.ids) or '.'}\\t{W._fmt_af(s.afs)}")
    vcf.close()
    with atomic_outputs(out_tsv, out_fasta, out_snps) as (tsv, fa, snps):
        open(tsv, "w").write("\\t".join(W.WINDOW_COLUMNS) + "\\n" + "".join(r + "\\n" for r in rows))
        write_fasta(fa, records)
        write_text_gz(snps, "\\t".join(W.SNP_COLUMNS) + "\\n" + "".join(r + "\\n" for r in lines))
"""

AFTER = "from gfm_audit.privacy.windows import select_windows\n"

JOB = """
params = {"length": window, "n": n, "chromosomes": ["s"], "placement": "fixed", "bed": None, "seed": 0,
          "max_n_fraction": 0.0, "max_ref_mismatch_fraction": 0.01}
select_windows(fasta, vcf, contigs, params=params, out_tsv=f"{out}/windows.tsv", out_fasta=f"{out}/windows.fa",
               out_snps=f"{out}/snps.tsv.gz")
"""


def peak_rss_mib(variant: str, layout, n: int, out: Path) -> float:
    out.mkdir()
    code = "\n".join(
        [
            "import sys",
            f"sys.path.insert(0, {str(REPO / 'workflow_scripts')!r})",
            # The same modules loaded in both variants, so that the constant part of the memory is the same.
            "import gfm_audit.privacy.windows",
            BEFORE if variant == "before" else AFTER,
            f"fasta, vcf, contigs = {str(layout.fasta)!r}, {str(layout.vcf)!r}, {str(layout.contigs)!r}",
            f"n, window, out = {n}, {WINDOW}, {str(out)!r}",
            JOB,
        ]
    )
    return peak_rss_mib_of(code, label=f"select_windows ({variant})")


def same_outputs(left: Path, right: Path) -> bool:
    plain = all((left / f).read_bytes() == (right / f).read_bytes() for f in ("windows.tsv", "windows.fa"))
    return plain and gzip.open(left / "snps.tsv.gz").read() == gzip.open(right / "snps.tsv.gz").read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2_000, 20_000, 100_000])
    parser.add_argument("--snp-spacing", type=int, default=300)
    parser.add_argument("--out", type=Path, default=None, help="JSON of the figures")
    args = parser.parse_args()
    rss: dict[str, list[float]] = {"before": [], "after": []}
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            fasta, vcf = synthetic_genome(folder, n, snp_spacing=args.snp_spacing)
            layout = staged_layout(str(fasta), str(vcf), folder / "reference")
            prepare_reference(str(fasta), str(vcf), layout)
            for variant in rss:
                rss[variant].append(peak_rss_mib(variant, layout, n, folder / variant))
            if not same_outputs(folder / "before", folder / "after"):
                raise SystemExit(f"outputs differ at {n} windows")
        print(f"{n} windows: before {rss['before'][-1]:.0f} MiB, after {rss['after'][-1]:.0f} MiB", flush=True)
    sizes = np.array(args.sizes, dtype=float)
    slopes = {v: float(np.polyfit(sizes, np.array(r) * 2**20, 1)[0]) for v, r in rss.items()}
    header = "| variant | " + " | ".join(f"{n:,} windows MiB" for n in args.sizes) + " | B/window |"
    print(header)
    print("|" + "---|" * (len(args.sizes) + 2))
    for v, r in rss.items():
        print(f"| {v} | " + " | ".join(f"{x:.0f}" for x in r) + f" | {slopes[v]:,.0f} |")
    if args.out:
        args.out.write_text(json.dumps({"sizes": args.sizes, "rss_mib": rss, "bytes_per_window": slopes}, indent=1))


if __name__ == "__main__":
    main()
