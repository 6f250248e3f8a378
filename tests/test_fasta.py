"""read_fasta: the one FASTA reader of the workflow and its tests."""

import pytest
from gfm_audit.errors import InputError
from gfm_audit.fasta import read_fasta
from gfm_audit.outputs import write_fasta


def test_read_fasta_keeps_file_order_and_reads_back_what_write_fasta_wrote(tmp_path):
    records = [("w2", "chr1:0-8", "ACGTACGT"), ("w10", "", "TTTT"), ("w1", "x y", "GGCC")]
    write_fasta(tmp_path / "a.fa", records)
    got = read_fasta(tmp_path / "a.fa")
    assert list(got.items()) == [("w2", "ACGTACGT"), ("w10", "TTTT"), ("w1", "GGCC")]  # not sorted by name
    assert list(read_fasta(str(tmp_path / "a.fa"), keep={"w1", "w2", "absent"})) == ["w2", "w1"]


def test_read_fasta_refuses_a_duplicate_name_instead_of_keeping_the_last(tmp_path):
    (tmp_path / "d.fa").write_text(">w1\nACGT\n>w2\nCCCC\n>w1\nTTTT\n")
    with pytest.raises(InputError, match=r"d.fa has two records named w1"):
        read_fasta(tmp_path / "d.fa")
    # A duplicate outside ``keep`` is not this reader's concern: the kept records are whole.
    assert read_fasta(tmp_path / "d.fa", keep={"w2"}) == {"w2": "CCCC"}
