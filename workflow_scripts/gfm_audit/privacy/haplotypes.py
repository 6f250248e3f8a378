"""Stage: each selected individual's two haplotype sequences in every window (membership mode ``individuals``).

A haplotype sequence is the reference window with that haplotype's alleles applied, SNVs only (as
``bcftools consensus -H 1`` / ``-H 2`` would give it for SNVs); indels, MNVs and symbolic alleles are
skipped and counted. Genotypes are read with cyvcf2 from a bgzipped, indexed multi-sample VCF.

Rules for awkward genotypes (also in config/README.md, key ``individuals``):

* Unphased heterozygous genotypes stop the run unless ``individuals.phasing: random``; then each such
  genotype's two alleles go to haplotypes 0 and 1 in a seeded random order (the report says so).
  Unphased homozygous genotypes need no phase and are used as they are.
* A missing allele (``.`` in ``./.``, ``0|.``) leaves the reference base on that haplotype, as
  ``bcftools consensus`` does; it is counted and never used as a genotype-inference query (its truth is unknown).
* A haploid call (one allele, e.g. chrX/Y of a male) is applied to both haplotype sequences: the person
  has one copy, and both sequences then show it; counted.
* A REF allele that disagrees with the FASTA skips the record (counted) while such records are at most
  ``windows.max_ref_mismatch_fraction`` of the checked SNVs; above that the run stops (wrong assembly).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cyvcf2
import numpy as np
import pandas as pd
import pysam

from ..errors import InputError
from ..outputs import atomic_outputs, write_fasta, write_text_gz, write_tsv
from .reference import contig_key

log = logging.getLogger(__name__)

BASES = frozenset("ACGT")
MIN_INDIVIDUALS = 4
HAPLOTYPE_COLUMNS = ("seq_id", "sample", "haplotype", "window_id", "n_alt")
ALLELE_COLUMNS = ("seq_id", "sample", "haplotype", "window_id", "offset", "pos", "ref", "alts", "allele", "af")
SAMPLE_COLUMNS = ("sample", "index")


def sequence_id(index: int, haplotype: int, window_id: str) -> str:
    """FASTA name of one haplotype window; the sample is an index (sample names may hold any character)."""
    return f"s{index:05d}_h{haplotype}_{window_id}"


def select_samples(vcf_samples: Sequence[str], *, samples: str, n: int | None, seed: int, vcf_name: str) -> list[str]:
    """The individuals to audit: all of the VCF's, or those listed in the file ``samples``; then a seeded ``n``.

    Returned in VCF order, so the same config gives the same list.
    """
    if not vcf_samples:
        raise InputError(
            f"VCF {vcf_name} (individuals.vcf) has no sample columns (a sites-only VCF): the individuals mode needs "
            "genotypes (GT) of each person; use a multi-sample VCF"
        )
    chosen = list(vcf_samples)
    if samples != "all":
        if not os.path.exists(samples):
            raise InputError(f"individuals.samples file {samples} does not exist; give 'all' or a file of sample names")
        wanted = [line.strip() for line in Path(samples).read_text().splitlines() if line.strip()]
        absent = [s for s in wanted if s not in set(vcf_samples)]
        if absent:
            raise InputError(
                f"individuals.samples file {samples}: {len(absent)} sample(s) are not in VCF {vcf_name} "
                f"(e.g. {', '.join(absent[:3])}); fix the names or drop them"
            )
        keep = set(wanted)
        chosen = [s for s in vcf_samples if s in keep]
    if n is not None and n < len(chosen):
        rng = np.random.default_rng(seed)
        picked = set(rng.choice(len(chosen), size=n, replace=False).tolist())
        chosen = [s for i, s in enumerate(chosen) if i in picked]
    if len(chosen) < MIN_INDIVIDUALS:
        raise InputError(
            f"only {len(chosen)} individual(s) selected from VCF {vcf_name}; the individuals mode needs at least "
            f"{MIN_INDIVIDUALS} (members, non-members and reference halves); select more with individuals.samples / n"
        )
    return chosen


def _vcf_contig(seqnames: Sequence[str], chrom: str) -> str | None:
    if chrom in seqnames:
        return chrom
    for name in seqnames:
        if contig_key(name) == contig_key(chrom):
            return name
    return None


def _call_alleles(gt: Sequence[Any], *, phasing: str, rng: np.random.Generator, where, counts: Counter):
    """(allele index of haplotype 0, of haplotype 1) for one genotype; -1 = missing. ``where()`` names it."""
    *alleles, phased = gt
    if len(alleles) == 1:
        counts["haploid_calls"] += 1
        return alleles[0], alleles[0]
    if len(alleles) != 2:
        raise InputError(f"{where()}: a call with {len(alleles)} alleles; only haploid and diploid calls are supported")
    a, b = alleles
    if not phased and a != b and a >= 0 and b >= 0:
        if phasing != "random":
            raise InputError(
                f"{where()} is unphased and heterozygous; phase the VCF (e.g. SHAPEIT, Beagle) or set "
                "individuals.phasing: random to assign heterozygous alleles to haplotypes at random (seeded)"
            )
        counts["unphased_randomly_assigned"] += 1
        if rng.random() < 0.5:
            a, b = b, a
    return a, b


def build_haplotypes(
    vcf_path: str,
    windows: pd.DataFrame,
    *,
    fasta: pysam.FastaFile,
    params: Mapping[str, Any],
    max_ref_mismatch_fraction: float,
    vcf_name: str | None = None,
) -> tuple[list[str], dict[str, str], pd.DataFrame, Counter]:
    """Every selected sample's two haplotype sequences per window.

    Returns (samples, {seq_id: sequence}, alleles table, counts). The alleles table has one row per
    haplotype and SNV site of the window where any selected sample carries a non-reference allele:
    ``allele`` is the base this haplotype carries, ``af`` the ALT frequency (INFO AF, else the selected
    samples' own frequency; for several ALTs the one of the allele carried, or of the first ALT).
    """
    vcf_name = vcf_name or vcf_path
    counts: Counter = Counter()
    vcf = cyvcf2.VCF(vcf_path, lazy=True)
    try:
        samples = select_samples(
            list(vcf.samples), samples=params["samples"], n=params["n"], seed=params["seed"], vcf_name=vcf_name
        )
        vcf.set_samples(samples)
        # set_samples keeps the VCF's order, which select_samples already used.
        rng = np.random.default_rng(params["seed"])
        seqs: dict[str, str] = {}
        rows: list[tuple] = []
        for w in windows.itertuples(index=False):
            ref_seq = fasta.fetch(w.chrom, int(w.start), int(w.end)).upper()
            haps = [[list(ref_seq), list(ref_seq)] for _ in samples]
            sites = []
            contig = _vcf_contig(vcf.seqnames, w.chrom)
            for rec in vcf(f"{contig}:{int(w.start) + 1}-{int(w.end)}") if contig else ():
                pos = rec.POS
                if not int(w.start) < pos <= int(w.end):
                    continue
                ref, alts = rec.REF.upper(), [a.upper() for a in rec.ALT]
                if len(ref) != 1 or not alts or any(len(a) != 1 or a not in BASES for a in alts):
                    counts["skipped_not_snv"] += 1
                    continue
                offset = pos - 1 - int(w.start)
                counts["snv_checked"] += 1
                if ref_seq[offset] != ref:
                    counts["ref_mismatch"] += 1
                    if counts["ref_mismatch"] == 1:
                        counts.setdefault("_example", f"{rec.CHROM}:{pos} REF={ref} FASTA={ref_seq[offset]}")
                    continue
                genotypes = rec.genotypes
                if genotypes is None or not len(genotypes):
                    raise InputError(f"VCF {vcf_name} record {rec.CHROM}:{pos} has no genotypes (GT)")
                calls = []
                for i, gt in enumerate(genotypes):

                    def where(i=i, rec=rec):
                        return f"VCF {vcf_name}: sample {samples[i]} at {rec.CHROM}:{rec.POS} ({rec.gt_bases[i]})"

                    calls.append(_call_alleles(gt, phasing=params["phasing"], rng=rng, where=where, counts=counts))
                info_af = rec.INFO.get("AF")
                info_af = list(info_af) if isinstance(info_af, (tuple, list)) else [info_af]
                called = np.array(calls).ravel()
                n_called = int((called >= 0).sum())
                own_af = [float((called == k + 1).sum()) / max(n_called, 1) for k in range(len(alts))]
                afs = [
                    float(info_af[k]) if k < len(info_af) and info_af[k] is not None else own_af[k]
                    for k in range(len(alts))
                ]
                if not (called > 0).any():
                    counts["snv_monomorphic_in_selection"] += 1
                    continue
                counts["snv_applied"] += 1
                sites.append((offset, pos, ref, alts, afs, calls))
                for i, pair in enumerate(calls):
                    for h, allele in enumerate(pair):
                        if allele < 0:
                            counts["missing_alleles"] += 1
                        elif allele > 0:
                            haps[i][h][offset] = alts[allele - 1]
            for i in range(len(samples)):
                for h in (0, 1):
                    sid = sequence_id(i, h, w.window_id)
                    seqs[sid] = "".join(haps[i][h])
                    for offset, pos, ref, alts, afs, calls in sites:
                        allele = calls[i][h]
                        if allele < 0:
                            continue  # unknown truth: not a genotype-inference query
                        af = afs[allele - 1] if allele > 0 else afs[0]
                        base = ref if allele == 0 else alts[allele - 1]
                        rows.append((sid, samples[i], h, w.window_id, offset, pos, ref, ",".join(alts), base, af))
    finally:
        vcf.close()
    example = counts.pop("_example", "")
    checked = counts["snv_checked"]
    if checked and counts["ref_mismatch"] / checked > max_ref_mismatch_fraction:
        raise InputError(
            f"{counts['ref_mismatch']} of {checked} SNV REF alleles of VCF {vcf_name} (individuals.vcf) in the "
            f"windows differ from the FASTA (e.g. {example}): the VCF and FASTA are probably from different "
            "assemblies; use a VCF built on this reference"
        )
    alleles = pd.DataFrame(rows, columns=list(ALLELE_COLUMNS))
    counts["individuals"] = len(samples)
    counts["haplotype_sequences"] = len(seqs)
    return samples, seqs, alleles, counts


def haplotypes_stage(
    fasta_path: str,
    windows_tsv: str,
    vcf_path: str,
    *,
    params: Mapping[str, Any],
    max_ref_mismatch_fraction: float,
    out: Mapping[str, str | os.PathLike],
) -> Counter:
    """Write ``haplotypes.fa``, ``haplotypes.tsv``, ``alleles.tsv.gz``, ``samples.tsv`` and ``counts.tsv``."""
    windows = pd.read_csv(windows_tsv, sep="\t", dtype={"window_id": str, "chrom": str})
    if not os.path.exists(vcf_path):
        raise InputError(f"individuals.vcf {vcf_path} does not exist")
    if not any(os.path.exists(f"{vcf_path}.{ext}") for ext in ("tbi", "csi")):
        raise InputError(
            f"individuals.vcf {vcf_path} has no index ({vcf_path}.tbi or .csi); bgzip it and run tabix -p vcf on it"
        )
    with pysam.FastaFile(fasta_path) as fasta:
        samples, seqs, alleles, counts = build_haplotypes(
            vcf_path, windows, fasta=fasta, params=params, max_ref_mismatch_fraction=max_ref_mismatch_fraction
        )
    alt = alleles[alleles.allele != alleles.ref].groupby("seq_id").size()
    index = pd.DataFrame(
        [
            (sequence_id(i, h, wid), sample, h, wid, int(alt.get(sequence_id(i, h, wid), 0)))
            for wid in windows.window_id
            for i, sample in enumerate(samples)
            for h in (0, 1)
        ],
        columns=list(HAPLOTYPE_COLUMNS),
    )
    with atomic_outputs(out["fasta"], out["tsv"], out["alleles"], out["samples"], out["counts"]) as tmp:
        write_fasta(tmp[0], [(sid, "", s) for sid, s in seqs.items()])
        write_tsv(index, tmp[1])
        write_text_gz(tmp[2], alleles.to_csv(sep="\t", index=False, float_format="%.6g"))
        write_tsv(pd.DataFrame({"sample": samples, "index": range(len(samples))}), tmp[3])
        write_tsv(pd.DataFrame(sorted(counts.items()), columns=["item", "count"]), tmp[4])
    return counts


def read_haplotype_index(path: str | os.PathLike) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"seq_id": str, "sample": str, "window_id": str})


def read_alleles(path: str | os.PathLike) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"seq_id": str, "sample": str, "window_id": str, "alts": str})
