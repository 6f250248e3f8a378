"""make_neighbors: SNP substitutions at rate p, ALT choice, matched controls, determinism."""

import numpy as np
import pandas as pd
import pytest
from conftest import NEIGHBOR_PARAMS, run_windows
from gfm_audit.errors import InputError
from gfm_audit.fasta import read_fasta
from gfm_audit.privacy.neighbors import (
    NEIGHBOR_COLUMNS,
    allele_weights,
    control_neighbor,
    is_transition,
    make_neighbors,
    site_table,
    snp_neighbor,
)


def _seq(text):
    return np.frombuffer(text.encode(), dtype=np.uint8)


@pytest.fixture
def neighbors(tmp_path, small_reference):
    fasta, vcf, _ = small_reference
    _, out, _ = run_windows(tmp_path, fasta, vcf, n=8, length=2000)
    make_neighbors(
        str(out / "windows.fa"),
        str(out / "snps.tsv.gz"),
        params=NEIGHBOR_PARAMS,
        out_fasta=out / "n.fa",
        out_tsv=out / "n.tsv",
    )
    return out


def test_p_zero_changes_nothing_and_p_one_changes_every_site():
    seq = _seq("ACGTACGTAC")
    sites = site_table([1, 4, 8], ["T", "G,T", "C"], ["", "", ""], mode="uniform")
    rng = np.random.default_rng(0)
    same, changed = snp_neighbor(seq, sites, 0.0, rng=rng)
    assert changed.size == 0 and same.tobytes() == seq.tobytes()
    new, changed = snp_neighbor(seq, sites, 1.0, rng=rng)
    assert changed.tolist() == [1, 4, 8]
    text = new.tobytes().decode()
    assert text[1] == "T" and text[4] in "GT" and text[8] == "C"
    assert text[:1] + text[2:4] + text[5:8] + text[9:] == "A" + "GT" + "CGT" + "C"


def test_each_site_changes_with_probability_p():
    n = 20_000
    seq = _seq("A" * n)
    sites = site_table(list(range(n)), ["G"] * n, [""] * n, mode="uniform")
    _, changed = snp_neighbor(seq, sites, 0.3, rng=np.random.default_rng(1))
    # Binomial(20000, 0.3): sd = 65, so 5 sd is 325.
    assert abs(len(changed) - 6_000) < 325


def test_uniform_mode_picks_each_alt_equally_and_af_mode_follows_frequencies():
    n = 20_000
    seq = _seq("A" * n)
    uniform = site_table(list(range(n)), ["C,T"] * n, ["0.9,0.1"] * n, mode="uniform")
    new, _ = snp_neighbor(seq, uniform, 1.0, rng=np.random.default_rng(2))
    assert abs((new == ord("C")).mean() - 0.5) < 0.02
    weighted = site_table(list(range(n)), ["C,T"] * n, ["0.9,0.1"] * n, mode="af")
    new, _ = snp_neighbor(seq, weighted, 1.0, rng=np.random.default_rng(2))
    assert abs((new == ord("C")).mean() - 0.9) < 0.01


def test_allele_weights_fall_back_to_uniform_without_frequencies():
    assert allele_weights(["C", "T"], [None, None], "af").tolist() == [0.5, 0.5]
    assert allele_weights(["C", "T"], [0.0, 0.0], "af").tolist() == [0.5, 0.5]
    assert allele_weights(["C", "T"], [0.3, None], "af").tolist() == [1.0, 0.0]
    assert allele_weights(["C", "T", "G"], [0.2, 0.6, 0.2], "af").tolist() == pytest.approx([0.2, 0.6, 0.2])


def test_transitions_are_purine_purine_and_pyrimidine_pyrimidine():
    assert is_transition(_seq("AGCTAC"), _seq("GATCCA")).tolist() == [True, True, True, True, False, False]


def test_control_substitutes_only_non_snp_acgt_positions_with_the_asked_ts_tv():
    seq = _seq("ACGTN" * 200)
    snp_offsets = np.arange(0, 1000, 10)
    new, changed = control_neighbor(seq, snp_offsets, n_transitions=7, n_transversions=5, rng=np.random.default_rng(3))
    assert len(changed) == 12 and len(set(changed.tolist())) == 12
    assert not set(changed.tolist()) & set(snp_offsets.tolist())
    assert all(seq[i] != ord("N") for i in changed)
    assert (new != seq).sum() == 12
    assert is_transition(seq[changed], new[changed]).sum() == 7


def test_control_that_cannot_fit_is_an_error():
    with pytest.raises(InputError, match="needs 5 non-SNP positions"):
        control_neighbor(_seq("ACG"), np.array([0]), n_transitions=5, n_transversions=0, rng=np.random.default_rng(0))


def test_neighbor_files_agree_with_windows_and_snps(neighbors):
    out = neighbors
    table = pd.read_csv(out / "n.tsv", sep="\t", keep_default_na=False, dtype={"changed_offsets": str})
    assert tuple(table.columns) == NEIGHBOR_COLUMNS
    windows = read_fasta(out / "windows.fa")
    seqs = read_fasta(out / "n.fa")
    snps = pd.read_csv(out / "snps.tsv.gz", sep="\t", keep_default_na=False, dtype={"alt": str, "af": str})
    assert len(table) == len(windows) * 3 * 2 * 2  # windows x probs x replicates x kinds
    assert list(seqs) == table.neighbor_id.tolist()
    for row in table.itertuples():
        w, s = windows[row.window_id], seqs[row.neighbor_id]
        diff = [i for i in range(len(w)) if w[i] != s[i]]
        offsets = [int(x) for x in row.changed_offsets.split(",")] if row.changed_offsets else []
        assert diff == offsets and row.n_changed == len(offsets)
        site_alts = {
            o: a.split(",") for o, a in snps.loc[snps.window_id == row.window_id, ["offset", "alt"]].itertuples(False)
        }
        if row.kind == "snp":
            assert all(s[o] in site_alts[o] for o in offsets)
            if row.prob == 1.0:
                assert set(offsets) == set(site_alts)
        else:
            assert not set(offsets) & set(site_alts)
    pairs = table.pivot_table(index=["window_id", "prob", "replicate"], columns="kind", values="n_changed")
    assert (pairs["snp"] == pairs["control"]).all()


def test_neighbors_are_byte_identical_on_rerun_and_change_with_the_seed(neighbors):
    out = neighbors
    args = (str(out / "windows.fa"), str(out / "snps.tsv.gz"))
    make_neighbors(*args, params=NEIGHBOR_PARAMS, out_fasta=out / "again.fa", out_tsv=out / "again.tsv")
    assert (out / "again.fa").read_bytes() == (out / "n.fa").read_bytes()
    assert (out / "again.tsv").read_bytes() == (out / "n.tsv").read_bytes()
    make_neighbors(*args, params={**NEIGHBOR_PARAMS, "seed": 1}, out_fasta=out / "other.fa", out_tsv=out / "other.tsv")
    assert (out / "other.tsv").read_bytes() != (out / "n.tsv").read_bytes()


def test_control_false_writes_snp_neighbors_only(neighbors):
    out = neighbors
    params = {**NEIGHBOR_PARAMS, "control": False}
    make_neighbors(
        str(out / "windows.fa"), str(out / "snps.tsv.gz"), params=params, out_fasta=out / "s.fa", out_tsv=out / "s.tsv"
    )
    assert set(pd.read_csv(out / "s.tsv", sep="\t").kind) == {"snp"}
