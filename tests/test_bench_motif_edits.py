"""benchmarks/motif_edits.py: k-mer indexing, reverse-complement canonical forms, enrichment and the
destroyed / created counts on hand-made sequences whose answers are worked out by hand."""

import importlib.util
import math

import numpy as np
import pandas as pd
from conftest import REPO

spec = importlib.util.spec_from_file_location("motif_edits", REPO / "benchmarks" / "motif_edits.py")
motif = importlib.util.module_from_spec(spec)
spec.loader.exec_module(motif)

CODE = {"A": 0, "C": 1, "G": 2, "T": 3}


def _codes(*sequences: str) -> np.ndarray:
    return np.array([[CODE[b] for b in s] for s in sequences])


def test_kmer_codes_are_base_four_indices_of_each_window():
    # AC = 0*4+1, CG = 1*4+2, GT = 2*4+3
    assert motif.kmer_codes(_codes("ACGT"), 2).tolist() == [[1, 6, 11]]


def test_a_kmer_and_its_reverse_complement_share_one_canonical_index():
    aac, gtt = motif.kmer_codes(_codes("AAC", "GTT"), 3)[:, 0]
    assert (aac, gtt) == (1, 2 * 16 + 3 * 4 + 3)
    assert motif.canonical(np.array([aac, gtt]), 3).tolist() == [1, 1]
    acgt = motif.kmer_codes(_codes("ACGT"), 4)[0, 0]  # its own reverse complement
    assert motif.canonical(np.array([acgt]), 4).tolist() == [acgt]
    assert motif.kmer_text(1, 3) == "AAC"


def test_enrichment_ranks_the_kmer_only_label_one_carries_first_with_its_smoothed_log_ratio():
    # Four label-1 sequences carry CCC (or GGG, its reverse complement); the four label-0 ones never do.
    ones = ["ACCCA", "TGGGT", "CCCAA", "AAGGG"]
    zeros = ["ATATA", "TATAT", "AATTA", "ATTAA"]
    table = motif.enriched_kmers(_codes(*ones, *zeros), np.array([1] * 4 + [0] * 4), k=3, top=1, min_support=0.5)
    first = table.iloc[0]
    assert motif.kmer_text(int(first.kmer), 3) == "CCC"
    assert (first.share1, first.share0) == (1.0, 0.0)
    assert math.isclose(first.log2_ratio, math.log2(5 / 6) - math.log2(1 / 6))


def test_min_support_leaves_out_kmers_too_rare_among_label_one():
    ones = ["ACCCA", "TTTTT", "TTTTT", "TTTTT"]  # CCC in one of four label-1 sequences only
    zeros = ["ATATA", "TATAT", "AATTA", "ATTAA"]
    table = motif.enriched_kmers(_codes(*ones, *zeros), np.array([1] * 4 + [0] * 4), k=3, top=5, min_support=0.5)
    assert "CCC" not in [motif.kmer_text(int(x), 3) for x in table.kmer]
    assert [motif.kmer_text(int(x), 3) for x in table.kmer] == ["AAA"]  # TTT's canonical form, in 3 of 4


def test_destroyed_and_created_compare_the_windows_before_and_after():
    ccc = motif.canonical(motif.kmer_codes(_codes("CCC"), 3)[0], 3)
    before = _codes("ACCCA", "AAAAA", "ACCCA")
    after = _codes("ACACA", "AGGGA", "ACCCA")  # the motif broken; made (GGG = CCC reversed); untouched
    assert motif.destroyed(before, after, ccc, 3).tolist() == [True, False, False]
    assert motif.created(before, after, ccc, 3).tolist() == [False, True, False]


def test_random_edits_change_exactly_the_asked_number_of_editable_positions():
    codes = np.zeros((50, 20), dtype=np.int64)
    editable = np.ones((50, 20), dtype=bool)
    editable[:, :10] = False
    n_edits = np.arange(50) % 6
    out = motif.random_edits(codes, n_edits, editable, np.random.default_rng(0))
    changed = out != codes
    assert changed.sum(axis=1).tolist() == n_edits.tolist()
    assert not changed[:, :10].any()
    assert set(np.unique(out[changed])) <= {1, 2, 3}


def test_render_lists_each_row_and_the_kmers(tmp_path):
    table = pd.DataFrame(
        [
            dict(
                task="t",
                seed=0,
                label=1,
                correct=10,
                broken=8,
                edits_mean=2.5,
                with_kmer=0.75,
                change="destroys",
                attack=0.625,
                random=0.25,
            ),
        ]
    )
    kmers = pd.DataFrame([dict(task="t", seed=0, kmer=1, share1=0.5, share0=0.1, log2_ratio=2.0, text="AAAAAC")])
    text = motif.render(table, kmers)
    assert "| t | 0 | 1 | 8 / 10 | 2.50 | 0.750 | destroys one | 0.625 | 0.250 |" in text
    assert (
        "- t, seed 0: HotFlip's edits destroy an enriched k-mer in 0.625 of the label-1 sequences it breaks, "
        "2.5 times the random rate" in text
    )
    assert "- t, seed 0: AAAAAC (0.50 / 0.10)" in text
