"""select_windows: placement, sequences and SNVs, checked against independent counts."""

import gzip
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pysam
import pytest
from conftest import (
    DEMO_FASTA,
    DEMO_VCF,
    WINDOW_PARAMS,
    demo_sequence,
    demo_vcf_lines,
    run_prepare,
    run_windows,
    write_fasta,
    write_vcf,
)
from gfm_audit.errors import InputError
from gfm_audit.fasta import read_fasta
from gfm_audit.privacy.reference import match_contigs
from gfm_audit.privacy.windows import (
    SNP_COLUMNS,
    WINDOW_COLUMNS,
    alt_frequencies,
    ambiguous_fraction,
    gc_fraction,
    place_fixed,
    place_random,
    read_bed,
    resolve_chromosomes,
    select_windows,
)


def _tables(out):
    windows = pd.read_csv(out / "windows.tsv", sep="\t")
    snps = pd.read_csv(out / "snps.tsv.gz", sep="\t", dtype={"af": str, "alt": str}, keep_default_na=False)
    fasta = read_fasta(out / "windows.fa")
    return windows, snps, fasta


def test_sequence_statistics_by_hand():
    assert gc_fraction("ACGTNN") == pytest.approx(2 / 4)
    assert gc_fraction("acgtgg") == pytest.approx(4 / 6)
    assert gc_fraction("NNNN") == 0.0
    assert ambiguous_fraction("ACGTNR") == pytest.approx(2 / 6)
    assert ambiguous_fraction("acgt") == 0.0


def test_fixed_windows_sit_at_slot_centres():
    # 10 kb, 5 windows of 100 bp: slots of 2000, each window centred in its slot.
    starts = place_fixed([("a", 10_000)], 5, 100, is_valid=lambda c, s: True)
    assert starts == [("a", 950), ("a", 2950), ("a", 4950), ("a", 6950), ("a", 8950)]


def test_fixed_windows_span_several_contigs_in_proportion_to_length():
    starts = place_fixed([("a", 6_000), ("b", 4_000)], 5, 100, is_valid=lambda c, s: True)
    assert [c for c, _ in starts].count("a") == 3 and [c for c, _ in starts].count("b") == 2


def test_fixed_windows_step_off_n_runs_and_refill_from_neighboring_slots():
    seq = np.array(list("A" * 10_000))
    seq[1_500:4_200] = "N"  # slot 0 partly, slot 1 [2000, 4000) entirely
    valid = lambda c, s: not (seq[s : s + 100] == "N").any()  # noqa: E731
    starts = place_fixed([("a", 10_000)], 5, 100, is_valid=valid)
    assert len(starts) == 5
    assert all(valid("a", s) for _, s in starts)
    ordered = sorted(s for _, s in starts)
    assert all(b - a >= 100 for a, b in zip(ordered, ordered[1:], strict=False))
    assert place_fixed([("a", 10_000)], 5, 100, is_valid=valid) == starts  # deterministic


def test_fixed_windows_fail_clearly_when_too_few_positions_are_clean():
    with pytest.raises(InputError, match="pass windows.max_n_fraction"):
        place_fixed([("a", 1_000)], 5, 100, is_valid=lambda c, s: s < 150)


def test_random_windows_are_seeded_and_do_not_overlap():
    a = place_random([("a", 50_000), ("b", 20_000)], 30, 500, seed=7, is_valid=lambda c, s: True)
    assert a == place_random([("a", 50_000), ("b", 20_000)], 30, 500, seed=7, is_valid=lambda c, s: True)
    assert a != place_random([("a", 50_000), ("b", 20_000)], 30, 500, seed=8, is_valid=lambda c, s: True)
    for contig in "ab":
        s = sorted(x for c, x in a if c == contig)
        assert all(y - x >= 500 for x, y in zip(s, s[1:], strict=False))


def test_snvs_in_windows_match_an_independent_pysam_count(tmp_path):
    _, out, counts = run_windows(tmp_path, DEMO_FASTA, DEMO_VCF, n=25, length=2000)
    windows, snps, fasta = _tables(out)
    assert tuple(windows.columns) == WINDOW_COLUMNS and tuple(snps.columns) == SNP_COLUMNS
    with pysam.VariantFile(str(DEMO_VCF)) as vf, pysam.FastaFile(str(DEMO_FASTA)) as fa:
        for w in windows.itertuples():
            expected = {}
            for rec in vf.fetch("z", w.start, w.end):
                snv_alts = [a for a in rec.alts or () if len(a) == 1 and a in "ACGT"]
                if len(rec.ref) == 1 and snv_alts:
                    expected.setdefault(rec.pos, []).extend(a for a in snv_alts if a not in expected.get(rec.pos, []))
            got = snps[snps.window_id == w.window_id]
            assert w.n_snps == len(expected) == len(got)
            assert got.pos.tolist() == sorted(expected)
            assert [a.split(",") for a in got.alt] == [expected[p] for p in sorted(expected)]
            assert (got.offset == got.pos - 1 - w.start).all()
            assert fasta[w.window_id] == fa.fetch("z", w.start, w.end).upper()
            assert w.snp_fraction == pytest.approx(len(expected) / 2000, abs=1e-6)
            assert w.gc_fraction == pytest.approx(gc_fraction(fasta[w.window_id]), abs=1e-6)
            seq = fasta[w.window_id]
            assert all(seq[o] == r for o, r in zip(got.offset, got.ref, strict=True))
    assert counts["indel"] > 0  # the demo has indels; they are counted, not kept


def test_af_is_taken_per_alt_from_info(tmp_path):
    _, out, _ = run_windows(tmp_path, DEMO_FASTA, DEMO_VCF, n=5, length=2000)
    _, snps, _ = _tables(out)
    row = snps.iloc[0]
    with pysam.VariantFile(str(DEMO_VCF)) as vf:
        rec = next(r for r in vf.fetch("z", row.pos - 1, row.pos) if r.alts == (row.alt,) and r.pos == row.pos)
    assert float(row.af) == pytest.approx(rec.info["AF"][0], rel=1e-5)


def test_alt_frequencies_read_af_then_caf_then_freq():
    assert alt_frequencies({"AF": (0.1, 0.2)}, 2) == [0.1, 0.2]
    assert alt_frequencies({"AF": 0.3}, 1) == [0.3]
    assert alt_frequencies({"CAF": "0.9,0.06,.,"}, 3) == [0.06, None, None]
    assert alt_frequencies({"FREQ": "Korea1K:.,.|1000Genomes:0.7,0.25,0.05"}, 2) == [0.25, 0.05]
    assert alt_frequencies({}, 2) == [None, None]


def test_multiallelic_snvs_keep_every_alt_and_indels_are_skipped_and_counted(tmp_path, demo_lines):
    header = demo_lines[0]
    seq = demo_sequence(0, 5_000)

    def rec(pos, alt, ref=None, rid="."):
        return f"z\t{pos}\t{rid}\t{ref or seq[pos - 1]}\t{alt}\t100\tPASS\tAF={','.join(['0.1'] * len(alt.split(',')))}"

    other = {"A": "C", "C": "G", "G": "T", "T": "A"}
    b = lambda p: other[seq[p - 1]]  # noqa: E731
    c = lambda p: other[b(p)]  # noqa: E731
    records = [
        rec(1_100, f"{b(1_100)},{c(1_100)}"),  # multi-allelic SNV: both alts kept
        rec(1_200, f"{b(1_200)},{seq[1_199]}TT"),  # SNV + insertion: the SNV allele kept
        rec(1_300, f"{seq[1_299]}A"),  # insertion: skipped
        rec(1_400, seq[1_399], ref=seq[1_399:1_402]),  # deletion: skipped
        rec(1_500, b(1_500) + b(1_501), ref=seq[1_499:1_501]),  # MNV: skipped
        rec(1_600, b(1_600), rid="rs1"),
        rec(1_600, c(1_600), rid="rs2"),  # same site twice: merged
    ]
    fasta = write_fasta(tmp_path / "ref.fa", {"z": seq})
    vcf = write_vcf(tmp_path / "v.vcf.gz", header, records)
    _, out, counts = run_windows(tmp_path, fasta, vcf, n=1, length=5_000)
    _, snps, _ = _tables(out)
    assert snps.pos.tolist() == [1_100, 1_200, 1_600]
    assert snps.alt.tolist() == [f"{b(1_100)},{c(1_100)}", b(1_200), f"{b(1_600)},{c(1_600)}"]
    assert snps.id.tolist() == [".", ".", "rs1;rs2"]
    assert counts["indel"] == 2 and counts["mnv"] == 1 and counts["mixed_record_snv_alleles_kept"] == 1


def test_ref_mismatches_over_threshold_fail_naming_the_assembly(tmp_path, small_reference):
    fasta, _, records = small_reference
    header = demo_vcf_lines()[0]
    shifted = []
    for r in records:  # positions shifted by one base, as a wrong-assembly VCF would be
        f = r.split("\t")
        f[1] = str(int(f[1]) + 1)
        shifted.append("\t".join(f))
    vcf = write_vcf(tmp_path / "v.vcf.gz", header, shifted)
    with pytest.raises(InputError) as err:
        run_windows(tmp_path, fasta, vcf, n=5, length=2_000)
    message = str(err.value)
    assert "differ from FASTA" in message and "different assemblies" in message
    assert f"FASTA {os.path.realpath(fasta)} " in message  # the user's file, not results/reference/reference.fa
    # Windows are written while they are read: the failure must remove those temporaries too.
    assert not any((tmp_path / "windows").iterdir())


def test_few_ref_mismatches_are_dropped_and_counted(tmp_path, demo_lines):
    header, records = demo_lines
    records = records[:400]
    f = records[5].split("\t")
    assert len(f[3]) == 1 and len(f[4]) == 1
    f[3] = {"A": "C", "C": "G", "G": "T", "T": "A"}[f[3]]
    records[5] = "\t".join(f)
    records = [r for r in records if int(r.split("\t")[1]) <= 20_000]
    fasta = write_fasta(tmp_path / "ref.fa", {"z": demo_sequence(0, 20_000)})
    vcf = write_vcf(tmp_path / "v.vcf.gz", header, records)
    _, out, counts = run_windows(tmp_path, fasta, vcf, n=1, length=20_000, max_ref_mismatch_fraction=0.05)
    _, snps, _ = _tables(out)
    assert counts["ref_mismatch"] == 1
    assert int(f[1]) not in snps.pos.tolist()


def test_soft_masked_fasta_gives_the_same_windows_upper_cased(tmp_path, small_reference):
    fasta, vcf, _ = small_reference
    seq = demo_sequence(0, 60_000)
    masked = seq[:20_000].lower() + seq[20_000:40_000] + seq[40_000:].lower()
    lower = write_fasta(tmp_path / "lower.fa", {"z": masked})
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _, out_upper, _ = run_windows(tmp_path / "a", fasta, vcf)
    _, out_lower, _ = run_windows(tmp_path / "b", lower, vcf)
    for name in ("windows.tsv", "windows.fa"):
        assert (out_upper / name).read_bytes() == (out_lower / name).read_bytes()
    assert gzip.open(out_upper / "snps.tsv.gz").read() == gzip.open(out_lower / "snps.tsv.gz").read()


def test_n_and_iupac_windows_are_replaced_and_counted_as_ambiguous(tmp_path, small_reference):
    _, vcf, _ = small_reference
    seq = list(demo_sequence(0, 60_000))
    seq[2_000:9_000] = "N" * 7_000  # the first fixed window would start at 2500
    seq[15_000:15_010] = "RYKMSWBDHV"
    fasta = write_fasta(tmp_path / "iupac.fa", {"z": "".join(seq)})
    _, out, _ = run_windows(tmp_path, fasta, vcf, n=10, length=1000)
    _, _, windows_fa = _tables(out)
    assert len(windows_fa) == 10
    assert all(set(s) <= set("ACGT") for s in windows_fa.values())
    # Allowing ambiguous bases keeps the window on the IUPAC stretch and counts them.
    (tmp_path / "loose").mkdir()
    _, out2, counts = run_windows(tmp_path / "loose", fasta, vcf, n=10, length=1000, max_n_fraction=0.02)
    windows, _, windows_fa = _tables(out2)
    assert any("RYKMSWBDHV" in s for s in windows_fa.values())
    assert counts["ambiguous_bases"] == 10


def test_window_longer_than_its_contig_fails(tmp_path, small_reference):
    fasta, vcf, _ = small_reference
    with pytest.raises(InputError, match=r"windows.length=70000 is longer than contig z \(60000 bp\)"):
        run_windows(tmp_path, fasta, vcf, n=1, length=70_000, chromosomes=["z"])


def test_chromosome_absent_from_fasta_fails_naming_it(tmp_path, small_reference):
    fasta, vcf, _ = small_reference
    with pytest.raises(InputError, match=r"chromosome 'chr21' in windows.chromosomes is not in FASTA .*it has: z"):
        run_windows(tmp_path, fasta, vcf, chromosomes=["chr21"])


def test_bed_placement_centres_one_window_per_interval(tmp_path, small_reference):
    fasta, vcf, _ = small_reference
    bed = tmp_path / "regions.bed"
    bed.write_text("track name=x\nz\t10000\t10100\nz\t30000\t32000\nz\t30500\t30600\n")
    _, out, _ = run_windows(tmp_path, fasta, vcf, placement="bed", bed=str(bed), n=10, length=1000)
    windows, _, _ = _tables(out)
    assert list(zip(windows.start, windows.end, strict=True)) == [(9550, 10550), (30500, 31500)]


def test_chromosomes_and_bed_names_resolve_alike_a_fasta_name_first(tmp_path):
    # "1" is one contig's FASTA name and, matched by contig_key, chr1's VCF name: it means the FASTA contig "1".
    contigs = match_contigs([("1", 5000), ("chr1", 5000), ("chr2", 5000)], ["1", "2"])
    chosen = resolve_chromosomes(["1", "chr1", "2", "chr2"], contigs, length=100, fasta="ref.fa")
    bed = tmp_path / "regions.bed"
    bed.write_text("1\t0\t10\nchr1\t0\t10\n2\t0\t10\nchr2\t0\t10\n")
    from_bed = [chrom for chrom, _, _ in read_bed(str(bed), contigs)]
    assert [c.fasta_contig for c in chosen] == from_bed == ["1", "chr1", "chr2", "chr2"]


def test_bed_with_unknown_contig_fails_naming_the_line(tmp_path, small_reference):
    fasta, vcf, _ = small_reference
    bed = tmp_path / "regions.bed"
    bed.write_text("z\t100\t200\nchr7\t100\t200\n")
    with pytest.raises(InputError, match=r"regions.bed line 2: contig 'chr7' is not in the FASTA"):
        run_windows(tmp_path, fasta, vcf, placement="bed", bed=str(bed))


def test_outputs_are_byte_identical_across_runs(tmp_path, small_reference):
    fasta, vcf, _ = small_reference
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _, a, _ = run_windows(tmp_path / "a", fasta, vcf, placement="random", seed=3)
    _, b, _ = run_windows(tmp_path / "b", fasta, vcf, placement="random", seed=3)
    for name in ("windows.tsv", "windows.fa", "snps.tsv.gz"):
        assert (a / name).read_bytes() == (b / name).read_bytes()


def _window_record(records, lo, hi):
    """Index of the first plain SNV record between positions lo and hi."""
    return next(
        i
        for i, r in enumerate(records)
        if lo < int(r.split("\t")[1]) < hi and len(r.split("\t")[3]) == 1 and len(r.split("\t")[4]) == 1
    )


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (lambda f: f[:7], r"has 7 tab-separated columns where the #CHROM header line has 8"),
        (lambda f: f[:3], r"has 3 tab-separated columns where the #CHROM header line has 8"),
        (lambda f: [f[0], f[1] + "x", *f[2:]], r"has POS '\d+x', which is not a whole number"),
    ],
    ids=["no-info", "three-columns", "non-numeric-pos"],
)
def test_malformed_record_line_inside_a_window_stops_naming_it(tmp_path, demo_lines, broken, message):
    header, records = demo_lines
    records = [r for r in records if int(r.split("\t")[1]) <= 20_000]
    i = _window_record(records, 5_000, 15_000)
    f = records[i].split("\t")
    records[i] = "\t".join(broken(f))
    fasta = write_fasta(tmp_path / "ref.fa", {"z": demo_sequence(0, 20_000)})
    vcf = write_vcf(tmp_path / "v.vcf.gz", header, records)  # tabix indexes all three
    with pytest.raises(InputError) as err:
        run_windows(tmp_path, fasta, vcf, n=1, length=20_000)
    text = str(err.value)
    assert re.search(message, text) and f"at z:{f[1]}" in text and str(vcf) in text
    assert not (tmp_path / "windows" / "windows.tsv").exists()


def test_htslib_error_while_reading_the_vcf_stops_the_stage(tmp_path, demo_lines):
    header, records = demo_lines
    layout = run_prepare(tmp_path, DEMO_FASTA, DEMO_VCF)
    # Swap in the index of a slightly different VCF, as a stale index behind htslib's back would be.
    other = write_vcf(tmp_path / "other.vcf.gz", header, records[:14_000] + records[14_010:])
    layout.vcf_index.unlink()
    layout.vcf_index.write_bytes(Path(f"{other}.tbi").read_bytes())
    out = tmp_path / "windows"
    out.mkdir()
    with pytest.raises(InputError, match=r"reading VCF .*z\.vcf\.gz failed \(htslib: .*BGZF"):
        select_windows(
            str(layout.fasta),
            str(layout.vcf),
            str(layout.contigs),
            params={**WINDOW_PARAMS, "n": 50},
            out_tsv=out / "windows.tsv",
            out_fasta=out / "windows.fa",
            out_snps=out / "snps.tsv.gz",
        )
    assert list(out.iterdir()) == []


def test_fasta_errors_name_the_users_fasta_not_the_staged_link(tmp_path, small_reference):
    fasta, vcf, _ = small_reference
    with pytest.raises(InputError) as err:
        run_windows(tmp_path, fasta, vcf, chromosomes=["chr21"])
    assert f"not in FASTA {os.path.realpath(fasta)} " in str(err.value)
    assert "reference.fa" not in str(err.value)


def test_ref_mismatch_stop_names_the_fraction_the_threshold_and_its_config_key(tmp_path, demo_lines):
    header, records = demo_lines
    snvs = [r for r in records if len(r.split("\t")[3]) == 1 and len(r.split("\t")[4]) == 1][:91]
    f = snvs[5].split("\t")
    f[3] = {"A": "C", "C": "G", "G": "T", "T": "A"}[f[3]]
    snvs[5] = "\t".join(f)
    assert int(snvs[-1].split("\t")[1]) <= 20_000
    fasta = write_fasta(tmp_path / "ref.fa", {"z": demo_sequence(0, 20_000)})
    vcf = write_vcf(tmp_path / "v.vcf.gz", header, snvs)
    with pytest.raises(InputError) as err:
        run_windows(tmp_path, fasta, vcf, n=1, length=20_000, max_ref_mismatch_fraction=0.01)
    message = str(err.value)
    assert "1 of 91 " in message and "(1.1%)" in message
    assert "windows.max_ref_mismatch_fraction=0.01" in message
    assert "raise windows.max_ref_mismatch_fraction" in message and "expected" in message
