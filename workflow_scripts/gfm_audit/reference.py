"""Stage 1a: check the reference FASTA and VCF, index them, and map contig names.

Nothing is written next to the user's files (reference directories on a
cluster are often read-only and shared): ``results/reference/`` gets symlinks
to the FASTA and VCF, their existing indexes symlinked beside them, or new
indexes built there when missing.
"""

from __future__ import annotations

import gzip
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pysam
import pysam.bcftools

from .errors import InputError
from .outputs import atomic_outputs

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


def require_shared(rows: Sequence[ContigMatch], fasta: str, vcf: str, vcf_contigs: Sequence[str]) -> None:
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


def _htslib_reason(lines: Sequence[str]) -> str:
    messages = [line.split("] ", 1)[-1] for line in lines if line.strip()]
    return f" (htslib: {messages[0]})" if messages else ""


def stage_fasta(src: str, layout: StagedReference) -> list[tuple[str, int]]:
    """Symlink the FASTA, reuse or build its index, and return ``(contig, length)`` pairs."""
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
    have_index = os.path.exists(f"{src}.fai") and (layout.gzi is None or os.path.exists(f"{src}.gzi"))
    if have_index:
        _symlink(f"{src}.fai", layout.fai)
        if layout.gzi is not None:
            _symlink(f"{src}.gzi", layout.gzi)
    else:
        log.info("FASTA %s has no index; building %s", src, layout.fai)
        with captured_htslib_stderr() as errs:
            try:
                pysam.faidx(str(layout.fasta))
            except (pysam.SamtoolsError, OSError):
                pass
        if not layout.fai.exists() or layout.fai.stat().st_size == 0:
            raise InputError(f"FASTA {src} could not be indexed{_htslib_reason(errs)}; check that it is a valid FASTA")
    try:
        with pysam.FastaFile(str(layout.fasta)) as fa:
            contigs = list(zip(fa.references, fa.lengths, strict=True))
    except (OSError, ValueError) as exc:
        raise InputError(
            f"FASTA {src} cannot be read with its index ({exc}); delete a stale {src}.fai and re-run"
        ) from None
    if not contigs:
        raise InputError(f"FASTA {src} holds no sequences")
    return contigs


def stage_vcf(src: str, layout: StagedReference) -> str:
    """Symlink the VCF/BCF, reuse or build its tabix/CSI index; return ``"vcf"`` or ``"bcf"``."""
    if not os.path.exists(src):
        raise InputError(f"VCF {src} does not exist; set reference.vcf to your dbSNP VCF")
    fmt = vcf_format(src)
    _symlink(src, layout.vcf)
    suffix = layout.vcf_index.suffix
    if os.path.exists(f"{src}{suffix}"):
        _symlink(f"{src}{suffix}", layout.vcf_index)
        return fmt
    log.info("VCF %s has no index; building %s", src, layout.vcf_index)
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
        if "nsorted" in reason:
            raise InputError(
                f"VCF {src} is not sorted by position{reason}; sort it: "
                "bcftools sort -Oz -o sorted.vcf.gz <vcf> && tabix -p vcf sorted.vcf.gz"
            )
        raise InputError(f"VCF {src} could not be indexed{reason}; check that it is a valid bgzipped VCF")
    return fmt


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


def vcf_record_contigs(path: str | os.PathLike) -> list[str]:
    """Contigs that hold records, from the index rather than the header.

    Real VCFs often declare another assembly's contigs in their header.
    """
    with captured_htslib_stderr():
        with pysam.VariantFile(str(path)) as vf:
            indexed = list(vf.index) if vf.index is not None else []
            # A CSI index of a BCF lists every header contig; keep those with data.
            return [c for c in indexed if next(iter(vf.fetch(c)), None) is not None]


def prepare_reference(fasta: str, vcf: str, layout: StagedReference) -> list[ContigMatch]:
    """Stage both files, map contig names and write ``contigs.tsv``."""
    fasta_contigs = stage_fasta(fasta, layout)
    fmt = stage_vcf(vcf, layout)
    record_contigs = vcf_record_contigs(layout.vcf)
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
    require_shared(rows, fasta, vcf, record_contigs)
    for r in rows:
        if r.match not in ("identical", "none"):
            log.info("contig %s in the FASTA is %s in the VCF (%s)", r.fasta_contig, r.vcf_contig, r.match)
    shared = sum(1 for r in rows if r.vcf_contig)
    log.info("%d of %d FASTA contigs have VCF records", shared, len(rows))
    write_contigs(layout.contigs, rows)
    return rows
