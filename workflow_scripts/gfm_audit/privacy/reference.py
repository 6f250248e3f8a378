"""Stage 1a: check the reference FASTA and VCF, index them, and map contig names.

Nothing is written next to the user's files (reference directories on a
cluster are often read-only and shared): ``results/reference/`` gets symlinks
to the FASTA and VCF, their existing indexes symlinked beside them, or new
indexes built there when missing, older than their file or not describing it.
"""

from __future__ import annotations

import bisect
import gzip
import logging
import os
import struct
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pysam
import pysam.bcftools
import pysam.libcbgzf

from ..errors import InputError
from ..outputs import atomic_outputs

log = logging.getLogger(__name__)

# The empty block every complete BGZF file ends with (SAM/BAM spec, section 4.1.2).
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")

CONTIG_COLUMNS = ("fasta_contig", "vcf_contig", "length", "match")


# --- file sniffing -----------------------------------------------------------


def sniff_compression(path: str | os.PathLike) -> str:
    """Return ``"bgzf"``, ``"gzip"`` or ``"none"`` from the first bytes of ``path``."""
    with open(path, "rb") as fh:
        head = fh.read(18)
    if head[:2] != b"\x1f\x8b":
        return "none"
    # BGZF is gzip with the FEXTRA flag and a 'BC' subfield (SAM spec 4.1).
    if len(head) >= 14 and head[3] & 4 and head[12:14] == b"BC":
        return "bgzf"
    return "gzip"


def check_bgzf_complete(path: str | os.PathLike, what: str) -> None:
    """Fail if a BGZF file lacks its end-of-file block, i.e. was truncated."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        fh.seek(max(0, size - len(BGZF_EOF)))
        tail = fh.read()
    if tail != BGZF_EOF:
        raise InputError(
            f"{what} {path} is truncated: its bgzip end-of-file block is missing; "
            "download or compress it again (bgzip) and re-run"
        )


def vcf_format(path: str | os.PathLike) -> str:
    """Return ``"vcf"`` or ``"bcf"`` for a bgzipped file, or raise a one-line error."""
    compression = sniff_compression(path)
    if compression == "none":
        with open(path, "rb") as fh:
            head = fh.read(16)
        if head.startswith(b"BCF"):
            raise InputError(f"VCF {path} is an uncompressed BCF; compress it: bcftools view -Ob -o out.bcf {path}")
        raise InputError(
            f"VCF {path} is not bgzip-compressed; compress and index it: "
            f"bgzip -c {path} > {path}.gz && tabix -p vcf {path}.gz, then point reference.vcf at {path}.gz"
        )
    if compression == "gzip":
        raise InputError(
            f"VCF {path} is gzip-compressed but not with bgzip, so it cannot be indexed; "
            f"re-compress it: zcat {path} | bgzip -c > fixed.vcf.gz && tabix -p vcf fixed.vcf.gz"
        )
    check_bgzf_complete(path, "VCF")
    try:
        with gzip.open(path, "rb") as fh:
            head = fh.read(16)
    except (OSError, EOFError) as exc:
        raise InputError(f"VCF {path} cannot be decompressed ({exc}); download or compress it again") from None
    if head.startswith(b"BCF"):
        return "bcf"
    if head.startswith(b"##fileformat=VCF"):
        return "vcf"
    raise InputError(f"VCF {path} does not start with '##fileformat=VCF' nor a BCF magic; is it a VCF?")


# --- contig names ------------------------------------------------------------


def contig_key(name: str) -> str:
    """Name under which FASTA and VCF contigs are matched: no ``chr`` prefix, ``M`` as ``MT``."""
    key = name[3:] if name[:3].lower() == "chr" else name
    return "MT" if key.upper() in {"M", "MT"} else key


def ref_mismatch_message(
    mismatched: int, checked: int, *, threshold: float, alleles: str, fasta: str, examples: Sequence[str]
) -> str:
    """The one line that stops a run on too many REF mismatches: the share, the limit and the key that sets it.

    Shared by the windows and the individuals stages, which check REF alleles against the same setting;
    ``alleles`` says which REF alleles were checked, ``fasta`` names the FASTA they were checked against.
    """
    return (
        f"{mismatched} of {checked} {alleles} ({100 * mismatched / checked:.1f}%) differ from {fasta} "
        f"(e.g. {'; '.join(examples)}), more than windows.max_ref_mismatch_fraction={threshold:g}: the VCF and "
        "FASTA are probably from different assemblies (GRCh37 vs GRCh38); use a VCF built on this reference, "
        "or raise windows.max_ref_mismatch_fraction if these mismatches are expected"
    )


@dataclass(frozen=True)
class ContigMatch:
    fasta_contig: str
    vcf_contig: str  # "" when the VCF has no records on this contig
    length: int
    match: str  # identical | chr_prefix | mito_alias | none


def match_contigs(fasta_contigs: Sequence[tuple[str, int]], vcf_contigs: Sequence[str]) -> list[ContigMatch]:
    """Pair each FASTA contig with the VCF contig of the same chromosome.

    Identical names win; otherwise names are compared by :func:`contig_key`
    (``chr20`` ~ ``20``, ``chrM`` ~ ``MT``).
    """
    exact = set(vcf_contigs)
    by_key: dict[str, str] = {}
    for name in vcf_contigs:
        by_key.setdefault(contig_key(name), name)
    rows = []
    for name, length in fasta_contigs:
        if name in exact:
            rows.append(ContigMatch(name, name, length, "identical"))
            continue
        other = by_key.get(contig_key(name), "")
        if not other:
            kind = "none"
        elif contig_key(name) == "MT" and name.upper().removeprefix("CHR") != other.upper().removeprefix("CHR"):
            kind = "mito_alias"
        else:
            kind = "chr_prefix"
        rows.append(ContigMatch(name, other, length, kind))
    return rows


def require_shared(rows: Sequence[ContigMatch], *, fasta: str, vcf: str, vcf_contigs: Sequence[str]) -> None:
    if any(r.vcf_contig for r in rows):
        return
    fasta_names = ", ".join(r.fasta_contig for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
    vcf_names = ", ".join(vcf_contigs[:5]) + (", ..." if len(vcf_contigs) > 5 else "")
    raise InputError(
        f"no contig is shared by FASTA {fasta} ({fasta_names}) and the records of VCF {vcf} ({vcf_names or 'none'}); "
        "they use different naming or assemblies: rename the VCF contigs (bcftools annotate --rename-chrs) "
        "or use a matching FASTA"
    )


def write_contigs(path: str | os.PathLike, rows: Sequence[ContigMatch]) -> None:
    with atomic_outputs(path) as (tmp,), open(tmp, "w") as fh:
        fh.write("\t".join(CONTIG_COLUMNS) + "\n")
        for r in rows:
            fh.write(f"{r.fasta_contig}\t{r.vcf_contig}\t{r.length}\t{r.match}\n")


def read_contigs(path: str | os.PathLike) -> list[ContigMatch]:
    rows = []
    with open(path) as fh:
        header = fh.readline().rstrip("\n").split("\t")
        if tuple(header) != CONTIG_COLUMNS:
            raise InputError(f"{path} is not a contigs table (expected columns {', '.join(CONTIG_COLUMNS)})")
        for line in fh:
            f, v, n, m = line.rstrip("\n").split("\t")
            rows.append(ContigMatch(f, v, int(n), m))
    return rows


# --- staging -----------------------------------------------------------------


@dataclass(frozen=True)
class StagedReference:
    """Where the staged FASTA, VCF and their indexes live under ``results/reference``."""

    fasta: Path
    fai: Path
    gzi: Path | None
    vcf: Path
    vcf_index: Path
    contigs: Path

    def outputs(self) -> dict[str, str]:
        out = {"fasta": self.fasta, "fai": self.fai, "vcf": self.vcf, "vcf_index": self.vcf_index}
        if self.gzi is not None:
            out["gzi"] = self.gzi
        out["contigs"] = self.contigs
        return {k: str(v) for k, v in out.items()}


def staged_layout(fasta_src: str, vcf_src: str, outdir: str | os.PathLike = "results/reference") -> StagedReference:
    """Decide staged file names from the sources (cheap: reads a few bytes).

    Runs when Snakemake parses the workflow, so it must not fail on a missing
    or malformed source; those get their one-line error when the rule runs.
    """
    outdir = Path(outdir)
    fasta_bgzf = _quiet_sniff(fasta_src) == "bgzf"
    fasta = outdir / ("reference.fa.gz" if fasta_bgzf else "reference.fa")
    is_bcf = False
    if _quiet_sniff(vcf_src) == "bgzf":
        try:
            with gzip.open(vcf_src, "rb") as fh:
                is_bcf = fh.read(3) == b"BCF"
        except (OSError, EOFError):
            pass
    vcf = outdir / ("variants.bcf" if is_bcf else "variants.vcf.gz")
    if os.path.exists(f"{vcf_src}.csi") or (is_bcf and not os.path.exists(f"{vcf_src}.tbi")):
        index_suffix = ".csi"
    else:
        index_suffix = ".tbi"
    return StagedReference(
        fasta=fasta,
        fai=Path(f"{fasta}.fai"),
        gzi=Path(f"{fasta}.gzi") if fasta_bgzf else None,
        vcf=vcf,
        vcf_index=Path(f"{vcf}{index_suffix}"),
        contigs=outdir / "contigs.tsv",
    )


def _quiet_sniff(path: str) -> str:
    try:
        return sniff_compression(path)
    except OSError:
        return "none"


def _symlink(src: str | os.PathLike, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.is_symlink() or dst.exists():
        dst.unlink()
    dst.symlink_to(Path(src).resolve())


@contextmanager
def captured_htslib_stderr() -> Iterator[list[str]]:
    """Collect what htslib writes to file descriptor 2 so it can go into our one-line error."""
    lines: list[str] = []
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            lines.extend(tmp.read().decode(errors="replace").splitlines())


def _htslib_errors(lines: Sequence[str]) -> list[str]:
    return [line for line in lines if line.startswith("[E::")]


def _htslib_reason(lines: Sequence[str]) -> str:
    messages = [line.split("] ", 1)[-1] for line in lines if line.strip()]
    return f" (htslib: {messages[0]})" if messages else ""


@contextmanager
def htslib_errors_are_fatal(source: str, advice: str) -> Iterator[None]:
    """Turn htslib's ``[E::`` lines printed while reading ``source`` into one :class:`InputError`.

    On a damaged block or an index that does not match its file htslib prints
    an error and ends the iteration as if the data had ended, so a stage would
    go on with part of the file. Its other lines (warnings) go to our log, and
    what is not htslib's (our own console logging, captured along) goes back
    to stderr.
    """
    failure: Exception | None = None
    with captured_htslib_stderr() as lines:
        try:
            yield
        except Exception as exc:  # re-raised below unless htslib said why it happened
            failure = exc
    for line in lines:
        if line.startswith(("[E::", "[W::")):
            log.warning("htslib, reading %s: %s", source, line)
        else:
            os.write(2, (line + "\n").encode())
    errors = _htslib_errors(lines)
    if errors and (failure is None or isinstance(failure, (InputError, OSError, ValueError))):
        reason = errors[0].split("] ", 1)[-1]
        raise InputError(f"reading {source} failed (htslib: {reason}); {advice}") from None
    if failure is not None:
        raise failure


# --- index freshness -----------------------------------------------------------
#
# An index left beside a rewritten file still opens, and htslib then returns
# whatever sits at the old offsets (or stops with an error on the console), so
# an existing index is used only when it is not older than its file (htslib's
# own test, which it only warns about) and a cheap probe of the file at the
# index's offsets agrees with it. Otherwise a new one is built under
# results/reference/, never beside the user's file.

# Headers and the whitespace after the last sequence are read whole; more than
# this means the index's offsets point elsewhere.
_PROBE_BYTES = 1 << 16


def _older(index: str, data: str) -> bool:
    return os.stat(index).st_mtime_ns < os.stat(data).st_mtime_ns


class _FastaBytes:
    """Bytes of a FASTA at uncompressed offsets (the coordinates of a ``.fai``).

    pysam offers no seek by uncompressed offset, so for BGZF the ``.gzi``
    (a count, then compressed/uncompressed offset pairs of block starts) picks
    the block and htslib reads from there.
    """

    def __init__(self, path: str, gzi: str | None) -> None:
        self._bgzf: pysam.libcbgzf.BGZFile | None = None
        if gzi is None:
            self._plain = open(path, "rb")
            return
        data = Path(gzi).read_bytes()
        (n,) = struct.unpack_from("<Q", data)
        if len(data) != 8 + 16 * n:
            raise ValueError(f"{gzi} is not a .gzi block index")
        pairs = struct.unpack_from(f"<{2 * n}Q", data, 8)
        self._blocks = [(0, 0), *zip(pairs[0::2], pairs[1::2], strict=True)]
        self._starts = [u for _, u in self._blocks]
        self._bgzf = pysam.libcbgzf.BGZFile(path, "rb")

    def read(self, offset: int, size: int) -> bytes:
        if self._bgzf is None:
            self._plain.seek(offset)
            return self._plain.read(size)
        compressed, start = self._blocks[bisect.bisect_right(self._starts, offset) - 1]
        if offset - start >= 1 << 16:  # a BGZF block holds at most 64 KiB
            raise ValueError(f"the .gzi has no block for offset {offset}")
        self._bgzf.seek((compressed << 16) | (offset - start))
        return self._bgzf.read(size)

    def close(self) -> None:
        if self._bgzf is None:
            self._plain.close()
        else:
            self._bgzf.close()


def _read_fai(path: str) -> list[tuple[str, int, int, int, int]]:
    entries = []
    with open(path) as fh:
        for lineno, line in enumerate(fh, 1):
            fields = line.rstrip("\n").split("\t")
            try:
                name, (length, offset, linebases, linewidth) = fields[0], map(int, fields[1:5])
            except ValueError:
                raise ValueError(f"line {lineno} is not a .fai line") from None
            if length > 0 and not 0 < linebases <= linewidth:
                raise ValueError(f"line {lineno} has line lengths {linebases}/{linewidth}")
            entries.append((name, length, offset, linebases, linewidth))
    if not entries:
        raise ValueError("it lists no sequence")
    return sorted(entries, key=lambda e: e[2])


def _fai_layout_mismatch(entries: Sequence[tuple[str, int, int, int, int]], data: _FastaBytes) -> str:
    cursor = 0
    for name, length, offset, linebases, linewidth in entries:
        if not 0 < offset - cursor <= _PROBE_BYTES:
            return f"sequence {name} does not start at offset {offset}"
        header = data.read(cursor, offset - cursor).lstrip()
        words = header[1:].split(None, 1)
        if header[:1] != b">" or not words or words[0] != name.encode() or header.count(b"\n") != 1:
            return f"no '>{name}' header line ends at offset {offset}"
        if length == 0:
            cursor = offset
            continue
        full, rest = divmod(length, linebases)
        last = offset + (full * linewidth + rest - 1 if rest else (full - 1) * linewidth + linebases - 1)
        tail = data.read(last, 1 + linewidth - linebases)
        if not tail or tail[:1].isspace() or tail[:1] == b">" or not (tail[1:].isspace() or tail[1:] == b""):
            return f"sequence {name} does not end where its length {length} and line layout put it"
        cursor = last + len(tail)
    if data.read(cursor, _PROBE_BYTES).strip():
        return "the file goes on after the last sequence it lists"
    return ""


def fai_mismatch(fasta: str, fai: str, gzi: str | None = None) -> str:
    """Why ``fai`` (with ``gzi`` for a bgzipped FASTA) does not describe ``fasta``; ``""`` if it does.

    Every header must end right before its sequence's offset, and each
    sequence must end, by its length and line layout, where the next header
    (or the file) begins: a re-wrapped or edited FASTA fails this. It reads a
    few bytes per sequence, nothing like the cost of indexing.
    """
    try:
        entries = _read_fai(fai)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return f"{fai} cannot be read ({exc})"
    reason = ""
    with captured_htslib_stderr() as lines:
        try:
            data = _FastaBytes(fasta, gzi)
            try:
                reason = _fai_layout_mismatch(entries, data)
            finally:
                data.close()
        except (OSError, ValueError, struct.error) as exc:
            reason = f"reading it at the index's offsets failed ({exc})"
    errors = _htslib_errors(lines)
    return f"reading it at the index's offsets failed{_htslib_reason(errors)}" if errors else reason


def vcf_index_mismatch(vcf: str, index: str) -> str:
    """Why tabix/CSI ``index`` does not describe ``vcf``; ``""`` if it does.

    Through the index, every contig's first record must be on that contig,
    and the last record of the file's last contig must be followed by the
    end of the file; a rewritten file fails this as soon as its compressed
    blocks moved. About 40 index look-ups, whatever the file's size.
    """
    reason = ""
    with captured_htslib_stderr() as lines:
        try:
            with pysam.VariantFile(vcf, index_filename=index) as vf:
                reason = _vcf_index_probe(vf)
        except (OSError, ValueError) as exc:
            reason = f"reading it through the index failed ({exc})"
    errors = _htslib_errors(lines)
    return f"reading it through the index failed{_htslib_reason(errors)}" if errors else reason


# VCF positions are signed 32-bit; the search for a contig's last record stops there.
_MAX_POS = 2**31 - 1


def _vcf_index_probe(vf: pysam.VariantFile) -> str:
    first: dict[str, tuple[int, int]] = {}  # contig -> (virtual offset after its first record, its start)
    for contig in list(vf.index or ()):
        rec = next(vf.fetch(contig), None)
        if rec is None:
            continue  # a CSI of a BCF lists every header contig, with data or not
        if rec.chrom != contig:
            return f"the index's first record of {contig} is on {rec.chrom}"
        first[contig] = (vf.tell(), rec.start)
    if not first:
        return ""
    last = max(first, key=lambda c: first[c][0])

    def starts_at_or_after(pos: int) -> bool:
        return any(rec.start >= pos for rec in vf.fetch(last, pos))

    lo, hi = first[last][1], first[last][1] + 1
    while hi < _MAX_POS and starts_at_or_after(hi):
        lo, hi = hi, min(_MAX_POS, 2 * hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if starts_at_or_after(mid) else (lo, mid)
    end = None
    for rec in vf.fetch(last, lo):
        if rec.start == lo:
            end = vf.tell()
    if end is None:
        return f"the index loses the record at {last}:{lo + 1}"
    vf.seek(end)
    after = next(vf, None)
    if after is not None:
        return f"the file goes on after the last record the index knows ({after.chrom}:{after.pos} follows)"
    return ""


def _index_problem(data: str, indexes: Sequence[str], mismatch: Callable[[], str]) -> str:
    """Why the existing ``indexes`` of ``data`` cannot be used; ``""`` when they can."""
    missing = [i for i in indexes if not os.path.exists(i)]
    if missing:
        return f"it has no index ({', '.join(missing)})"
    older = [i for i in indexes if _older(i, data)]
    if older:
        return f"its index {older[0]} is older than the file"
    reason = mismatch()
    return f"its index {indexes[0]} does not describe it: {reason}" if reason else ""


def _replace_with_build(staged: Sequence[Path]) -> None:
    """Remove staged index links before htslib writes there: it would write through them into the user's folder."""
    for path in staged:
        path.unlink(missing_ok=True)


def stage_fasta(src: str, layout: StagedReference) -> list[tuple[str, int]]:
    """Symlink the FASTA, reuse its index if it matches or build one, and return ``(contig, length)`` pairs."""
    if not os.path.exists(src):
        raise InputError(f"FASTA {src} does not exist; set reference.fasta to your reference genome")
    compression = sniff_compression(src)
    if compression == "gzip":
        raise InputError(
            f"FASTA {src} is gzip-compressed but not with bgzip, so it cannot be indexed; "
            f"re-compress it: zcat {src} | bgzip -c > reference.fa.gz (or decompress it)"
        )
    if compression == "bgzf":
        check_bgzf_complete(src, "FASTA")
    _symlink(src, layout.fasta)
    gzi = f"{src}.gzi" if layout.gzi is not None else None
    pairs = [(f"{src}.fai", layout.fai)] + ([(gzi, layout.gzi)] if gzi and layout.gzi else [])
    problem = _index_problem(src, [s for s, _ in pairs], lambda: fai_mismatch(src, f"{src}.fai", gzi))
    if not problem:
        for source, staged in pairs:
            _symlink(source, staged)
    else:
        report = log.info if problem.startswith("it has no index") else log.warning
        report(
            "FASTA %s: %s; building a new index at %s (nothing is written beside the FASTA)", src, problem, layout.fai
        )
        _replace_with_build([staged for _, staged in pairs])
        with captured_htslib_stderr() as errs:
            try:
                pysam.faidx(str(layout.fasta))
            except (pysam.SamtoolsError, OSError):
                pass
        if not layout.fai.exists() or layout.fai.stat().st_size == 0:
            raise InputError(f"FASTA {src} could not be indexed{_htslib_reason(errs)}; check that it is a valid FASTA")
    with htslib_errors_are_fatal(f"FASTA {src}", "check that it is a valid FASTA, or re-download it"):
        try:
            with pysam.FastaFile(str(layout.fasta)) as fa:
                contigs = list(zip(fa.references, fa.lengths, strict=True))
        except (OSError, ValueError) as exc:
            raise InputError(
                f"FASTA {src} cannot be read with its index ({exc}); check that it is a valid FASTA"
            ) from None
    if not contigs:
        raise InputError(f"FASTA {src} holds no sequences")
    return contigs


def stage_vcf(src: str, layout: StagedReference) -> str:
    """Symlink the VCF/BCF, reuse its tabix/CSI index if it matches or build one; return ``"vcf"`` or ``"bcf"``."""
    if not os.path.exists(src):
        raise InputError(f"VCF {src} does not exist; set reference.vcf to your dbSNP VCF")
    fmt = vcf_format(src)
    _symlink(src, layout.vcf)
    suffix = layout.vcf_index.suffix
    index = f"{src}{suffix}"
    problem = _index_problem(src, [index], lambda: vcf_index_mismatch(src, index))
    if not problem:
        _symlink(index, layout.vcf_index)
        return fmt
    report = log.info if problem.startswith("it has no index") else log.warning
    report("VCF %s: %s; building a new index at %s (nothing is written beside the VCF)", src, problem, layout.vcf_index)
    _replace_with_build([layout.vcf_index])
    with captured_htslib_stderr() as errs:
        try:
            if fmt == "bcf":
                pysam.bcftools.index("--csi", "-f", str(layout.vcf))
            else:
                pysam.tabix_index(str(layout.vcf), preset="vcf", force=True, csi=suffix == ".csi")
            ok = True
        except (OSError, pysam.SamtoolsError):
            ok = False
    if not ok or not layout.vcf_index.exists():
        layout.vcf_index.unlink(missing_ok=True)
        reason = _htslib_reason(errs)
        bad_line = first_bad_vcf_line(src) if fmt == "vcf" else ""
        if bad_line:
            raise InputError(f"VCF {src} {bad_line}")
        if "nsorted" in reason:
            raise InputError(
                f"VCF {src} is not sorted by position{reason}; sort it: "
                "bcftools sort -Oz -o sorted.vcf.gz <vcf> && tabix -p vcf sorted.vcf.gz"
            )
        raise InputError(f"VCF {src} could not be indexed{reason}; check that it is a valid bgzipped VCF")
    return fmt


def first_bad_vcf_line(path: str | os.PathLike) -> str:
    """Describe the first record line of a bgzipped VCF that cannot be indexed, with its line number.

    Run only after indexing failed: htslib then names no line, and reports a
    POS like ``509x74`` as unsorted (it reads the leading ``509``).
    Returns ``""`` when every line looks right.
    """
    columns = 0
    seen: set[str] = set()
    chrom, pos = "", -1
    with gzip.open(path, "rt", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.startswith("##"):
                continue
            fields = line.rstrip("\r\n").split("\t")
            if line.startswith("#"):
                columns = len(fields)
                continue
            fix = "fix or remove that line and re-run"
            if len(fields) != columns:
                return (
                    f"line {lineno} has {len(fields)} tab-separated columns where the #CHROM header line has "
                    f"{columns}; {fix}"
                )
            if not (fields[1].isascii() and fields[1].isdigit()):
                return f"line {lineno}: POS '{fields[1]}' is not a whole number; {fix}"
            sort = "sort it: bcftools sort -Oz -o sorted.vcf.gz <vcf> && tabix -p vcf sorted.vcf.gz"
            if fields[0] != chrom:
                if fields[0] in seen:
                    return f"is not sorted by position: line {lineno} returns to contig {fields[0]}; {sort}"
                seen.add(chrom)
                chrom, pos = fields[0], -1
            if int(fields[1]) < pos:
                return f"is not sorted by position: line {lineno} has {chrom}:{fields[1]} after {chrom}:{pos}; {sort}"
            pos = int(fields[1])
    return ""


def declared_contigs(path: str | os.PathLike) -> list[str]:
    """Contig IDs declared by ``##contig`` lines, read from the header text itself.

    (htslib adds undeclared contigs it meets in the index to its in-memory
    header, so the parsed header cannot tell what the file declared.)
    """
    names = []
    with gzip.open(path, "rt", errors="replace") as fh:
        if fh.read(3) == "BCF":
            return []
        fh.seek(0)
        for line in fh:
            if not line.startswith("##"):
                break
            if line.startswith("##contig=<"):
                for part in line[len("##contig=<") :].rstrip(">\n").split(","):
                    if part.startswith("ID="):
                        names.append(part[3:])
    return names


def vcf_record_contigs(path: str | os.PathLike, source: str = "") -> list[str]:
    """Contigs that hold records, from the index rather than the header.

    Real VCFs often declare another assembly's contigs in their header.
    ``source`` is the user's file that ``path`` stages, for messages.
    """
    with htslib_errors_are_fatal(f"VCF {source or path}", "re-download it or compress and index it again"):
        with pysam.VariantFile(str(path)) as vf:
            indexed = list(vf.index) if vf.index is not None else []
            # A CSI index of a BCF lists every header contig; keep those with data.
            return [c for c in indexed if next(iter(vf.fetch(c)), None) is not None]


def prepare_reference(fasta: str, vcf: str, layout: StagedReference) -> list[ContigMatch]:
    """Stage both files, map contig names and write ``contigs.tsv``."""
    fasta_contigs = stage_fasta(fasta, layout)
    fmt = stage_vcf(vcf, layout)
    record_contigs = vcf_record_contigs(layout.vcf, vcf)
    header_contigs = declared_contigs(layout.vcf) if fmt == "vcf" else record_contigs
    undeclared = [c for c in record_contigs if c not in set(header_contigs)]
    if undeclared:
        log.warning(
            "VCF %s: the header declares %d contigs but records use undeclared contigs %s; "
            "contig names are taken from the index",
            vcf,
            len(header_contigs),
            ", ".join(undeclared[:10]),
        )
    rows = match_contigs(fasta_contigs, record_contigs)
    require_shared(rows, fasta=fasta, vcf=vcf, vcf_contigs=record_contigs)
    for r in rows:
        if r.match not in ("identical", "none"):
            log.info("contig %s in the FASTA is %s in the VCF (%s)", r.fasta_contig, r.vcf_contig, r.match)
    shared = sum(1 for r in rows if r.vcf_contig)
    log.info("%d of %d FASTA contigs have VCF records", shared, len(rows))
    write_contigs(layout.contigs, rows)
    return rows
