"""Membership ground truth: seeded splits and BED labels."""

import numpy as np
import pandas as pd
import pytest
from gfm_audit.errors import InputError
from gfm_audit.privacy.membership import finetune_split, region_labels
from gfm_audit.privacy.reference import ContigMatch

CONTIGS = [ContigMatch("chr1", "1", 100_000, "chr_prefix"), ContigMatch("chr2", "2", 100_000, "chr_prefix")]


def test_finetune_split_has_exact_halves_and_is_seeded():
    ids = [f"w{i:03d}" for i in range(101)]
    table = finetune_split(ids, member_fraction=0.5, n_references=3, seed=7)
    assert list(table.columns) == ["window_id", "target_member", "ref_0_member", "ref_1_member", "ref_2_member"]
    assert table.target_member.sum() == 50  # round(101 * 0.5) = 50 (banker's rounding)
    assert all(table[f"ref_{k}_member"].sum() == 50 for k in range(3))
    assert table.equals(finetune_split(ids, member_fraction=0.5, n_references=3, seed=7))
    assert not table.target_member.equals(
        finetune_split(ids, member_fraction=0.5, n_references=3, seed=8).target_member
    )


def test_adding_reference_models_keeps_the_target_split():
    ids = [f"w{i}" for i in range(60)]
    a, b = (
        finetune_split(ids, member_fraction=0.5, n_references=2, seed=0),
        finetune_split(ids, member_fraction=0.5, n_references=6, seed=0),
    )
    assert a.target_member.equals(b.target_member) and a.ref_1_member.equals(b.ref_1_member)


def test_each_window_is_in_for_about_half_of_many_reference_models():
    table = finetune_split([f"w{i}" for i in range(200)], member_fraction=0.5, n_references=64, seed=1)
    share = table.filter(like="ref_").mean(axis=1)
    # Binomial(64, 0.5) / 64 has sd 0.0625; 5 sd either side.
    assert share.between(0.5 - 0.32, 0.5 + 0.32).all() and abs(share.mean() - 0.5) < 1e-9
    assert not np.allclose(table.ref_0_member, table.ref_1_member)


def test_a_fraction_that_leaves_no_non_members_is_refused():
    with pytest.raises(InputError, match="no members or no non-members"):
        finetune_split(["a", "b"], member_fraction=0.9, n_references=0, seed=0)


def _windows():
    return pd.DataFrame(
        {
            "window_id": ["w0", "w1", "w2", "w3"],
            "chrom": ["chr1", "chr1", "chr2", "chr2"],
            "start": [0, 5_000, 0, 9_000],
            "end": [1_000, 6_000, 1_000, 10_000],
        }
    )


def test_region_labels_follow_bed_overlap_in_either_naming(tmp_path):
    member, non = tmp_path / "m.bed", tmp_path / "n.bed"
    member.write_text("1\t900\t950\n")  # VCF naming, overlaps w0 only
    non.write_text("chr1\t5999\t7000\nchr2\t0\t10\n")  # overlaps w1 (last base) and w2
    table, dropped = region_labels(_windows(), member_bed=str(member), nonmember_bed=str(non), contigs=CONTIGS)
    assert table.to_dict("list") == {"window_id": ["w0", "w1", "w2"], "target_member": [1, 0, 0]}
    assert dropped == 1


def test_window_in_both_bed_files_is_an_error(tmp_path):
    member, non = tmp_path / "m.bed", tmp_path / "n.bed"
    member.write_text("chr1\t0\t100\n")
    non.write_text("chr1\t500\t600\nchr2\t0\t10\n")
    with pytest.raises(InputError, match="w0 overlap both"):
        region_labels(_windows(), member_bed=str(member), nonmember_bed=str(non), contigs=CONTIGS)


def test_bed_contig_absent_from_the_fasta_is_named(tmp_path):
    member, non = tmp_path / "m.bed", tmp_path / "n.bed"
    member.write_text("chr1\t0\t100\n")
    non.write_text("chr1\t5000\t5100\nchrUn_KI270302v1\t0\t10\n")
    with pytest.raises(InputError, match=r"n.bed line 2: contig 'chrUn_KI270302v1' is not in the FASTA"):
        region_labels(_windows(), member_bed=str(member), nonmember_bed=str(non), contigs=CONTIGS)
