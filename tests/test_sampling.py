"""Seeded subsets: the helper's draws, and the same subsets as before for every sampler that uses it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from gfm_audit.privacy.attacks.rmia import population_mask
from gfm_audit.privacy.haplotypes import select_samples
from gfm_audit.privacy.individuals.genotype_inference import genotype_queries
from gfm_audit.privacy.individuals.membership import individuals_split
from gfm_audit.privacy.membership import finetune_split
from gfm_audit.privacy.memorisation.extraction import choose_windows
from gfm_audit.privacy.scoring import sampled_offsets
from gfm_audit.robustness.ga.attack import sample_rows
from gfm_audit.sampling import sample_indices, sample_labels


def test_labels_mark_the_first_k_of_the_seeded_permutation():
    assert np.random.default_rng(0).permutation(6).tolist() == [3, 2, 5, 4, 0, 1]
    labels = sample_labels(6, 2, 0)
    assert labels.dtype == np.int8 and labels.tolist() == [0, 0, 1, 1, 0, 0]


def test_indices_are_the_seeded_choice_sorted_and_capped_at_n():
    assert np.random.default_rng(0).choice(10, 4, replace=False).tolist() == [2, 4, 5, 7]
    assert sample_indices(10, 4, 0).tolist() == [2, 4, 5, 7]
    assert sample_indices(3, 5, 1).tolist() == [0, 1, 2]
    assert sample_indices(10, 0, 1).tolist() == []


def test_a_generator_is_drawn_on_not_reseeded():
    rng = np.random.default_rng(3)
    assert [sample_indices(10, 3, rng).tolist() for _ in range(2)] == [[0, 1, 6], [5, 6, 7]]


def test_spawned_streams_draw_independently():
    first, second = np.random.SeedSequence(7).spawn(2)
    assert sample_labels(8, 4, first).tolist() == [0, 1, 0, 1, 0, 1, 1, 0]
    assert sample_labels(8, 4, second).tolist() == [0, 1, 0, 1, 0, 0, 1, 1]


# The subsets each sampler drew before it used the helper: a seed must keep drawing them.
BEFORE = {
    0: {
        "finetune": [[0, 4, 5, 9, 10, 11], [3, 4, 6, 8, 10, 11], [1, 3, 4, 7, 10, 11]],
        "individuals": [[4, 7, 8, 9], [3, 4, 6, 8, 9], [1, 3, 4, 7, 9]],
        "rows": [[5, 6, 9, 10, 13], [0, 1, 2], [4097, 7524, 26977, 30782, 51111, 63692, 85057]],
        "samples": ["p2", "p3", "p5", "p6", "p9"],
        "windows": [["w0", "w3", "w6"], ["w2", "w7", "w13"]],
        "population": [1, 2, 7, 9, 13, 14, 18],
        "offsets": [3, 6, 22, 27, 37, 40],
        "queries": ["s0_3", "s0_2", "s0_4", "s1_2", "s1_0", "s1_4", "s2_1", "s2_3", "s2_5"],
    },
    7: {
        "finetune": [[1, 2, 4, 6, 7, 9], [3, 5, 6, 7, 8, 10], [0, 1, 2, 6, 7, 11]],
        "individuals": [[1, 2, 4, 8], [1, 3, 5, 6, 8], [0, 1, 7, 8, 9]],
        "rows": [[10, 11, 12, 15, 17], [0, 1, 2], [57828, 62506, 68415, 77567, 83365, 89718, 94484]],
        "samples": ["p5", "p6", "p7", "p9", "p11"],
        "windows": [["w0", "w3", "w12"], ["w7", "w10", "w11"]],
        "population": [14, 15, 17, 21, 22, 23, 25],
        "offsets": [3, 8, 25, 32, 40, 45, 48],
        "queries": ["s0_3", "s0_2", "s0_4", "s1_5", "s1_3", "s1_4", "s2_1", "s2_0", "s2_2"],
    },
    42: {
        "finetune": [[1, 2, 4, 5, 7, 9], [0, 1, 2, 6, 8, 9], [1, 3, 5, 9, 10, 11]],
        "individuals": [[1, 2, 4, 5], [0, 1, 2, 4, 6], [1, 3, 7, 8, 9]],
        "rows": [[1, 8, 11, 13, 19], [0, 1, 2], [8594, 8924, 43300, 43886, 65454, 77391, 85858]],
        "samples": ["p0", "p4", "p5", "p6", "p9"],
        "windows": [["w0", "w3", "w12"], ["w1", "w5", "w13"]],
        "population": [2, 11, 15, 18, 25, 26, 29],
        "offsets": [3, 7, 23, 32, 34, 40, 43],
        "queries": ["s0_0", "s0_4", "s0_5", "s1_2", "s1_0", "s1_3", "s2_1", "s2_0", "s2_3"],
    },
}


def _members(table: pd.DataFrame) -> list[list[int]]:
    return [np.flatnonzero(table[c]).tolist() for c in table.columns[1:]]


def _alleles() -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = [
        (f"s{p}_{j}", f"p{p}", j % 2, "w", j, 100 + j, "A", "C", "C" if (j + p) % 3 == 0 else "A", 0.2)
        for p in range(3)
        for j in range(6)
    ]
    cols = ["seq_id", "sample", "haplotype", "window_id", "offset", "pos", "ref", "alts", "allele", "af"]
    membership = pd.DataFrame({"sample": ["p0", "p1", "p2"], "target_member": [1, 0, 1]})
    return pd.DataFrame(rows, columns=cols), membership


@pytest.mark.parametrize("seed", sorted(BEFORE))
def test_every_sampler_draws_the_same_subsets_as_before(seed):
    before = BEFORE[seed]
    windows = [f"w{i}" for i in range(12)]
    assert _members(finetune_split(windows, member_fraction=0.5, n_references=2, seed=seed)) == before["finetune"]
    people = [f"p{i}" for i in range(10)]
    assert _members(individuals_split(people, member_fraction=0.4, n_references=2, seed=seed)) == before["individuals"]
    rows = [sample_rows(20, 5, seed), sample_rows(3, 5, seed), sample_rows(100_000, 7, seed)]
    assert [r.tolist() for r in rows] == before["rows"]
    vcf_samples = [f"p{i}" for i in range(12)]
    assert select_samples(vcf_samples, samples="all", n=5, seed=seed, vcf_name="v") == before["samples"]
    labels = {f"w{i}": int(i % 3 == 0) for i in range(15)}
    assert list(choose_windows(labels, 3, seed)) == before["windows"]
    nonmember = np.array([i % 4 != 0 for i in range(30)])
    assert np.flatnonzero(population_mask(nonmember, 0.3, seed)).tolist() == before["population"]
    offsets = sampled_offsets("w7", 50, snp_offsets=np.array([3, 40]), fraction=0.1, seed=seed)
    assert offsets.tolist() == before["offsets"]
    alleles, membership = _alleles()
    assert genotype_queries(alleles, membership, per_person=3, seed=seed).seq_id.tolist() == before["queries"]
