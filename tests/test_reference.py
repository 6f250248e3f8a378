"""prepare_reference: file checks, indexes built under results, contig naming."""

import gzip
import logging
import os
import re

import pysam
import pysam.bcftools
import pytest
from conftest import (
    DEMO_FASTA,
    DEMO_VCF,
    demo_sequence,
    rename_records,
    run_prepare,
    write_fasta,
    write_vcf,
)
from gfm_audit.errors import InputError
from gfm_audit.privacy.reference import (
    ContigMatch,
    contig_key,
    match_contigs,
    read_contigs,
    sniff_compression,
)


@pytest.mark.parametrize(
    ("name", "key"),
    [("chr20", "20"), ("20", "20"), ("Chr20", "20"), ("chrM", "MT"), ("MT", "MT"), ("M", "MT"), ("chrX", "X")],
)
def test_contig_key_drops_chr_prefix_and_aliases_mitochondrion(name, key):
    assert contig_key(name) == key


def test_match_contigs_prefers_identical_then_chr_prefix_then_mito_alias():
    rows = match_contigs([("chr20", 100), ("chrM", 16), ("z", 5), ("chrUn_x", 7)], ["20", "MT", "z", "9"])
    assert rows == [
        ContigMatch("chr20", "20", 100, "chr_prefix"),
        ContigMatch("chrM", "MT", 16, "mito_alias"),
        ContigMatch("z", "z", 5, "identical"),
        ContigMatch("chrUn_x", "", 7, "none"),
    ]


def test_demo_contigs_come_from_records_not_from_the_header(tmp_path, caplog):
    # The demo VCF header declares b37 contigs 1..22,X,Y but its records are on 'z'.
    with caplog.at_level(logging.WARNING):
        layout = run_prepare(tmp_path, DEMO_FASTA, DEMO_VCF)
    assert read_contigs(layout.contigs) == [ContigMatch("z", "z", 1_000_000, "identical")]
    assert "undeclared contigs z" in caplog.text


def test_chr_prefixed_fasta_maps_to_plain_vcf_names(tmp_path, demo_lines):
    header, records = demo_lines
    records = rename_records(records[:200], "20")
    fasta = write_fasta(tmp_path / "ref.fa", {"chr20": demo_sequence(0, 20_000)})
    vcf = write_vcf(tmp_path / "v.vcf.gz", header, records)
    layout = run_prepare(tmp_path, fasta, vcf)
    assert read_contigs(layout.contigs) == [ContigMatch("chr20", "20", 20_000, "chr_prefix")]


def test_no_shared_contig_fails_naming_both_files(tmp_path, demo_lines):
    header, records = demo_lines
    fasta = write_fasta(tmp_path / "other.fa", {"chr21": demo_sequence(0, 5_000)})
    vcf = write_vcf(tmp_path / "v.vcf.gz", header, rename_records(records[:50], "chr20"))
    with pytest.raises(InputError) as err:
        run_prepare(tmp_path, fasta, vcf)
    message = str(err.value)
    assert "no contig is shared" in message and "other.fa" in message and "v.vcf.gz" in message
    assert "chr21" in message and "chr20" in message


def test_plain_text_vcf_is_rejected_with_the_bgzip_command(tmp_path, demo_lines):
    header, records = demo_lines
    vcf = write_vcf(tmp_path / "v.vcf", header, records[:20], bgzip=False)
    with pytest.raises(InputError, match=r"v\.vcf is not bgzip-compressed; compress and index it: bgzip"):
        run_prepare(tmp_path, DEMO_FASTA, vcf)


def test_gzip_that_is_not_bgzip_is_rejected(tmp_path, demo_lines):
    header, records = demo_lines
    path = tmp_path / "v.vcf.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(header + records[:20]) + "\n")
    assert sniff_compression(path) == "gzip"
    with pytest.raises(InputError, match="gzip-compressed but not with bgzip"):
        run_prepare(tmp_path, DEMO_FASTA, path)


def test_unindexed_vcf_gets_its_index_under_results_not_beside_the_source(tmp_path, demo_lines):
    header, records = demo_lines
    src = tmp_path / "src"
    src.mkdir()
    vcf = write_vcf(src / "v.vcf.gz", header, records[:300], index=False)
    os.chmod(src, 0o555)  # a read-only reference directory, as on a shared cluster
    try:
        layout = run_prepare(tmp_path, DEMO_FASTA, vcf)
    finally:
        os.chmod(src, 0o755)
    assert sorted(p.name for p in src.iterdir()) == ["v.vcf.gz"]
    assert layout.vcf_index.exists() and layout.vcf_index.parent == tmp_path / "reference"
    with pysam.VariantFile(str(layout.vcf)) as vf:
        assert sum(1 for _ in vf.fetch("z")) == 300


def test_unsorted_vcf_fails_saying_how_to_sort(tmp_path, demo_lines):
    header, records = demo_lines
    records = records[:50]
    records[10], records[30] = records[30], records[10]
    vcf = write_vcf(tmp_path / "v.vcf.gz", header, records, index=False)
    with pytest.raises(InputError) as err:
        run_prepare(tmp_path, DEMO_FASTA, vcf)
    assert "is not sorted by position" in str(err.value) and "bcftools sort" in str(err.value)
    assert not (tmp_path / "reference" / "variants.vcf.gz.tbi").exists()


def test_truncated_bgzip_vcf_fails_clearly(tmp_path):
    data = DEMO_VCF.read_bytes()
    vcf = tmp_path / "cut.vcf.gz"
    vcf.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cut\.vcf\.gz is truncated: its bgzip end-of-file block is missing"):
        run_prepare(tmp_path, DEMO_FASTA, vcf)


def test_truncated_bgzip_fasta_fails_clearly(tmp_path):
    plain = write_fasta(tmp_path / "ref.fa", {"z": demo_sequence(0, 200_000)}, index=False)
    pysam.tabix_compress(str(plain), str(tmp_path / "ref.fa.gz"))
    data = (tmp_path / "ref.fa.gz").read_bytes()
    cut = tmp_path / "cut.fa.gz"
    cut.write_bytes(data[:-1000])
    with pytest.raises(InputError, match=r"FASTA .*cut\.fa\.gz is truncated"):
        run_prepare(tmp_path, cut, DEMO_VCF)


def test_bgzipped_fasta_without_index_is_indexed_and_read(tmp_path):
    plain = write_fasta(tmp_path / "ref.fa", {"z": demo_sequence(0, 50_000)}, index=False)
    pysam.tabix_compress(str(plain), str(tmp_path / "ref.fa.gz"))
    layout = run_prepare(tmp_path, tmp_path / "ref.fa.gz", DEMO_VCF)
    assert layout.fasta.name == "reference.fa.gz" and layout.gzi is not None and layout.gzi.exists()
    with pysam.FastaFile(str(layout.fasta)) as fa:
        assert fa.fetch("z", 1000, 1100) == demo_sequence(1000, 1100)


def test_plain_fasta_without_fai_gets_one_under_results(tmp_path):
    fasta = write_fasta(tmp_path / "ref.fa", {"z": demo_sequence(0, 30_000)}, index=False)
    layout = run_prepare(tmp_path, fasta, DEMO_VCF)
    assert not (tmp_path / "ref.fa.fai").exists()
    assert layout.fai.read_text().split("\t")[:2] == ["z", "30000"]


def test_bcf_input_is_staged_with_a_csi_index(tmp_path):
    bcf = tmp_path / "v.bcf"
    pysam.bcftools.view("-Ob", "-o", str(bcf), str(DEMO_VCF), catch_stdout=False)
    layout = run_prepare(tmp_path, DEMO_FASTA, bcf)
    assert layout.vcf.name == "variants.bcf" and layout.vcf_index.name == "variants.bcf.csi"
    assert read_contigs(layout.contigs)[0].vcf_contig == "z"


def test_missing_fasta_is_named(tmp_path):
    with pytest.raises(InputError, match=r"FASTA .*nope\.fa does not exist"):
        run_prepare(tmp_path, tmp_path / "nope.fa", DEMO_VCF)


def _set_mtime(path, reference, *, seconds_after: int) -> None:
    """Put ``path``'s mtime ``seconds_after`` seconds after ``reference``'s (negative: before)."""
    ns = os.stat(reference).st_mtime_ns + seconds_after * 1_000_000_000
    os.utime(path, ns=(ns, ns))


@pytest.mark.parametrize(
    ("index_age", "logged"),
    [(-60, "is older than the file"), (60, "does not describe it")],
    ids=["index-older", "index-newer"],
)
def test_vcf_rewritten_beside_its_old_tbi_is_read_through_a_new_index(tmp_path, demo_lines, caplog, index_age, logged):
    header, records = demo_lines
    src = tmp_path / "src"
    src.mkdir()
    vcf = write_vcf(src / "v.vcf.gz", header, records)
    layout = run_prepare(tmp_path, DEMO_FASTA, vcf)
    assert layout.vcf_index.is_symlink()  # a matching index is reused, not rebuilt
    old_tbi = (src / "v.vcf.gz.tbi").read_bytes()
    added = records[:14_000] + [r for r in records[14_000:14_006] for _ in (1, 2)] + records[14_006:]  # 6 more
    write_vcf(vcf, header, added, index=False)
    _set_mtime(src / "v.vcf.gz.tbi", vcf, seconds_after=index_age)
    with caplog.at_level(logging.WARNING):
        layout = run_prepare(tmp_path, DEMO_FASTA, vcf)
    assert logged in caplog.text and "building a new index" in caplog.text
    assert not layout.vcf_index.is_symlink() and (src / "v.vcf.gz.tbi").read_bytes() == old_tbi
    with pysam.VariantFile(str(layout.vcf)) as vf:
        assert sum(1 for _ in vf.fetch("z")) == len(added)


@pytest.mark.parametrize(
    ("index_age", "logged"),
    [(-60, "is older than the file"), (60, "does not describe it")],
    ids=["index-older", "index-newer"],
)
def test_fasta_rewrapped_beside_its_old_fai_is_read_through_a_new_index(tmp_path, caplog, index_age, logged):
    seq = demo_sequence(0, 60_000)
    src = tmp_path / "src"
    src.mkdir()
    fasta = write_fasta(src / "ref.fa", {"z": seq}, width=60)
    old_fai = (src / "ref.fa.fai").read_text()
    write_fasta(fasta, {"z": seq}, index=False, width=80)
    _set_mtime(src / "ref.fa.fai", fasta, seconds_after=index_age)
    with caplog.at_level(logging.WARNING):
        layout = run_prepare(tmp_path, fasta, DEMO_VCF)
    assert logged in caplog.text
    assert not layout.fai.is_symlink() and (src / "ref.fa.fai").read_text() == old_fai
    with pysam.FastaFile(str(layout.fasta)) as fa:
        assert fa.fetch("z", 59_000, 60_000) == seq[59_000:60_000]


def test_bgzipped_fasta_recompressed_beside_its_old_fai_and_gzi_gets_new_ones(tmp_path, caplog):
    seq = demo_sequence(0, 200_000)
    src = tmp_path / "src"
    src.mkdir()
    plain = write_fasta(tmp_path / "ref.fa", {"z": seq[:90_000], "y": seq[90_000:]}, index=False)
    pysam.tabix_compress(str(plain), str(src / "ref.fa.gz"))
    pysam.faidx(str(src / "ref.fa.gz"))
    write_fasta(plain, {"z": seq[:90_000], "y": seq[90_000:]}, index=False, width=80)
    pysam.tabix_compress(str(plain), str(src / "ref.fa.gz"), force=True)
    for index in ("ref.fa.gz.fai", "ref.fa.gz.gzi"):
        _set_mtime(src / index, src / "ref.fa.gz", seconds_after=60)
    with caplog.at_level(logging.WARNING):
        layout = run_prepare(tmp_path, src / "ref.fa.gz", DEMO_VCF)
    assert "does not describe it" in caplog.text
    assert not layout.fai.is_symlink() and not layout.gzi.is_symlink()
    with pysam.FastaFile(str(layout.fasta)) as fa:
        assert fa.fetch("y", 100_000, 110_000) == seq[190_000:200_000]


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (lambda f: [f[0], f[1][:3] + "x" + f[1][3:], *f[2:]], r"POS '\d{3}x\d+' is not a whole number"),
        (lambda f: [f[0]], r"has 1 tab-separated columns where the #CHROM header line has 8"),
    ],
    ids=["non-numeric-pos", "one-column"],
)
def test_vcf_line_that_cannot_be_indexed_is_named_by_its_line_number(tmp_path, demo_lines, broken, message):
    header, records = demo_lines
    records = records[:3000]
    records[1500] = "\t".join(broken(records[1500].split("\t")))
    vcf = write_vcf(tmp_path / "v.vcf.gz", header, records, index=False)
    with pytest.raises(InputError) as err:
        run_prepare(tmp_path, DEMO_FASTA, vcf)
    text = str(err.value)
    assert f"v.vcf.gz line {len(header) + 1501}" in text and "fix or remove that line" in text
    assert re.search(message, text) and "sorted" not in text
