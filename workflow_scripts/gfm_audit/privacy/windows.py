"""Stage 1b: place genomic windows and collect the SNVs that fall in them.

Coordinates are 0-based half-open for windows (BED style) and 1-based for
VCF positions, as the file formats themselves use them.
"""

from __future__ import annotations

import bisect
import contextlib
import gzip
import io
import logging
import math
import os
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cyvcf2
import numpy as np
import pysam

from ..errors import InputError
from ..outputs import atomic_outputs
from .reference import (
    ContigMatch,
    contig_key,
    htslib_errors_are_fatal,
    read_contigs,
    ref_mismatch_message,
    vcf_format,
)

log = logging.getLogger(__name__)

WINDOW_COLUMNS = ("window_id", "chrom", "start", "end", "n_snps", "snp_fraction", "gc_fraction")
SNP_COLUMNS = ("window_id", "chrom", "pos", "offset", "ref", "alt", "id", "af")
BASES = frozenset("ACGT")

IsValid = Callable[[str, int], bool]

# Windows read and written per step of select_windows: bounds its memory (about 1 MB of sequence at 1 kb).
_WINDOWS_PER_CHUNK = 1024


@dataclass(frozen=True, slots=True)
class Window:
    window_id: str
    chrom: str
    start: int
    end: int


@dataclass
class SnpSite:
    """All SNV alleles seen at one position; duplicate VCF records are merged."""

    offset: int
    pos: int
    ref: str
    alts: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    afs: list[float | None] = field(default_factory=list)


# --- sequence statistics -----------------------------------------------------


def ambiguous_fraction(seq: str) -> float:
    """Fraction of bases that are not A, C, G or T (N and other IUPAC codes)."""
    if not seq:
        return 0.0
    upper = seq.upper()
    acgt = sum(upper.count(b) for b in "ACGT")
    return (len(seq) - acgt) / len(seq)


def gc_fraction(seq: str) -> float:
    """(G + C) / (A + C + G + T): GC content of the unambiguous bases, 0 when there are none."""
    upper = seq.upper()
    gc = upper.count("G") + upper.count("C")
    acgt = gc + upper.count("A") + upper.count("T")
    return gc / acgt if acgt else 0.0


# --- chromosome choice -------------------------------------------------------


def contig_lookup(contigs: Sequence[ContigMatch]) -> Callable[[str], ContigMatch | None]:
    """Find a user's contig name (windows.chromosomes, a BED file) among the FASTA contigs; None if absent.

    A FASTA name is taken first, then a VCF name, then a name equal under
    :func:`contig_key` (``chr20`` ~ ``20``; the first such FASTA contig wins),
    so that a name that is both one contig's FASTA name and another's VCF name
    means the FASTA contig.
    """
    by_name = {c.fasta_contig: c for c in contigs}
    for c in contigs:
        if c.vcf_contig:
            by_name.setdefault(c.vcf_contig, c)
    by_key: dict[str, ContigMatch] = {}
    for c in contigs:
        by_key.setdefault(contig_key(c.fasta_contig), c)
    return lambda name: by_name.get(name) or by_key.get(contig_key(name))


def resolve_chromosomes(
    requested: Sequence[str], contigs: Sequence[ContigMatch], *, length: int, fasta: str
) -> list[ContigMatch]:
    """Map the config's chromosome names (FASTA or VCF naming) to FASTA contigs.

    An empty request means every FASTA contig with VCF records that can hold a
    window; a named contig that is absent or too short is an error.
    """
    if not requested:
        usable = [c for c in contigs if c.vcf_contig and c.length >= length]
        if not usable:
            raise InputError(
                f"no contig of FASTA {fasta} has VCF records and at least windows.length={length} bp; "
                "lower windows.length"
            )
        return usable
    find = contig_lookup(contigs)
    chosen = []
    for name in requested:
        match = find(name)
        if match is None:
            have = ", ".join(c.fasta_contig for c in contigs[:10]) + (", ..." if len(contigs) > 10 else "")
            raise InputError(
                f"chromosome '{name}' in windows.chromosomes is not in FASTA {fasta} (it has: {have}); "
                "fix windows.chromosomes"
            )
        if match.length < length:
            raise InputError(
                f"windows.length={length} is longer than contig {match.fasta_contig} ({match.length} bp) "
                f"in FASTA {fasta}; lower windows.length or drop {name} from windows.chromosomes"
            )
        if not match.vcf_contig:
            log.warning("contig %s has no VCF records: its windows will have no SNPs", match.fasta_contig)
        chosen.append(match)
    return chosen


# --- placement ---------------------------------------------------------------


class _Genome:
    """The chosen contigs laid end to end, for placing windows by one coordinate."""

    def __init__(self, contigs: Sequence[tuple[str, int]]) -> None:
        self.names = [c for c, _ in contigs]
        self.lengths = [n for _, n in contigs]
        self.offsets = [0, *np.cumsum(self.lengths).tolist()]
        self.size = self.offsets[-1]

    def locate(self, gstart: int, length: int) -> tuple[str, int] | None:
        """Map a global start to (contig, start), or None if the window crosses a contig end."""
        i = bisect.bisect_right(self.offsets, gstart) - 1
        local = gstart - self.offsets[i]
        if local + length > self.lengths[i]:
            return None
        return self.names[i], local


class _Taken:
    """Non-overlapping accepted windows in global coordinates."""

    def __init__(self) -> None:
        self.starts: list[int] = []

    def free(self, gstart: int, length: int) -> bool:
        i = bisect.bisect_left(self.starts, gstart)
        if i < len(self.starts) and self.starts[i] < gstart + length:
            return False
        return not (i > 0 and self.starts[i - 1] + length > gstart)

    def add(self, gstart: int) -> None:
        bisect.insort(self.starts, gstart)


def _outward(lo: int, hi: int, centre: int, step: int):
    """Starts in [lo, hi], from ``centre`` outwards: c, c+s, c-s, c+2s, ..."""
    yield centre
    k = 1
    while centre + k * step <= hi or centre - k * step >= lo:
        if centre + k * step <= hi:
            yield centre + k * step
        if centre - k * step >= lo:
            yield centre - k * step
        k += 1


def place_fixed(contigs: Sequence[tuple[str, int]], n: int, length: int, *, is_valid: IsValid) -> list[tuple[str, int]]:
    """Spread ``n`` windows evenly over the contigs laid end to end, deterministically.

    The genome is cut into ``n`` equal slots and each window sits at its
    slot's centre. A window that crosses a contig end or fails ``is_valid``
    (too many N) moves outwards within its slot in half-window steps; if the
    whole slot is unusable (a centromere gap), the window goes to the nearest
    slot with free room. No two windows overlap.
    """
    genome = _Genome(contigs)
    if n * length > genome.size:
        raise InputError(
            f"windows.n={n} windows of {length} bp do not fit in the {genome.size} bp of the chosen chromosomes; "
            "lower windows.n or windows.length, or add chromosomes"
        )
    bounds = [(i * genome.size) // n for i in range(n + 1)]
    step = max(1, length // 2)
    taken = _Taken()
    placed: list[tuple[str, int]] = []

    def try_slot(i: int) -> bool:
        lo, hi = bounds[i], bounds[i + 1] - length
        if hi < lo:
            return False
        for g in _outward(lo, hi, lo + (hi - lo) // 2, step):
            where = genome.locate(g, length)
            if where is not None and taken.free(g, length) and is_valid(*where):
                taken.add(g)
                placed.append(where)
                return True
        return False

    failed = [i for i in range(n) if not try_slot(i)]
    for i in failed:
        for d in range(1, n):
            if (i + d < n and try_slot(i + d)) or (i - d >= 0 and try_slot(i - d)):
                break
        else:
            raise InputError(
                f"only {len(placed)} of windows.n={n} windows of {length} bp pass windows.max_n_fraction "
                "on the chosen chromosomes; lower windows.n or raise windows.max_n_fraction"
            )
    if failed:
        log.info("%d fixed windows fell on N-rich or boundary positions and were moved", len(failed))
    return placed


def place_random(
    contigs: Sequence[tuple[str, int]], n: int, length: int, *, seed: int, is_valid: IsValid
) -> list[tuple[str, int]]:
    """Draw ``n`` non-overlapping windows uniformly over the contigs, seeded."""
    genome = _Genome(contigs)
    if n * length > genome.size:
        raise InputError(
            f"windows.n={n} windows of {length} bp do not fit in the {genome.size} bp of the chosen chromosomes; "
            "lower windows.n or windows.length"
        )
    rng = np.random.default_rng(seed)
    taken = _Taken()
    placed: list[tuple[str, int]] = []
    max_draws = max(10_000, 200 * n)
    for _ in range(max_draws):
        if len(placed) == n:
            break
        g = int(rng.integers(0, genome.size - length + 1))
        where = genome.locate(g, length)
        if where is not None and taken.free(g, length) and is_valid(*where):
            taken.add(g)
            placed.append(where)
    if len(placed) < n:
        raise InputError(
            f"only {len(placed)} of windows.n={n} random windows could be placed without overlap "
            f"in {max_draws} draws; lower windows.n, or use placement fixed"
        )
    return placed


def read_bed(path: str, contigs: Sequence[ContigMatch]) -> list[tuple[str, int, int]]:
    """Read BED intervals and map their contig names (FASTA or VCF naming) to FASTA contigs."""
    find = contig_lookup(contigs)
    intervals = []
    if not os.path.exists(path):
        raise InputError(f"BED file {path} (windows.bed) does not exist")
    with open(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 3:
                raise InputError(f"BED file {path} line {lineno}: expected tab-separated chrom, start, end")
            match = find(fields[0])
            if match is None:
                raise InputError(
                    f"BED file {path} line {lineno}: contig '{fields[0]}' is not in the FASTA; "
                    "use the FASTA's contig names"
                )
            try:
                start, end = int(fields[1]), int(fields[2])
            except ValueError:
                raise InputError(f"BED file {path} line {lineno}: start and end must be integers") from None
            if start < 0 or end <= start:
                raise InputError(f"BED file {path} line {lineno}: need 0 <= start < end, got {start}, {end}")
            intervals.append((match.fasta_contig, start, end))
    if not intervals:
        raise InputError(f"BED file {path} holds no intervals")
    return intervals


def place_bed(
    intervals: Sequence[tuple[str, int, int]],
    contigs: Sequence[tuple[str, int]],
    *,
    n: int,
    length: int,
    is_valid: IsValid,
) -> list[tuple[str, int]]:
    """One window centred on each BED interval (kept inside its contig), at most ``n``.

    Windows that overlap an earlier one, or fail ``is_valid``, are dropped.
    """
    sizes = dict(contigs)
    genome = _Genome(contigs)
    index = {name: i for i, name in enumerate(genome.names)}
    taken = _Taken()
    placed: list[tuple[str, int]] = []
    dropped: Counter[str] = Counter()
    for chrom, start, end in intervals:
        if len(placed) == n:
            break
        if chrom not in sizes:
            dropped["not on windows.chromosomes"] += 1
            continue
        if sizes[chrom] < length:
            raise InputError(f"windows.length={length} is longer than contig {chrom} ({sizes[chrom]} bp)")
        s = min(max(0, (start + end) // 2 - length // 2), sizes[chrom] - length)
        g = genome.offsets[index[chrom]] + s
        if not taken.free(g, length):
            dropped["overlap an earlier window"] += 1
        elif not is_valid(chrom, s):
            dropped["over windows.max_n_fraction"] += 1
        else:
            taken.add(g)
            placed.append((chrom, s))
    for reason, count in dropped.items():
        log.info("%d BED intervals dropped: %s", count, reason)
    if len(placed) < n:
        log.info("BED placement gave %d windows (windows.n=%d)", len(placed), n)
    if not placed:
        raise InputError("no window could be placed on the BED intervals; check windows.bed and windows.chromosomes")
    return placed


# --- SNVs --------------------------------------------------------------------


def _missing(x: Any) -> bool:
    return x is None or x == "." or (isinstance(x, float) and math.isnan(x))


def _floats(values: Sequence[Any]) -> list[float | None]:
    out: list[float | None] = []
    for v in values:
        try:
            out.append(None if _missing(v) else float(v))
        except (TypeError, ValueError):
            out.append(None)
    return out


def alt_frequencies(info: Mapping[str, Any] | Any, n_alts: int) -> list[float | None]:
    """Per-ALT allele frequencies from INFO ``AF``, else ``CAF``, else ``FREQ``.

    ``AF`` (1000 Genomes, gnomAD) lists one value per ALT. dbSNP's ``CAF``
    lists the REF frequency first, then each ALT. dbSNP's newer ``FREQ`` is
    ``source:ref,alt1,..|source:..``; the first source with any value is used.
    Missing values come back as ``None``.
    """
    af = info.get("AF")
    if af is not None:
        values = list(af) if isinstance(af, (tuple, list)) else str(af).split(",") if isinstance(af, str) else [af]
        return (_floats(values) + [None] * n_alts)[:n_alts]
    caf = info.get("CAF")
    if caf is not None:
        values = list(caf) if isinstance(caf, (tuple, list)) else str(caf).split(",")
        return (_floats(values[1:]) + [None] * n_alts)[:n_alts]
    freq = info.get("FREQ")
    if freq is not None:
        for source in str(freq).split("|"):
            values = _floats(source.split(":", 1)[-1].split(","))[1:]
            if any(v is not None for v in values):
                return (values + [None] * n_alts)[:n_alts]
    return [None] * n_alts


def extract_snps(
    vcf: cyvcf2.VCF, vcf_contig: str, start: int, *, seq: str, counts: Counter[str]
) -> tuple[list[SnpSite], list[str]]:
    """SNV sites of a window, REF-checked against its sequence.

    Returns the sites and a few descriptions of REF mismatches. ``counts``
    gains one entry per record kind (kept, indel, mnv, mismatch, ...).
    """
    end = start + len(seq)
    sites: dict[int, SnpSite] = {}
    mismatches: list[str] = []
    if not vcf_contig:
        return [], mismatches
    for rec in vcf(f"{vcf_contig}:{start + 1}-{end}"):
        pos = rec.POS
        if not start < pos <= end:
            continue  # an indel that starts before the window and spans into it
        ref = rec.REF.upper()
        alts = [a.upper() for a in rec.ALT]
        if len(ref) != 1:
            counts["mnv" if alts and all(len(a) == len(ref) for a in alts) else "indel"] += 1
            continue
        keep = [i for i, a in enumerate(alts) if len(a) == 1 and a in BASES and a != ref]
        if not keep:
            counts["indel" if any(len(a) != 1 for a in alts if not a.startswith("<")) else "other"] += 1
            continue
        if len(keep) < len(alts):
            counts["mixed_record_snv_alleles_kept"] += 1
        offset = pos - 1 - start
        base = seq[offset]
        if base not in BASES:
            counts["ref_at_ambiguous_base"] += 1
            continue
        counts["snv_checked"] += 1
        if base != ref:
            counts["ref_mismatch"] += 1
            if len(mismatches) < 3:
                mismatches.append(f"{vcf_contig}:{pos} REF={ref} FASTA={base}")
            continue
        counts["snv_kept"] += 1
        afs = alt_frequencies(rec.INFO, len(alts))
        site = sites.setdefault(offset, SnpSite(offset, pos, ref))
        if len(site.alts) > 0:
            counts["duplicate_position_merged"] += 1
        for i in keep:
            if alts[i] not in site.alts:
                site.alts.append(alts[i])
                site.afs.append(afs[i])
        if rec.ID and rec.ID not in site.ids:
            site.ids.append(rec.ID)
    return [sites[k] for k in sorted(sites)], mismatches


def check_record_lines(
    tabix: pysam.TabixFile, vcf_contig: str, *, start: int, end: int, n_columns: int, vcf_name: str
) -> None:
    """Stop on a malformed record line of a window before htslib parses it.

    htslib drops a line with too few columns without a word and reads one
    without INFO as having no AF; cyvcf2 crashes on a POS that is not a number.
    The raw lines come from tabix, so no line number is known; CHROM:POS and
    the region locate the line.
    """
    if not vcf_contig:
        return
    for line in tabix.fetch(vcf_contig, start, end):
        fields = line.rstrip("\r").split("\t")
        where = f"VCF {vcf_name}: the record line at {fields[0]}:{fields[1] if len(fields) > 1 else '?'}"
        fix = f"fix or remove it (tabix {vcf_name} {vcf_contig}:{start + 1}-{end} shows it) and re-run"
        if len(fields) != n_columns:
            raise InputError(
                f"{where} has {len(fields)} tab-separated columns where the #CHROM header line has {n_columns}; {fix}"
            )
        if not (fields[1].isascii() and fields[1].isdigit()):
            raise InputError(f"{where} has POS '{fields[1]}', which is not a whole number; {fix}")


def _header_columns(tabix: pysam.TabixFile) -> int:
    return len(list(tabix.header)[-1].split("\t"))


def _fmt_af(afs: Sequence[float | None]) -> str:
    if all(a is None for a in afs):
        return ""
    return ",".join("." if a is None else f"{a:.6g}" for a in afs)


# --- the stage ---------------------------------------------------------------


def place_windows(
    params: Mapping[str, Any], contigs: Sequence[ContigMatch], *, fasta: pysam.FastaFile, fasta_path: str
) -> list[Window]:
    """Choose windows per ``params`` (the validated ``windows`` config block)."""
    length, n = params["length"], params["n"]
    chosen = resolve_chromosomes(params["chromosomes"], contigs, length=length, fasta=fasta_path)
    sizes = [(c.fasta_contig, c.length) for c in chosen]
    max_n = params["max_n_fraction"]

    def is_valid(chrom: str, start: int) -> bool:
        return ambiguous_fraction(fasta.fetch(chrom, start, start + length)) <= max_n

    placement = params["placement"]
    if placement == "fixed":
        starts = place_fixed(sizes, n, length, is_valid=is_valid)
    elif placement == "random":
        starts = place_random(sizes, n, length, seed=params["seed"], is_valid=is_valid)
    else:
        starts = place_bed(read_bed(params["bed"], contigs), sizes, n=n, length=length, is_valid=is_valid)
    order = {name: i for i, (name, _) in enumerate(sizes)}
    starts = sorted(starts, key=lambda cs: (order[cs[0]], cs[1]))
    width = max(6, len(str(len(starts) - 1)))
    return [Window(f"w{i:0{width}d}", c, s, s + length) for i, (c, s) in enumerate(starts)]


def select_windows(
    fasta_path: str,
    vcf_path: str,
    contigs_path: str,
    *,
    params: Mapping[str, Any],
    out_tsv: str | os.PathLike,
    out_fasta: str | os.PathLike,
    out_snps: str | os.PathLike,
    fasta_name: str | None = None,
    vcf_name: str | None = None,
) -> Counter[str]:
    """Write ``windows.tsv``, ``windows.fa`` and ``snps.tsv.gz``; return record counts.

    ``fasta_path`` and ``vcf_path`` are the staged links; messages name
    ``fasta_name`` and ``vcf_name``, the user's files (by default the files
    the links point to).
    """
    fasta_name = fasta_name or os.path.realpath(fasta_path)
    vcf_name = vcf_name or os.path.realpath(vcf_path)
    contigs = read_contigs(contigs_path)
    vcf_contig = {c.fasta_contig: c.vcf_contig for c in contigs}
    counts: Counter[str] = Counter()
    examples: list[str] = []
    reread = "re-run; if it happens again, re-download it or delete results/reference/ to index it anew"
    text_vcf = vcf_format(vcf_path) == "vcf"
    # Windows are written a chunk at a time as they are read, so memory holds the window coordinates and one
    # chunk's sequences, not every sequence and SNP line (1.6 KB per window when they were collected first). The
    # outputs stay temporaries until the REF check below passes. Each chunk's reads sit in their own file's
    # htslib context, so a damaged file is named in the error.
    with (
        atomic_outputs(out_tsv, out_fasta, out_snps) as (tsv_tmp, fa_tmp, snps_tmp),
        contextlib.ExitStack() as stack,
        open(tsv_tmp, "w") as tsv,
        open(fa_tmp, "w") as fa,
        open(snps_tmp, "wb") as snps_raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=snps_raw, mtime=0) as snps_gz,
        io.TextIOWrapper(snps_gz, encoding="utf-8", newline="") as snps,
    ):
        tsv.write("\t".join(WINDOW_COLUMNS) + "\n")
        snps.write("\t".join(SNP_COLUMNS) + "\n")
        with htslib_errors_are_fatal(f"FASTA {fasta_name}", reread):
            fasta = stack.enter_context(pysam.FastaFile(fasta_path))
            windows = place_windows(params, contigs, fasta=fasta, fasta_path=fasta_name)
        with htslib_errors_are_fatal(f"VCF {vcf_name}", reread):
            vcf = cyvcf2.VCF(vcf_path, lazy=True)
            stack.callback(vcf.close)
            tabix = stack.enter_context(pysam.TabixFile(vcf_path)) if text_vcf else None
            n_columns = _header_columns(tabix) if tabix is not None else 0
        for first in range(0, len(windows), _WINDOWS_PER_CHUNK):
            chunk = windows[first : first + _WINDOWS_PER_CHUNK]
            with htslib_errors_are_fatal(f"FASTA {fasta_name}", reread):
                seqs = [fasta.fetch(w.chrom, w.start, w.end).upper() for w in chunk]
            with htslib_errors_are_fatal(f"VCF {vcf_name}", reread):
                for w, seq in zip(chunk, seqs, strict=True):
                    if tabix is not None:
                        check_record_lines(
                            tabix, vcf_contig[w.chrom], start=w.start, end=w.end, n_columns=n_columns, vcf_name=vcf_name
                        )
                    sites, bad = extract_snps(vcf, vcf_contig[w.chrom], w.start, seq=seq, counts=counts)
                    examples.extend(bad[: 3 - len(examples)])
                    tsv.write(
                        f"{w.window_id}\t{w.chrom}\t{w.start}\t{w.end}\t{len(sites)}"
                        f"\t{len(sites) / len(seq):.6f}\t{gc_fraction(seq):.6f}\n"
                    )
                    fa.write(f">{w.window_id} {w.chrom}:{w.start + 1}-{w.end}\n{seq}\n")
                    for s in sites:
                        snps.write(
                            f"{w.window_id}\t{w.chrom}\t{s.pos}\t{s.offset}\t{s.ref}\t{','.join(s.alts)}"
                            f"\t{';'.join(s.ids) or '.'}\t{_fmt_af(s.afs)}\n"
                        )
                    counts["snp_sites"] += len(sites)
                    counts["ambiguous_bases"] += int(round(ambiguous_fraction(seq) * len(seq)))
        checked, threshold = counts["snv_checked"], params["max_ref_mismatch_fraction"]
        if checked and counts["ref_mismatch"] / checked > threshold:
            raise InputError(
                ref_mismatch_message(
                    counts["ref_mismatch"],
                    checked,
                    threshold=threshold,
                    alleles="VCF SNV REF alleles in the windows",
                    fasta=f"FASTA {fasta_name}",
                    examples=examples,
                )
            )
    counts["windows"] = len(windows)
    return counts


# --- shards ----------------------------------------------------------------------------------------


def shard_of(window_id: str, n_shards: int) -> int:
    """The shard of a window: CRC-32 of its id modulo the shard count.

    A window's shard depends on its id alone, so adding or removing other windows never moves it (a re-run with
    more windows re-scores only the shards that gained some).
    """
    return zlib.crc32(window_id.encode()) % n_shards


def split_windows(
    windows_fasta: str | os.PathLike,
    snps_path: str | os.PathLike,
    *,
    n_shards: int,
    out_fastas: Sequence[str | os.PathLike],
    out_snps: Sequence[str | os.PathLike],
) -> Counter[int]:
    """Stream ``windows.fa`` and ``snps.tsv.gz`` once into one FASTA and one SNP table per shard.

    Memory is one record at a time: the only job that reads the whole windows file, so that no scoring or
    neighbor job reads more than its shard. Returns the window count per shard.
    """
    if len(out_fastas) != n_shards or len(out_snps) != n_shards:
        raise InputError(f"split_windows needs {n_shards} FASTA and SNP outputs, one per shard")
    counts: Counter[int] = Counter({i: 0 for i in range(n_shards)})
    with atomic_outputs(*out_fastas, *out_snps) as temps, contextlib.ExitStack() as stack:
        fastas = [stack.enter_context(open(t, "w")) for t in temps[:n_shards]]
        # No file name and a zero time in the gzip header: identical runs give identical bytes.
        raw = [stack.enter_context(open(t, "wb")) for t in temps[n_shards:]]
        snps = [stack.enter_context(gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0)) for f in raw]
        with pysam.FastxFile(str(windows_fasta)) as fh:
            for record in fh:
                shard = shard_of(record.name, n_shards)
                header = f">{record.name} {record.comment}" if record.comment else f">{record.name}"
                fastas[shard].write(f"{header}\n{record.sequence}\n")
                counts[shard] += 1
        with gzip.open(snps_path, "rb") as fh:
            header = fh.readline()
            for out in snps:
                out.write(header)
            for line in fh:
                snps[shard_of(line.split(b"\t", 1)[0].decode(), n_shards)].write(line)
    return counts
