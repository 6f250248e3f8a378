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
* Records at one position (a multi-allelic site split into biallelic records, ``bcftools norm -m-``) are
  merged into one site, so each haplotype has one allele there; two different ALTs on one haplotype stop the run.
* A call of more than two alleles (polyploid) stops the run: only diploid and haploid calls are supported.
* A window contig without records in the VCF (e.g. ``chr20`` against FASTA ``20`` works, ``chr20`` against ``z``
  does not), or windows where no selected person carries any SNV, stop the run: every haplotype would be the
  reference.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cyvcf2
import numpy as np
import pandas as pd
import pysam

from ..errors import InputError
from ..outputs import atomic_outputs, write_fasta, write_text_gz, write_tsv
from ..sampling import sample_indices
from .reference import contig_key, ref_mismatch_message, vcf_record_contigs

log = logging.getLogger(__name__)

BASES = frozenset("ACGT")
MIN_INDIVIDUALS = 4
HAPLOTYPE_COLUMNS = ("seq_id", "sample", "haplotype", "window_id", "n_alt")
ALLELE_COLUMNS = (
    "seq_id",
    "sample",
    "haplotype",
    "window_id",
    "offset",
    "pos",
    "ref",
    "alts",
    "allele",
    "af",
    "alt_afs",
)
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
        chosen = [chosen[i] for i in sample_indices(len(chosen), n, seed)]
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


def _require_window_contigs(
    chroms: Sequence[str], vcf_contigs: Sequence[str], *, vcf_name: str, fasta_name: str
) -> dict[str, str]:
    """{window contig: its VCF contig}; stops when a window's contig has no VCF records.

    Without records every person's haplotypes there would be the plain reference: no person differs from
    another, and the person-level attacks would grade noise.
    """
    found = {c: _vcf_contig(vcf_contigs, c) for c in dict.fromkeys(chroms)}
    absent = [c for c, v in found.items() if v is None]
    if absent:
        have = ", ".join(vcf_contigs[:5]) + (", ..." if len(vcf_contigs) > 5 else "") or "none"
        raise InputError(
            f"VCF {vcf_name} (individuals.vcf) has no records on contig(s) "
            f"{', '.join(repr(c) for c in absent)} of FASTA {fasta_name}, where the windows are (its records are "
            f"on: {have}); every haplotype there would be the reference: rename the VCF contigs to the FASTA's "
            "(bcftools annotate --rename-chrs) or give a VCF with these contigs"
        )
    return {c: v for c, v in found.items() if v is not None}


def _gt_text(gt: Sequence[Any]) -> str:
    """A cyvcf2 genotype ``[a, b, .., phased]`` as the VCF writes it (cyvcf2's gt_bases stops above ploidy 2)."""
    *alleles, phased = gt
    return ("|" if phased else "/").join("." if a < 0 else str(a) for a in alleles)


def _call_alleles(gt: Sequence[Any], *, phasing: str, rng: np.random.Generator, where, counts: Counter):
    """(allele index of haplotype 0, of haplotype 1) for one genotype; -1 = missing. ``where()`` names it."""
    *alleles, phased = gt
    if len(alleles) == 1:
        counts["haploid_calls"] += 1
        return alleles[0], alleles[0]
    if len(alleles) != 2:
        raise InputError(
            f"{where()} has {len(alleles)} alleles; only diploid phased genotypes (and haploid calls) are "
            "supported: drop this sample or record (bcftools view -s / -t)"
        )
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


@dataclass
class _Site:
    """One SNV position of a window: its ALT alleles and each selected person's two calls.

    Records at the same position (a multi-allelic site split by ``bcftools norm -m-``) are merged into one
    site, so that each haplotype has one allele there, as if the VCF held one multi-allelic record.
    """

    offset: int
    pos: int
    ref: str
    alts: list[str] = field(default_factory=list)
    afs: list[float] = field(default_factory=list)
    calls: list[list[int]] = field(default_factory=list)  # [sample][haplotype]: index into [ref, *alts], -1 missing

    def merge(self, alts: Sequence[str], afs: Sequence[float], calls: Sequence[tuple[int, int]], where) -> None:
        """Add one record's alleles; ``where(sample index)`` names a sample's call in a message."""
        index = [0]
        for alt, af in zip(alts, afs, strict=True):
            if alt not in self.alts:
                self.alts.append(alt)
                self.afs.append(af)
            index.append(self.alts.index(alt) + 1)
        if not self.calls:
            self.calls = [[-1 if a < 0 else index[a] for a in pair] for pair in calls]
            return
        for i, pair in enumerate(calls):
            for h, a in enumerate(pair):
                self.calls[i][h] = self._combine(self.calls[i][h], -1 if a < 0 else index[a], lambda i=i: where(i))

    def _combine(self, old: int, new: int, where) -> int:
        # An ALT in either record wins; a missing call in either leaves the allele unknown; else REF.
        if old > 0 and new > 0 and old != new:
            raise InputError(
                f"{where()}: records at this position put ALT alleles {self.alts[old - 1]} and "
                f"{self.alts[new - 1]} on the same haplotype; join the split records (bcftools norm -m +snps)"
            )
        if old > 0 or new > 0:
            return max(old, new)
        return -1 if -1 in (old, new) else 0


def _record_calls(rec, genotypes, *, samples, vcf_name, params, rng, counts) -> list[tuple[int, int]]:
    """Each selected sample's (haplotype 0, haplotype 1) allele indices of one record."""

    def where(i: int) -> str:
        return f"VCF {vcf_name} record {rec.CHROM}:{rec.POS}, sample {samples[i]} ({_gt_text(genotypes[i])})"

    return [
        _call_alleles(gt, phasing=params["phasing"], rng=rng, where=lambda i=i: where(i), counts=counts)
        for i, gt in enumerate(genotypes)
    ]


def _alt_frequencies(rec, calls: Sequence[tuple[int, int]], n_alts: int) -> list[float]:
    """INFO AF of each ALT, else its frequency among the selected samples' called alleles."""
    info_af = rec.INFO.get("AF")
    info_af = list(info_af) if isinstance(info_af, (tuple, list)) else [info_af]
    called = np.array(calls).ravel()
    n_called = max(int((called >= 0).sum()), 1)
    return [
        float(info_af[k]) if k < len(info_af) and info_af[k] is not None else float((called == k + 1).sum()) / n_called
        for k in range(n_alts)
    ]


def _window_sites(
    vcf: cyvcf2.VCF, region: str, w, ref_seq: str, *, samples, vcf_name, params, rng, counts: Counter
) -> list[_Site]:
    """The window's SNV sites that any selected sample carries an ALT at, REF-checked, split records merged."""
    sites: dict[int, _Site] = {}
    for rec in vcf(region):
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
        calls = _record_calls(rec, genotypes, samples=samples, vcf_name=vcf_name, params=params, rng=rng, counts=counts)
        if offset in sites:
            counts["duplicate_position_merged"] += 1
        site = sites.setdefault(offset, _Site(offset, pos, ref))

        def where(i: int, rec=rec) -> str:
            return f"VCF {vcf_name} record {rec.CHROM}:{rec.POS}, sample {samples[i]}"

        site.merge(alts, _alt_frequencies(rec, calls, len(alts)), calls, where)
    kept = []
    for offset in sorted(sites):
        site = sites[offset]
        if not any(a > 0 for pair in site.calls for a in pair):
            counts["snv_monomorphic_in_selection"] += 1
            continue
        counts["snv_applied"] += 1
        kept.append(site)
    return kept


def _haplotype(ref_seq: str, sites: Sequence[_Site], i: int, h: int, counts: Counter) -> tuple[str, list[tuple]]:
    """Haplotype ``h`` of sample ``i``: its sequence, and (offset, pos, ref, alts, allele, af, alt_afs) of each
    known site."""
    haplotype = list(ref_seq)
    carried = []
    for site in sites:
        allele = site.calls[i][h]
        if allele < 0:
            counts["missing_alleles"] += 1
            continue  # unknown truth: the reference base stays, and it is no genotype-inference query
        base = site.ref if allele == 0 else site.alts[allele - 1]
        haplotype[site.offset] = base
        af = site.afs[allele - 1] if allele > 0 else site.afs[0]
        alt_afs = ",".join(repr(float(a)) for a in site.afs)
        carried.append((site.offset, site.pos, site.ref, ",".join(site.alts), base, af, alt_afs))
    return "".join(haplotype), carried


def build_haplotypes(
    vcf_path: str,
    windows: pd.DataFrame,
    *,
    fasta: pysam.FastaFile,
    params: Mapping[str, Any],
    max_ref_mismatch_fraction: float,
    vcf_name: str | None = None,
    fasta_name: str | None = None,
) -> tuple[list[str], dict[str, str], pd.DataFrame, Counter]:
    """Every selected sample's two haplotype sequences per window.

    Returns (samples, {seq_id: sequence}, alleles table, counts). The alleles table has one row per
    haplotype and SNV site of the window where any selected sample carries a non-reference allele:
    ``allele`` is the base this haplotype carries, ``af`` the ALT frequency (INFO AF, else the selected
    samples' own frequency; for several ALTs the one of the allele carried, or of the first ALT), and ``alt_afs``
    every ALT's frequency in the order of ``alts`` (comma-separated), from which the REF allele's is 1 - their sum.
    Records at one position (a split multi-allelic site) are one site.
    """
    vcf_name = vcf_name or vcf_path
    fasta_name = fasta_name or os.path.realpath(fasta.filename.decode())
    counts: Counter = Counter()
    contigs = _require_window_contigs(
        list(windows.chrom), vcf_record_contigs(vcf_path, vcf_name), vcf_name=vcf_name, fasta_name=fasta_name
    )
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
            region = f"{contigs[w.chrom]}:{int(w.start) + 1}-{int(w.end)}"
            sites = _window_sites(
                vcf, region, w, ref_seq, samples=samples, vcf_name=vcf_name, params=params, rng=rng, counts=counts
            )
            for i, sample in enumerate(samples):
                for h in (0, 1):
                    sid = sequence_id(i, h, w.window_id)
                    seqs[sid], carried = _haplotype(ref_seq, sites, i, h, counts)
                    rows.extend((sid, sample, h, w.window_id, *row) for row in carried)
    finally:
        vcf.close()
    _check_sites(
        counts,
        n_windows=len(windows),
        n_samples=len(samples),
        threshold=max_ref_mismatch_fraction,
        vcf_name=vcf_name,
        fasta_name=fasta_name,
    )
    alleles = pd.DataFrame(rows, columns=list(ALLELE_COLUMNS))
    counts["individuals"] = len(samples)
    counts["haplotype_sequences"] = len(seqs)
    return samples, seqs, alleles, counts


def _check_sites(
    counts: Counter, *, n_windows: int, n_samples: int, threshold: float, vcf_name: str, fasta_name: str
) -> None:
    """Stop on a VCF of another assembly, or on one whose SNVs no selected person carries in the windows."""
    example = counts.pop("_example", "")
    checked = counts["snv_checked"]
    if checked and counts["ref_mismatch"] / checked > threshold:
        raise InputError(
            ref_mismatch_message(
                counts["ref_mismatch"],
                checked,
                threshold=threshold,
                alleles=f"SNV REF alleles of VCF {vcf_name} (individuals.vcf) in the windows",
                fasta=f"the FASTA {fasta_name}",
                examples=[example],
            )
        )
    if not counts["snv_applied"]:
        raise InputError(
            f"no SNV of VCF {vcf_name} (individuals.vcf) in the {n_windows} window(s) is carried by any of the "
            f"{n_samples} selected individuals ({checked} SNV records checked): every haplotype would be the "
            "reference; place the windows where the VCF has variants (windows.placement: bed) or select others"
        )


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
            vcf_path,
            windows,
            fasta=fasta,
            params=params,
            max_ref_mismatch_fraction=max_ref_mismatch_fraction,
            fasta_name=os.path.realpath(fasta_path),
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
    table = pd.read_csv(
        path, sep="\t", dtype={"seq_id": str, "sample": str, "window_id": str, "alts": str, "alt_afs": str}
    )
    missing = [c for c in ALLELE_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(
            f"{path} lacks column(s) {', '.join(missing)} (written by an older gfm-audit); re-run rule "
            "individual_haplotypes (snakemake --forcerun individual_haplotypes)"
        )
    return table
