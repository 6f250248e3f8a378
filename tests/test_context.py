"""scoring.context: windows scored inside their reference flanks, only their own tokens scored."""

import gzip
import logging

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from conftest import demo_sequence, save_bpe_tokenizer, save_kmer_tokenizer, write_fasta
from gfm_audit.errors import InputError
from gfm_audit.models import ModelSpec, load_model, load_tokenizer
from gfm_audit.privacy.flanks import token_multiple, with_flanks
from gfm_audit.privacy.scoring import SeqRecord, score_shard
from gfm_audit.privacy.windows import SNP_COLUMNS

CONTEXT = 40
# (window id, contig, start, end): w0 and w3 start less than CONTEXT bases into their contig (left flank cut),
# w2 ends at its contig's end (right flank cut), w1 has room on both sides.
WINDOWS = [("w0", "z", 0, 60), ("w1", "z", 500, 560), ("w2", "y", 340, 400), ("w3", "y", 30, 90)]


@pytest.fixture(scope="module")
def shard(tmp_path_factory):
    """One shard written by hand: 4 windows of real demo sequence on two contigs, each with one neighbor that
    changes a base, and the indexed reference they come from."""
    folder = tmp_path_factory.mktemp("context")
    contigs = {"z": demo_sequence(0, 2000), "y": demo_sequence(5000, 5400)}
    write_fasta(folder / "ref.fa", contigs)
    windows, neighbors, table = [], [], ["neighbor_id\twindow_id\tkind\tprob\treplicate"]
    for w, chrom, start, end in WINDOWS:
        text = contigs[chrom][start:end]
        windows.append(f">{w} {chrom}:{start + 1}-{end}\n{text}\n")
        changed = text[:20] + ("A" if text[20] != "A" else "C") + text[21:]
        neighbors.append(f">{w}_n\n{changed}\n")
        table.append(f"{w}_n\t{w}\tsnp\t0.5\t0")
    (folder / "w.fa").write_text("".join(windows))
    (folder / "n.fa").write_text("".join(neighbors))
    (folder / "n.tsv").write_text("\n".join(table) + "\n")
    with gzip.open(folder / "snps.tsv.gz", "wt") as fh:
        fh.write("\t".join(SNP_COLUMNS) + "\n")
    return folder, contigs


def _score(spec, folder, stem, **kwargs):
    score_shard(
        spec,
        windows_fasta=str(folder / "w.fa"),
        neighbors_fasta=str(folder / "n.fa"),
        neighbors_tsv=str(folder / "n.tsv"),
        snps_path=str(folder / "snps.tsv.gz"),
        features=["min_k_k0.2"],
        batch_size=3,
        seed=0,
        features_path=folder / f"{stem}.features.parquet",
        tokens_path=folder / f"{stem}.tokens.parquet",
        progress=False,
        # The hand computations below are float32 on the CPU; a GPU would score under bf16 autocast.
        device="cpu",
        **kwargs,
    )
    return pq.read_table(folder / f"{stem}.tokens.parquet").to_pylist()


def _sequences(contigs, *, right: bool):
    """Each scored sequence's (left flank, text, right flank), cut at the contig ends, computed here directly."""
    out = {}
    for w, chrom, start, end in WINDOWS:
        seq = contigs[chrom]
        left = seq[max(0, start - CONTEXT) : start]
        after = seq[end : end + CONTEXT] if right else ""
        text = seq[start:end]
        out[w] = (left, text, after)
        out[f"{w}_n"] = (left, text[:20] + ("A" if text[20] != "A" else "C") + text[21:], after)
    return out


def _stats(logits_row, target):
    logp = torch.log_softmax(logits_row.double(), -1)
    p = logp.exp()
    mean = float((p * logp).sum())
    return float(logp[target]), mean, float(((p * (logp - mean) ** 2).sum()).sqrt())


def test_context_zero_gives_the_bytes_of_scoring_without_flanks(tiny_causal, shard):
    folder, _ = shard
    spec = ModelSpec("tiny", str(tiny_causal), "causal")
    _score(spec, folder, "plain")
    _score(spec, folder, "zero", context=0, reference_fasta=str(folder / "ref.fa"))
    for kind in ("features", "tokens"):
        assert (folder / f"zero.{kind}.parquet").read_bytes() == (folder / f"plain.{kind}.parquet").read_bytes()


def test_causal_scores_with_a_left_flank_equal_a_forward_pass_of_flank_and_window(tiny_causal, shard, caplog):
    folder, contigs = shard
    spec = ModelSpec("tiny", str(tiny_causal), "causal")
    with caplog.at_level(logging.INFO, logger="gfm_audit.privacy.scoring"):
        rows = _score(spec, folder, "causal", context=CONTEXT, reference_fasta=str(folder / "ref.fa"))
    # Left flanks cut at the start of z (w0) and 30 bases into y (w3); a causal model reads no right flank.
    assert "2 of 4 windows got a shorter flank" in caplog.text and "left flank only" in caplog.text
    model, tok = load_model(spec), load_tokenizer(spec)
    expected_of = _sequences(contigs, right=False)
    for row in rows:
        left, text, _ = expected_of[row["sequence_id"]]
        ids = tok(left + text)["input_ids"]  # [BOS] + one token per base
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0]
        first = 1 + len(left)  # the window's first token; with a flank it is predicted from the flank's last
        targets = range(max(first, 1), len(ids))
        expected = np.array([_stats(logits[t - 1], ids[t]) for t in targets])
        assert row["n_tokens"] == len(text) and row["token_start"] == list(range(len(text)))
        for column, i in (("token_logprob", 0), ("token_mean", 1), ("token_std", 2)):
            np.testing.assert_allclose(row[column], expected[:, i], rtol=2e-3, atol=2e-3)
        assert row["loss"] == pytest.approx(-expected[:, 0].mean(), rel=1e-5)


def test_masked_scores_with_both_flanks_equal_masking_each_window_token_by_hand(tiny_masked, shard, caplog):
    folder, contigs = shard
    spec = ModelSpec("tiny", str(tiny_masked), "masked", masking="exact")
    with caplog.at_level(logging.INFO, logger="gfm_audit.privacy.scoring"):
        rows = _score(spec, folder, "masked", context=CONTEXT, reference_fasta=str(folder / "ref.fa"))
    # w0 and w3 lose left flank, w2 its right one.
    assert "3 of 4 windows got a shorter flank" in caplog.text and "both sides" in caplog.text
    model, tok = load_model(spec), load_tokenizer(spec)
    expected_of = _sequences(contigs, right=True)
    for row in rows:
        left, text, right = expected_of[row["sequence_id"]]
        ids = tok(left + text + right)["input_ids"]
        expected = []
        for t in range(1 + len(left), 1 + len(left) + len(text)):
            masked = list(ids)
            masked[t] = tok.mask_token_id
            with torch.no_grad():
                expected.append(_stats(model(torch.tensor([masked])).logits[0, t], ids[t]))
        expected = np.array(expected)
        assert row["token_start"] == list(range(len(text)))
        np.testing.assert_allclose(row["token_logprob"], expected[:, 0], rtol=2e-3, atol=2e-3)
        np.testing.assert_allclose(row["token_std"], expected[:, 2], rtol=2e-3, atol=2e-3)
        assert row["loss"] == pytest.approx(-expected[:, 0].mean(), rel=1e-5)


def test_a_window_with_flanks_longer_than_the_model_stops_the_job_before_scoring(tiny_causal, shard):
    folder, _ = shard
    spec = ModelSpec("tiny", str(tiny_causal), "causal", max_length=60 + 1 + CONTEXT - 1)
    with pytest.raises(InputError, match=r"with its flanks \(scoring.context: 40\) is 101 tokens.*takes \(100\)"):
        _score(spec, folder, "long", context=CONTEXT, reference_fasta=str(folder / "ref.fa"))
    assert not (folder / "long.features.parquet").exists()


def test_tokenizers_that_would_change_the_windows_tokens_are_refused(tmp_path):
    from transformers import AutoTokenizer

    kmer = AutoTokenizer.from_pretrained(save_kmer_tokenizer(tmp_path / "kmer", k=3))
    assert token_multiple(kmer, 42, model="nt") == 3
    with pytest.raises(InputError, match=r"reads 3-mers: scoring.context \(40\) must be a multiple of 3"):
        token_multiple(kmer, 40, model="nt")
    bpe = AutoTokenizer.from_pretrained(save_bpe_tokenizer(tmp_path / "bpe"))
    with pytest.raises(InputError, match="needs a character or fixed k-mer tokenizer.*BPE"):
        token_multiple(bpe, 40, model="dnabert2")


def test_kmer_flanks_of_a_multiple_of_k_give_the_joined_texts_tokens_with_the_windows_offsets(tmp_path):
    from gfm_audit.tokens import encode_many
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(save_kmer_tokenizer(tmp_path / "kmer", k=3))
    left, text, right = demo_sequence(100, 130), demo_sequence(130, 190), demo_sequence(190, 220)
    records = [SeqRecord("w", "w", "window", None, None, text)]
    alone = encode_many(tok, [text], seq_ids=["w"], model="nt")
    flanked = with_flanks(tok, alone, records, flanks={"w": (left, right)}, model="nt")[0]
    joined = tok(left + text + right)["input_ids"]
    assert flanked.ids.tolist() == joined
    inside = ~flanked.special
    assert flanked.start[inside].tolist() == list(range(0, len(text), 3))
    # Flank tokens lie outside the window's bases and are never scored.
    assert flanked.special.sum() == len(joined) - len(text) // 3


def test_sampled_masking_picks_the_same_window_bases_with_or_without_flanks(tiny_masked, shard):
    folder, _ = shard
    spec = ModelSpec("tiny", str(tiny_masked), "masked", masking="sampled", mask_fraction=0.2)
    alone = _score(spec, folder, "sampled0")
    flanked = _score(spec, folder, "sampled40", context=CONTEXT, reference_fasta=str(folder / "ref.fa"))
    for a, b in zip(alone, flanked, strict=True):
        assert a["sequence_id"] == b["sequence_id"] and a["token_start"] == b["token_start"]
        assert 0 < b["n_tokens"] < 60
