"""DC-PDD: the score against a port of the paper's formula, the reference's token counts against naive counts,
a tiny real model scored end to end, and what a BPE tokenizer's reference is."""

import gzip
import math
import re

import numpy as np
import pandas as pd
import pysam
import pytest
import torch
from conftest import DEMO_FASTA, demo_sequence, save_bpe_tokenizer, save_kmer_tokenizer, write_fasta
from gfm_audit.char_lm import char_tokenizer, save_char_causal_lm
from gfm_audit.errors import InputError
from gfm_audit.models import ModelSpec, load_model, load_tokenizer
from gfm_audit.privacy.attacks import AttackData, registry, required_features
from gfm_audit.privacy.dc_pdd import smoothed_frequencies
from gfm_audit.privacy.features import dc_pdd_feature, features_many, window_table
from gfm_audit.privacy.scoring import score_shard
from gfm_audit.privacy.token_frequencies import (
    count_token_frequencies,
    read_token_frequencies,
    write_token_frequencies,
)
from tolerances import float32_atol, network_terms
from transformers import AutoTokenizer

# --- an independent port of the formula (the paper's Eq. and the authors' com_det_sco.py, token by token) -----


def port_dc_pdd(logp, ids, counts, a):
    """beta = mean over the first occurrence of each token of min(p * log(1 / f), a), f Laplace-smoothed counts;
    None for no tokens. Written as the authors' loop: a list of ids seen, appended at each new one."""
    total, vocabulary = sum(counts), len(counts)
    seen, alphas = [], []
    for lp, token in zip(logp, ids, strict=True):
        if token in seen:
            continue
        seen.append(token)
        frequency = (counts[token] + 1) / (total + vocabulary)
        alphas.append(min(math.exp(lp) * math.log(1 / frequency), a))
    return sum(alphas) / len(alphas) if alphas else None


def _features(sequences, counts, names):
    """features_many over hand-made sequences of (log p, token id) pairs: the scoring job's reduction."""
    logp = np.array([lp for seq in sequences for lp, _ in seq], dtype=np.float32)
    ids = np.array([token for seq in sequences for _, token in seq], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum([len(seq) for seq in sequences]))).astype(np.int64)
    values = np.stack([logp, np.zeros_like(logp), np.ones_like(logp)])
    return features_many(
        values,
        offsets,
        np.zeros(len(logp), dtype=bool),
        features=names,
        texts=[None] * len(sequences),
        token_ids=ids,
        frequencies=smoothed_frequencies(np.asarray(counts)),
    )


def test_score_is_the_papers_mean_over_first_occurrences_of_clipped_calibrated_probabilities():
    rng = np.random.default_rng(7)
    counts = [0, 50, 3, 900, 0, 12, 1, 200]  # ids 0 and 4 never seen in the reference: smoothing gives them 1/(N+|V|)
    sequences = []
    for length in (1, 5, 17, 40):
        ids = rng.integers(0, len(counts), length)  # repeats: only the first of each id counts
        logp = np.log(rng.uniform(0.01, 0.99, length)).astype(np.float32)
        sequences.append(list(zip(logp.astype(float).tolist(), ids.tolist(), strict=True)))
    sequences.append([])  # a sequence without scored tokens
    bounds = (0.05, 0.5, 100.0)  # clips most, some, none
    out = _features(sequences, counts, [dc_pdd_feature(a) for a in bounds])
    for a in bounds:
        for got, seq in zip(out[dc_pdd_feature(a)], sequences, strict=True):
            want = port_dc_pdd([lp for lp, _ in seq], [t for _, t in seq], counts, a)
            assert (got is None) == (want is None)
            if want is not None:
                assert got == pytest.approx(want, rel=1e-12)
    # Each rule matters on these inputs: without first occurrences, clipping or smoothing the score differs.
    seq = sequences[3]
    lp, ids = np.array([x for x, _ in seq]), np.array([t for _, t in seq])
    f = (np.array(counts)[ids] + 1) / (sum(counts) + len(counts))
    assert out[dc_pdd_feature(100.0)][3] != pytest.approx(np.mean(np.exp(lp) * np.log(1 / f)), rel=1e-6)
    assert out[dc_pdd_feature(0.5)][3] != pytest.approx(out[dc_pdd_feature(100.0)][3], rel=1e-6)
    assert 0 in ids and 4 in ids


def test_attack_reads_one_column_per_clip_bound_and_only_when_configured():
    assert required_features(["dc_pdd"], {}) == ["dc_pdd_a0.01"]
    assert required_features(["dc_pdd"], {"dc_pdd": {"a": [0.5, 1]}}) == ["dc_pdd_a0.5", "dc_pdd_a1"]
    # attacks.dc_pdd.a without the attack asks for no feature: the scoring jobs stay as they are.
    assert required_features(["loss"], {"dc_pdd": {"a": 0.5}}) == required_features(["loss"], {})
    table = pd.DataFrame({"dc_pdd_a0.5": [0.4, 0.1], "dc_pdd_a1": [0.7, 0.2]}, index=["a", "b"])
    data = AttackData("t", ["a", "b"], np.array([1, 0]), {"t": table}, params={"dc_pdd": {"a": [0.5, 1]}})
    out = registry()["dc_pdd"].run(data)
    assert out.keys() == {"dc_pdd_a0.5", "dc_pdd_a1"}
    np.testing.assert_array_equal(out["dc_pdd_a1"], [0.7, 0.2])
    data.params = {"dc_pdd": {"a": 0.5}}
    assert list(registry()["dc_pdd"].run(data)) == ["dc_pdd"]


def test_every_window_at_the_clip_bound_is_logged(caplog):
    table = pd.DataFrame({"dc_pdd_a0.01": [0.01, 0.01]}, index=["a", "b"])
    data = AttackData("t", ["a", "b"], np.array([1, 0]), {"t": table})
    registry()["dc_pdd"].run(data)
    assert "raise attacks.dc_pdd.a" in caplog.text


# --- the reference's token counts ---------------------------------------------------------------------------

# Several records: lower case (soft-masked), N runs inside and at the ends, a record shorter than k, one of one base.
RECORDS = {
    "chr1": demo_sequence(1000, 1100) + "NNNN" + demo_sequence(2000, 2050).lower() + "N" + demo_sequence(3000, 3007),
    "chr2": "AC",
    "chr3": "NN" + demo_sequence(5000, 5040).lower() + "NNNNNNN",
    "chrM": "g",
}


def _naive_counts(tokenizer, k):
    """Per token id: one per base for a one-base token, one per k-mer of A/C/G/T at every offset (overlapping)."""
    vocab = tokenizer.get_vocab()
    counts = np.zeros(len(tokenizer), dtype=np.int64)
    for seq in RECORDS.values():
        seq = seq.upper()
        for i in range(len(seq)):
            if k == 1 or seq[i] not in "ACGT":
                counts[vocab[seq[i]]] += 1
            kmer = seq[i : i + k]
            if k > 1 and len(kmer) == k and set(kmer) <= set("ACGT"):
                counts[vocab[kmer]] += 1
    return counts


@pytest.fixture(params=["plain", "bgzip"])
def reference(request, tmp_path):
    fasta = write_fasta(tmp_path / "ref.fa", RECORDS, width=13)
    if request.param == "bgzip":  # the staged reference of a bgzipped source
        pysam.tabix_compress(str(fasta), str(tmp_path / "ref.fa.gz"))
        pysam.faidx(str(tmp_path / "ref.fa.gz"))
        return tmp_path / "ref.fa.gz"
    return fasta


@pytest.mark.parametrize("chunk_bases", [1, 2, 5, 64, 1 << 20])
def test_character_tokenizer_counts_every_base_upper_cased_whatever_the_chunks(reference, chunk_bases):
    tokenizer = char_tokenizer()
    counts = count_token_frequencies(reference, tokenizer, piece_length=16, chunk_bases=chunk_bases)
    np.testing.assert_array_equal(counts, _naive_counts(tokenizer, 1))
    assert counts[tokenizer.convert_tokens_to_ids("N")] == sum(s.count("N") for s in RECORDS.values())


@pytest.mark.parametrize("chunk_bases", [1, 2, 5, 64, 1 << 20])
def test_kmer_tokenizer_counts_overlapping_kmers_and_ns_across_chunk_borders(reference, tmp_path, chunk_bases):
    tokenizer = AutoTokenizer.from_pretrained(save_kmer_tokenizer(tmp_path / "k3", k=3))
    counts = count_token_frequencies(reference, tokenizer, piece_length=16, chunk_bases=chunk_bases)
    np.testing.assert_array_equal(counts, _naive_counts(tokenizer, 3))
    # A/C/G/T as one-base tokens (k-mer tails) are never counted: smoothing gives them the unseen frequency.
    assert (counts[tokenizer.convert_tokens_to_ids(list("ACGT"))] == 0).all()


def test_kmer_counts_sum_the_non_overlapping_tokens_of_every_frame(tmp_path):
    # Why overlapping: the tokenizer cuts a window into k-mers from its first base, and windows start in any of
    # the k frames; tokenizing the record from each frame and adding up gives the overlapping counts.
    tokenizer = AutoTokenizer.from_pretrained(save_kmer_tokenizer(tmp_path / "k3", k=3))
    seq = demo_sequence(7000, 7301)
    fasta = write_fasta(tmp_path / "one.fa", {"z": seq})
    frames = np.zeros(len(tokenizer), dtype=np.int64)
    for frame in range(3):
        body = seq[frame:]
        body = body[: len(body) // 3 * 3]  # whole k-mers only: tails are one-base tokens, not counted
        ids = tokenizer(body, add_special_tokens=False)["input_ids"]
        frames += np.bincount(ids, minlength=len(tokenizer))
    np.testing.assert_array_equal(count_token_frequencies(fasta, tokenizer, piece_length=10), frames)


@pytest.mark.parametrize("chunk_bases", [7, 50, 1 << 20])
def test_bpe_tokenizer_counts_the_tokens_of_the_reference_cut_into_window_long_pieces(reference, tmp_path, chunk_bases):
    tokenizer = AutoTokenizer.from_pretrained(save_bpe_tokenizer(tmp_path / "bpe"))
    counts = count_token_frequencies(reference, tokenizer, piece_length=32, chunk_bases=chunk_bases)
    naive = np.zeros(len(tokenizer), dtype=np.int64)
    for seq in RECORDS.values():
        seq = seq.upper()
        for start in range(0, len(seq), 32):  # pieces never cross a record; the last piece of one is shorter
            naive += np.bincount(
                tokenizer(seq[start : start + 32], add_special_tokens=False)["input_ids"], minlength=len(tokenizer)
            )
    np.testing.assert_array_equal(counts, naive)
    assert counts[tokenizer.convert_tokens_to_ids(["[CLS]", "[SEP]"])].sum() == 0  # special tokens: no DNA


def test_a_table_counted_for_another_tokenizer_stops_in_one_line_naming_the_model(tmp_path):
    bpe = AutoTokenizer.from_pretrained(save_bpe_tokenizer(tmp_path / "bpe"))
    fasta = write_fasta(tmp_path / "ref.fa", RECORDS)
    write_token_frequencies(count_token_frequencies(fasta, bpe, piece_length=32), bpe, tmp_path / "bpe.tsv")
    np.testing.assert_array_equal(
        read_token_frequencies(tmp_path / "bpe.tsv", bpe, model="m"),
        count_token_frequencies(fasta, bpe, piece_length=32),
    )
    with pytest.raises(InputError, match="not counted for the tokenizer of model 'demo'") as error:
        read_token_frequencies(tmp_path / "bpe.tsv", char_tokenizer(), model="demo")
    assert "\n" not in str(error.value)


# --- a tiny real model, scored end to end -------------------------------------------------------------------


def _write_shard(folder, windows):
    """A shard's inputs by hand: the windows, one SNP neighbor each (a base changed), their tables."""
    write_fasta(folder / "w.fa", windows, index=False)
    neighbors = {f"{w}_n": s[:5] + ("A" if s[5] != "A" else "C") + s[6:] for w, s in windows.items()}
    write_fasta(folder / "n.fa", neighbors, index=False)
    pd.DataFrame(
        {"neighbor_id": list(neighbors), "window_id": list(windows), "kind": "snp", "prob": 0.1, "replicate": 0}
    ).to_csv(folder / "n.tsv", sep="\t", index=False)
    with gzip.open(folder / "snps.tsv.gz", "wt") as fh:
        pd.DataFrame({"window_id": list(windows), "offset": 5}).to_csv(fh, sep="\t", index=False)
    return windows | neighbors


def test_tiny_character_model_scored_end_to_end_gives_the_ports_score(tmp_path):
    folder = save_char_causal_lm(tmp_path / "lm", hidden=32, layers=2, heads=2, max_positions=128, weights_seed=3)
    spec = ModelSpec("tiny", str(folder), "causal")
    reference = write_fasta(tmp_path / "ref.fa", RECORDS)
    tokenizer = load_tokenizer(spec)
    write_token_frequencies(
        count_token_frequencies(reference, tokenizer, piece_length=64), tokenizer, tmp_path / "f.tsv"
    )
    texts = _write_shard(tmp_path, {f"w{i}": demo_sequence(9000 + 100 * i, 9040 + 100 * i + 7 * i) for i in range(3)})
    bounds = (0.01, 0.6, 5.0)
    score_shard(
        spec,
        windows_fasta=str(tmp_path / "w.fa"),
        neighbors_fasta=str(tmp_path / "n.fa"),
        neighbors_tsv=str(tmp_path / "n.tsv"),
        snps_path=str(tmp_path / "snps.tsv.gz"),
        features=[dc_pdd_feature(a) for a in bounds],
        batch_size=2,
        seed=0,
        features_path=tmp_path / "features.parquet",
        progress=False,
        token_frequencies=tmp_path / "f.tsv",
    )
    got = pd.read_parquet(tmp_path / "features.parquet").set_index("sequence_id")
    counts = _naive_counts(tokenizer, 1).tolist()
    model = load_model(spec)
    for name, text in texts.items():
        ids = tokenizer(text)["input_ids"]  # [BOS] then one token per base; the bases are scored
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0]
        logp = torch.log_softmax(logits.double(), -1)[torch.arange(len(ids) - 1), ids[1:]].tolist()
        # Rounding of the float32 forward (tests/tolerances.py), times the largest log(1/f) it is multiplied by.
        atol = float32_atol(logits.numpy(), network_terms(2, 32, len(ids))) * max(
            -np.log(smoothed_frequencies(np.array(counts)))
        )
        for a in bounds:
            want = port_dc_pdd(logp, ids[1:], counts, a)
            assert got.loc[name, dc_pdd_feature(a)] == pytest.approx(want, abs=atol)
    # Every alpha of a character model is above the paper's 0.01, and the score is the bound itself.
    np.testing.assert_allclose(got[dc_pdd_feature(0.01)], 0.01, rtol=1e-12)
    # Unclipped, the windows tell apart (a neighbor may tie with its window: a character model's first occurrences
    # are its first A, C, G and T, which a SNP after them leaves alone).
    assert got.loc[["w0", "w1", "w2"], dc_pdd_feature(5.0)].nunique() == 3
    # The reduce step keeps the window's own score and its neighbors' mean, as for every per-sequence feature.
    table = window_table(got.reset_index())
    assert dc_pdd_feature(0.6) in table and f"nbr_snp_{dc_pdd_feature(0.6)}_mean" in table


def test_scoring_without_the_table_stops_in_one_line(tmp_path):
    folder = save_char_causal_lm(tmp_path / "lm", hidden=32, layers=1, heads=2, max_positions=128, weights_seed=0)
    _write_shard(tmp_path, {"w0": demo_sequence(0, 30)})
    with pytest.raises(InputError, match="dc_pdd attack needs the reference's token frequency table"):
        score_shard(
            ModelSpec("tiny", str(folder), "causal"),
            windows_fasta=str(tmp_path / "w.fa"),
            neighbors_fasta=str(tmp_path / "n.fa"),
            neighbors_tsv=str(tmp_path / "n.tsv"),
            snps_path=str(tmp_path / "snps.tsv.gz"),
            features=[dc_pdd_feature(0.5)],
            batch_size=2,
            seed=0,
            features_path=tmp_path / "features.parquet",
            progress=False,
        )


def test_first_occurrences_take_each_kmer_once(tmp_path):
    # With a k-mer vocabulary repeats are rarer, but the rule is the same: a repeated 3-mer counts once.
    tokenizer = AutoTokenizer.from_pretrained(save_kmer_tokenizer(tmp_path / "k3", k=3))
    ids = tokenizer("ACGACGTTT", add_special_tokens=False)["input_ids"]
    assert len(ids) == 3 and ids[0] == ids[1]
    counts = [1] * len(tokenizer)
    out = _features([[(-0.1, ids[0]), (-0.2, ids[1]), (-0.3, ids[2])]], counts, [dc_pdd_feature(100.0)])
    f = 2 / (2 * len(tokenizer))
    assert out[dc_pdd_feature(100.0)][0] == pytest.approx(
        (math.exp(-0.1) + math.exp(-0.3)) * math.log(1 / f) / 2, rel=1e-6
    )


# --- the workflow: the table is counted only with dc_pdd, once per tokenizer, and the scoring jobs read it ------


def test_workflow_counts_the_table_only_with_dc_pdd_and_every_scoring_job_reads_the_targets(tmp_path):
    from test_workflow import snakemake, tiny_model_config

    config = tiny_model_config(tmp_path, shards=2)
    table = "results/reference/token_frequencies/tiny.tsv"
    without = snakemake(tmp_path, "--dry-run", config={**config, "attacks": {"names": ["loss", "min_k"]}})
    assert without.returncode == 0, without.stderr[-2000:]
    assert "token_frequencies" not in without.stdout + without.stderr
    config["attacks"] = {"names": ["loss", "dc_pdd"], "dc_pdd": {"a": 1.0}}
    plan = snakemake(tmp_path, "--dry-run", config=config)
    text = plan.stdout + plan.stderr
    assert plan.returncode == 0, text[-2000:]
    # One table for the target's tokenizer; its two reference models share it: 3 models x 2 shards read it.
    assert text.count("rule token_frequencies:") == 1 and f"output: {table}" in text
    assert len(re.findall(rf"rule score_shard:\n    input: [^\n]*{re.escape(table)}", text)) == 6
    # The rule itself, run for real: its table is the library's count of the staged demo FASTA.
    run = snakemake(tmp_path, "--nolock", table, config=config)  # a flag ends --configfile's list of files
    assert run.returncode == 0, run.stderr[-3000:]
    tokenizer = load_tokenizer(ModelSpec("tiny", config["models"]["tiny"]["path"], "causal"))
    got = read_token_frequencies(tmp_path / table, tokenizer, model="tiny")
    np.testing.assert_array_equal(got, count_token_frequencies(DEMO_FASTA, tokenizer, piece_length=64))
    assert got.sum() == len(demo_sequence())
