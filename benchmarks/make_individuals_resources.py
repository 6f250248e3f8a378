"""Build resources/individuals/ (the `make demo-individuals` data) from /work/shared/data, reproducibly.

* phased_snvs.vcf.gz (+ .tbi): the 300 phased 1000 Genomes EUR individuals of
  1000g-chr20-1mb-phased/phased_snvs.vcf.gz, every record and genotype unchanged; only the contig is renamed
  from chr20_1000001_2000000 to z, the name of the same megabase in resources/demo/z.fa (same numbering).
* dense_snvs.bed: 256-bp intervals of the megabase, greedily the ones holding the most SNVs that are
  polymorphic in the 300 people (AC > 0), non-overlapping, densest first (ties: leftmost); the demo audits
  the first windows.n of them, where a person differs most from the reference per base the model reads.
* char_lm/: a small GPT-2-style character LM (config and tokenizer only; trained from scratch by the demo).

Usage: python benchmarks/make_individuals_resources.py [SOURCE_DIR]
"""

from __future__ import annotations

import gzip
import os
import sys
from pathlib import Path

import numpy as np
import pysam

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "resources" / "individuals"
LENGTH = 256
N_INTERVALS = 64


def main(source: str = "/work/shared/data/1000g-chr20-1mb-phased") -> None:
    sys.path.insert(0, str(REPO / "workflow_scripts"))
    from gfm_audit.char_lm import save_char_causal_lm

    OUT.mkdir(parents=True, exist_ok=True)
    lines = gzip.open(Path(source) / "phased_snvs.vcf.gz", "rt").read().splitlines()
    renamed, polymorphic = [], []
    for line in lines:
        if line.startswith("##contig=<ID=chr20_1000001_2000000"):
            line = line.replace("ID=chr20_1000001_2000000", "ID=z")
        elif not line.startswith("#"):
            line = "z" + line[line.index("\t") :]
            fields = line.split("\t")
            info = dict(x.split("=", 1) for x in fields[7].split(";") if "=" in x)
            if int(info["AC"]) > 0:
                polymorphic.append(int(fields[1]))
        renamed.append(line)
    plain = OUT / "phased_snvs.vcf"
    plain.write_text("\n".join(renamed) + "\n")
    pysam.tabix_compress(str(plain), str(OUT / "phased_snvs.vcf.gz"), force=True)
    os.unlink(plain)
    pysam.tabix_index(str(OUT / "phased_snvs.vcf.gz"), preset="vcf", force=True)

    pos = np.array(polymorphic)  # 1-based; a 0-based start s covers positions s+1 .. s+LENGTH
    starts = np.arange(0, 1_000_000 - LENGTH + 1)
    count = np.searchsorted(pos, starts + LENGTH, side="right") - np.searchsorted(pos, starts, side="right")
    taken = np.zeros(len(starts), dtype=bool)
    rows = []
    for s in np.lexsort((starts, -count)):
        if len(rows) == N_INTERVALS:
            break
        if taken[s]:
            continue
        rows.append((int(s), int(count[s])))
        taken[max(0, s - LENGTH + 1) : s + LENGTH] = True
    (OUT / "dense_snvs.bed").write_text("".join(f"z\t{s}\t{s + LENGTH}\tsnvs={c}\n" for s, c in rows))
    save_char_causal_lm(OUT / "char_lm", hidden=64, layers=2, heads=2, max_positions=512)


if __name__ == "__main__":
    main(*sys.argv[1:])
