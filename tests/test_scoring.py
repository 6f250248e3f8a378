"""Scoring: per-token log-probs against hand computation, offsets, shards, bad models."""

import gzip
import json
import math
import shutil
import signal
import subprocess
import sys
import zlib

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from conftest import NEIGHBOR_PARAMS, REPO, demo_sequence, run_windows, save_bpe_tokenizer, save_kmer_tokenizer
from full_disk import run_on_a_full_disk
from gfm_audit.char_lm import char_tokenizer
from gfm_audit.errors import InputError
from gfm_audit.fasta import read_fasta
from gfm_audit.models import ModelSpec, load_model, load_tokenizer
from gfm_audit.privacy.neighbors import make_neighbors
from gfm_audit.privacy.scoring import ScoringOptions, SeqRecord, score_sequences, score_shard
from gfm_audit.privacy.windows import shard_of, split_windows
from gfm_audit.tokens import encode, tokens_covering


def _records(*texts):
    return [SeqRecord(f"s{i}", "w0", "window" if i == 0 else "snp", None, None, t) for i, t in enumerate(texts)]


def _manual_stats(logits_row: torch.Tensor, target: int) -> tuple[float, float, float]:
    logp = torch.log_softmax(logits_row.double(), -1).numpy()
    p = np.exp(logp)
    mean = float((p * logp).sum())
    return float(logp[target]), mean, math.sqrt(float((p * (logp - mean) ** 2).sum()))


def test_causal_log_probs_equal_an_unbatched_forward_by_hand(tiny_causal):
    spec = ModelSpec("tiny", str(tiny_causal), "causal")
    texts = [demo_sequence(0, 40), demo_sequence(500, 517), demo_sequence(900, 963)]  # unequal: padding in a batch
    table = score_sequences(
        spec, _records(*texts), snp_offsets={"w0": np.array([3, 10])}, batch_size=2, seed=0, device="cpu"
    ).to_pylist()
    model, tok = load_model(spec), load_tokenizer(spec)
    for row, text in zip(table, texts, strict=True):
        ids = tok(text)["input_ids"]  # [BOS] + one token per base
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0]
        expected = np.array([_manual_stats(logits[t - 1], ids[t]) for t in range(1, len(ids))])
        assert row["n_tokens"] == len(text)
        np.testing.assert_allclose(row["token_logprob"], expected[:, 0], rtol=2e-3, atol=2e-3)
        np.testing.assert_allclose(row["token_mean"], expected[:, 1], rtol=2e-3, atol=2e-3)
        np.testing.assert_allclose(row["token_std"], expected[:, 2], rtol=2e-3, atol=2e-3)
        assert row["loss"] == pytest.approx(-expected[:, 0].mean(), rel=1e-5)
        assert row["snp_loss"] == pytest.approx(-expected[[3, 10], 0].mean(), rel=1e-5)
        assert row["token_start"] == list(range(len(text))) and row["token_end"] == list(range(1, len(text) + 1))


def test_masked_pseudo_log_likelihood_equals_masking_each_token_by_hand(tiny_masked):
    spec = ModelSpec("tiny", str(tiny_masked), "masked", masking="exact")
    texts = [demo_sequence(0, 30), demo_sequence(100, 121)]
    table = score_sequences(spec, _records(*texts), snp_offsets={}, batch_size=7, seed=0, device="cpu").to_pylist()
    model, tok = load_model(spec), load_tokenizer(spec)
    for row, text in zip(table, texts, strict=True):
        ids = tok(text)["input_ids"]
        expected = []
        for t in range(1, len(ids)):  # position 0 is [BOS]
            masked = list(ids)
            masked[t] = tok.mask_token_id
            with torch.no_grad():
                logits = model(torch.tensor([masked])).logits[0, t]
            expected.append(_manual_stats(logits, ids[t]))
        expected = np.array(expected)
        np.testing.assert_allclose(row["token_logprob"], expected[:, 0], rtol=2e-3, atol=2e-3)
        np.testing.assert_allclose(row["token_std"], expected[:, 2], rtol=2e-3, atol=2e-3)
        assert row["loss"] == pytest.approx(-expected[:, 0].mean(), rel=1e-5)


@pytest.mark.parametrize("kind", ["causal", "masked"])
def test_optimised_path_gives_the_plain_paths_log_probs(kind, tiny_causal, tiny_masked):
    """Bucketing, padding to 8 and inference_mode change speed only (float tolerance)."""
    folder = tiny_causal if kind == "causal" else tiny_masked
    spec = ModelSpec("tiny", str(folder), kind, masking="sampled", mask_fraction=0.3)
    texts = [demo_sequence(s, s + n) for s, n in ((0, 61), (300, 17), (700, 45), (1200, 33), (2000, 7))]
    records = [SeqRecord(f"s{i}", f"w{i}", "window", None, None, t) for i, t in enumerate(texts)]
    plain = ScoringOptions(bucketing=False, pad_multiple=1, inference_mode=False)
    fast = score_sequences(spec, records, snp_offsets={}, batch_size=2, seed=0, device="cpu").to_pylist()
    slow = score_sequences(spec, records, snp_offsets={}, batch_size=2, seed=0, device="cpu", options=plain).to_pylist()
    for a, b in zip(fast, slow, strict=True):
        assert a["n_tokens"] == b["n_tokens"] > 0
        for column in ("token_logprob", "token_mean", "token_std"):
            np.testing.assert_allclose(a[column], b[column], rtol=1e-3, atol=1e-3)
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5, abs=1e-6)


def test_causal_statistics_in_blocks_are_bit_for_bit_those_of_one_piece():
    """Blocks of rows change the memory traffic, not one bit: a 512-token vocabulary (Evo's) over 3 blocks, the
    scored positions a subset that leaves a whole block out, against token_statistics of logits[:, :-1]."""
    from gfm_audit.privacy import scoring

    generator = torch.Generator().manual_seed(0)
    batch, width, vocab = 5, 300, 512
    logits = torch.randn(batch, width, vocab, generator=generator) * 3
    ids = torch.randint(0, vocab, (batch, width), generator=generator)
    assert scoring._blockwise(logits) and batch * width * vocab > 2 * scoring.STATISTICS_BLOCK
    # Rows 0-1 wholly, rows 2-3 up to a padded end, row 4 not at all: 1,500 flattened rows in blocks of 512, the
    # last block (rows 1,024-1,499, sequences 3 and 4 from position 124) holds no scored position past row 3's 200.
    keep = np.zeros((batch, width - 1), dtype=bool)
    keep[:2] = True
    keep[2:4, :199] = True
    source = np.flatnonzero(keep)
    blocks = scoring._causal_statistics_in_blocks(logits, ids, source)
    one_piece = torch.stack(scoring.token_statistics(logits[:, :-1], ids[:, 1:])).reshape(3, -1)[:, source]
    assert blocks.shape == (3, len(source)) and torch.equal(blocks, one_piece)
    # And against float64 by hand at a few rows (float32 rounding of log-softmax over 512 logits of size ~10).
    for b, t in ((0, 1), (1, 299), (3, 199)):
        row = int(np.searchsorted(source, b * (width - 1) + t - 1))
        np.testing.assert_allclose(blocks[:, row].numpy(), _manual_stats(logits[b, t - 1], int(ids[b, t])), atol=1e-5)


def test_evo_scores_are_the_same_in_blocks_as_in_one_piece(monkeypatch):
    """The Evo 2 fixture through the whole scoring path, windows of unequal lengths (padding, rows of different
    lengths): the statistics with blocks are bit for bit those with every batch in one piece."""
    from gfm_audit.privacy import scoring
    from gfm_audit.privacy.scoring import Scorer, scored_positions
    from gfm_audit.tokens import encode_many

    spec = ModelSpec("evo2", str(REPO / "tests" / "fixtures" / "gfm" / "evo2"), "causal")
    model, tok = load_model(spec), load_tokenizer(spec)
    texts = [demo_sequence(s, s + n) for s, n in ((0, 400), (500, 377), (1000, 420), (2000, 90), (3000, 415))]
    encodings = encode_many(tok, texts, seq_ids=[f"w{i}" for i in range(len(texts))], model="evo2")
    positions = [scored_positions(e, "causal", masking="exact", offsets=None) for e in encodings]
    scorer = Scorer(model, "causal", pad_id=tok.pad_token_id, mask_id=None, batch_size=4, device="cpu")
    blocks = scorer.score(encodings, positions)
    monkeypatch.setattr(scoring, "STATISTICS_BLOCK", 2**40)
    one_piece = scorer.score(encodings, positions)
    assert len(blocks.flat[0]) == sum(len(t) - 1 for t in texts)
    np.testing.assert_array_equal(blocks.flat, one_piece.flat)


def test_sampled_masking_scores_the_same_bases_for_a_window_and_its_neighbors(tiny_masked):
    spec = ModelSpec("tiny", str(tiny_masked), "masked", masking="sampled", mask_fraction=0.1)
    window = demo_sequence(0, 200)
    neighbor = window[:50] + ("A" if window[50] != "A" else "C") + window[51:]
    snps = {"w0": np.array([50, 120])}
    rows = score_sequences(
        spec, _records(window, neighbor), snp_offsets=snps, batch_size=16, seed=0, device="cpu"
    ).to_pylist()
    assert rows[0]["token_start"] == rows[1]["token_start"]
    assert {50, 120} <= set(rows[0]["token_start"])
    assert 20 <= rows[0]["n_tokens"] <= 22  # 10% of 200 random bases plus the two SNP sites
    other_seed = score_sequences(
        spec, _records(window), snp_offsets=snps, batch_size=16, seed=1, device="cpu"
    ).to_pylist()
    assert other_seed[0]["token_start"] != rows[0]["token_start"]


def test_sampled_masking_gives_the_exact_scores_of_the_bases_it_picks(tiny_masked):
    """Each masked pass masks one token, so sampled mode is a subset of exact mode's numbers (what
    benchmarks/bench_masked_cost.py relies on to evaluate several mask fractions from one exact run)."""
    texts = [demo_sequence(0, 60), demo_sequence(400, 437)]
    snps = {"w0": np.array([5, 33])}
    exact, sampled = (
        score_sequences(
            ModelSpec("tiny", str(tiny_masked), "masked", masking=mode, mask_fraction=0.2),
            _records(*texts),
            snp_offsets=snps,
            batch_size=5,
            seed=3,
            device="cpu",
        ).to_pylist()
        for mode in ("exact", "sampled")
    )
    for e, s in zip(exact, sampled, strict=True):
        assert e["n_tokens"] == len(e["token_start"]) and 0 < s["n_tokens"] < e["n_tokens"]
        where = [e["token_start"].index(start) for start in s["token_start"]]
        for column in ("token_logprob", "token_mean", "token_std"):
            np.testing.assert_allclose(s[column], np.array(e[column])[where], rtol=1e-3, atol=1e-3)
        assert s["loss"] == pytest.approx(-np.mean(np.array(e["token_logprob"], dtype=float)[where]), abs=2e-3)


@pytest.mark.parametrize("kind", ["char", "kmer", "bpe"])
def test_every_token_maps_to_the_bases_it_spells(kind, tmp_path):
    if kind == "char":
        tok = char_tokenizer()
    elif kind == "kmer":
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(save_kmer_tokenizer(tmp_path / "kmer"))
    else:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(save_bpe_tokenizer(tmp_path / "bpe"))
    seq = demo_sequence(3000, 3400) + "NN" + demo_sequence(5000, 5101)
    enc = encode(tok, seq)
    real = ~enc.special
    assert enc.start[real][0] == 0 and enc.end[real][-1] == len(seq)
    assert (enc.start[real][1:] == enc.end[real][:-1]).all()  # contiguous, no gaps or overlaps
    for i in np.flatnonzero(real):
        spelled = tok.convert_ids_to_tokens(int(enc.ids[i])).lstrip("#")
        assert spelled == seq[enc.start[i] : enc.end[i]]
    if kind == "kmer":
        assert (enc.end[real] - enc.start[real]).max() == 3
    if kind == "bpe":
        assert (enc.end[real] - enc.start[real]).max() > 1
        covering = tokens_covering(enc, np.array([0, 250]))
        assert covering.sum() == 2 and all(
            enc.start[i] <= o < enc.end[i] for i, o in zip(np.flatnonzero(covering), [0, 250], strict=True)
        )


@pytest.fixture
def shard_inputs(tmp_path, small_reference):
    """7 windows with one snp and one control neighbor each: whole (shard 0 of 1) and split into 3 shards."""
    fasta, vcf, _ = small_reference
    _, out, _ = run_windows(tmp_path, fasta, vcf, n=7, length=120)
    params = {**NEIGHBOR_PARAMS, "probs": [0.5], "per_prob": 1}
    for n in (1, 3):
        folder = out / f"of{n}"
        folder.mkdir()
        split_windows(
            out / "windows.fa",
            out / "snps.tsv.gz",
            n_shards=n,
            out_fastas=[folder / f"{i}.fa" for i in range(n)],
            out_snps=[folder / f"{i}.snps.tsv.gz" for i in range(n)],
        )
        for i in range(n):
            make_neighbors(
                str(folder / f"{i}.fa"),
                str(folder / f"{i}.snps.tsv.gz"),
                params=params,
                out_fasta=folder / f"{i}.n.fa",
                out_tsv=folder / f"{i}.n.tsv",
            )
    return out


def _score(spec, folder, shard, stem, *, batch_size=4, **kwargs):
    return score_shard(
        spec,
        windows_fasta=str(folder / f"{shard}.fa"),
        neighbors_fasta=str(folder / f"{shard}.n.fa"),
        neighbors_tsv=str(folder / f"{shard}.n.tsv"),
        snps_path=str(folder / f"{shard}.snps.tsv.gz"),
        features=["min_k_k0.2", "min_k_pp_k0.2", "zlib_bytes"],
        batch_size=batch_size,
        seed=0,
        features_path=folder / f"{stem}.features.parquet",
        tokens_path=folder / f"{stem}.tokens.parquet",
        progress=False,
        **kwargs,
    )


def test_shards_hold_every_window_once_and_give_the_unsharded_numbers_and_reruns_are_identical(
    tiny_causal, shard_inputs
):
    out = shard_inputs
    spec = ModelSpec("tiny", str(tiny_causal), "causal")
    whole = out / "of1"
    assert _score(spec, whole, 0, "whole") == 21
    sizes = [_score(spec, out / "of3", i, f"s{i}", chunk_size=4) for i in range(3)]
    assert sum(sizes) == 21 and all(n % 3 == 0 for n in sizes)  # each window with its snp and control neighbor
    for kind in ("features", "tokens"):
        merged = pd.concat([pd.read_parquet(out / "of3" / f"s{i}.{kind}.parquet") for i in range(3)])
        reference = pd.read_parquet(whole / f"whole.{kind}.parquet")
        key = "sequence_id"
        pd.testing.assert_frame_equal(
            merged.sort_values(key).reset_index(drop=True), reference.sort_values(key).reset_index(drop=True)
        )
    tokens = pq.read_table(whole / "whole.tokens.parquet")
    assert tokens.column("kind").to_pylist()[:3] == ["window", "snp", "control"]
    _score(spec, whole, 0, "again")
    for kind in ("features", "tokens"):
        assert (whole / f"again.{kind}.parquet").read_bytes() == (whole / f"whole.{kind}.parquet").read_bytes()
    assert not list(out.rglob(".*partial*"))
    # Row groups are written chunk by chunk: a chunk of 4 sequences rounds up to whole windows (3 rows each).
    assert pq.ParquetFile(out / "of3" / "s0.features.parquet").metadata.num_row_groups == -(-sizes[0] // 6)


def test_a_shard_scores_to_the_same_bytes_with_one_or_two_threads_and_any_batch_size(shard_inputs, tmp_path):
    # The job's threads (Snakemake may give it fewer than the rule asks) and the batch size must not reach the
    # numbers: not through how MKL splits a product between threads, nor through the prefetch thread that runs
    # only with two or more, nor through the shapes of the batches. The model has the demo's shape, whose
    # products MKL does split (under MKL_CBWR=COMPATIBLE, its SSE2 code, this test fails: one thread and two give
    # other bits); the shard's sequences are of one length, so no batch is padded.
    from gfm_audit.char_lm import save_char_causal_lm

    folder = shard_inputs / "of1"
    model = save_char_causal_lm(tmp_path / "m", hidden=256, layers=2, heads=4, max_positions=300, weights_seed=0)
    spec = ModelSpec("demo-shaped", str(model), "causal")
    before = torch.get_num_threads()
    runs = [(1, 4), (2, 4), (2, 1), (1, 21)]
    try:
        for threads, batch in runs:
            torch.set_num_threads(threads)
            _score(spec, folder, 0, f"t{threads}-b{batch}", batch_size=batch)
    finally:
        torch.set_num_threads(before)
    for part in ("features", "tokens"):
        files = {(folder / f"t{t}-b{b}.{part}.parquet").read_bytes() for t, b in runs}
        assert len(files) == 1, part


@pytest.mark.parametrize("kind", ["causal", "masked"])
def test_overlapped_chunks_write_byte_identical_files(kind, tiny_causal, tiny_masked, shard_inputs):
    # What a GPU job does by default (next chunk tokenised, last chunk reduced and written, in threads), forced
    # here on the CPU: the same files as the one-thing-at-a-time loop, chunk by chunk.
    folder = shard_inputs / "of1"
    spec = ModelSpec("tiny", str(tiny_causal if kind == "causal" else tiny_masked), kind, mask_fraction=0.3)
    plain = _score(spec, folder, 0, f"plain-{kind}", chunk_size=4, overlap=False)
    overlapped = _score(spec, folder, 0, f"overlapped-{kind}", chunk_size=4, overlap=True)
    assert plain == overlapped == 21
    for part in ("features", "tokens"):
        a, b = (folder / f"{stem}-{kind}.{part}.parquet" for stem in ("plain", "overlapped"))
        assert pq.ParquetFile(a).metadata.num_row_groups > 1
        assert a.read_bytes() == b.read_bytes()


def test_features_are_the_per_token_tables_reduction(tiny_causal, shard_inputs):
    """loss and snp_loss as the token table's own columns; min-k from its float16 arrays, recomputed by hand."""
    folder = shard_inputs / "of1"
    _score(ModelSpec("tiny", str(tiny_causal), "causal"), folder, 0, "f")
    features = pd.read_parquet(folder / "f.features.parquet")
    tokens = pd.read_parquet(folder / "f.tokens.parquet")
    windows = dict(read_fasta(str(folder / "0.fa")))
    rows = zip(features.to_dict("records"), tokens.to_dict("records"), strict=True)
    for f, t in rows:
        assert f["sequence_id"] == t["sequence_id"] and f["n_tokens"] == t["n_tokens"]
        assert f["loss"] == t["loss"]
        assert f["snp_loss"] == t["snp_loss"] or (np.isnan(f["snp_loss"]) and np.isnan(t["snp_loss"]))
        lp = np.asarray(t["token_logprob"], float)
        z = (lp - np.asarray(t["token_mean"], float)) / np.maximum(np.asarray(t["token_std"], float), 1e-6)
        lowest = max(1, int(0.2 * len(lp)))
        assert f["min_k_k0.2"] == np.sort(lp)[:lowest].mean()
        assert f["min_k_pp_k0.2"] == np.sort(z)[:lowest].mean()
        if t["kind"] == "window":
            assert f["zlib_bytes"] == len(zlib.compress(windows[t["window_id"]].encode(), 9))
        else:
            assert pd.isna(f["zlib_bytes"])


def test_a_shard_killed_mid_write_leaves_no_output_and_the_rerun_writes_it_whole(tiny_causal, shard_inputs, tmp_path):
    folder = shard_inputs / "of1"
    script = tmp_path / "kill.py"
    script.write_text(
        f"""
import os, signal, sys
sys.path.insert(0, {str(REPO / "workflow_scripts")!r})
from pathlib import Path
from gfm_audit.models import ModelSpec
from gfm_audit.privacy import features, scoring
written = features.ShardWriter.write
def write_then_die(self, columns):
    written(self, columns)
    os.kill(os.getpid(), signal.SIGKILL)  # after the first row group: the file is half written
features.ShardWriter.write = write_then_die
folder = Path({str(folder)!r})
scoring.score_shard(
    ModelSpec("tiny", {str(tiny_causal)!r}, "causal"),
    windows_fasta=str(folder / "0.fa"), neighbors_fasta=str(folder / "0.n.fa"),
    neighbors_tsv=str(folder / "0.n.tsv"), snps_path=str(folder / "0.snps.tsv.gz"),
    features=[], batch_size=4, seed=0, chunk_size=3,
    features_path=folder / "k.features.parquet", tokens_path=folder / "k.tokens.parquet", progress=False,
)
"""
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert result.returncode == -signal.SIGKILL
    assert not (folder / "k.features.parquet").exists() and not (folder / "k.tokens.parquet").exists()
    assert list(folder.glob(".k.features.parquet.partial-*"))  # what the killed job had written, under a temp name
    _score(ModelSpec("tiny", str(tiny_causal), "causal"), folder, 0, "k")
    assert pq.read_table(folder / "k.features.parquet").num_rows == 21
    assert not list(folder.glob(".k.*.partial-*"))  # the rerun removed what the killed job had left


@pytest.mark.parametrize("space", ["full from the start", "full half way"])
def test_a_full_disk_stops_a_shard_in_one_line_naming_its_outputs_and_leaves_no_partial_file(
    space, tiny_causal, shard_inputs, tmp_path
):
    folder, disk, log = shard_inputs / "of1", tmp_path / "disk", tmp_path / "score.log"
    features, tokens = disk / "features" / "tiny" / "shard-0.parquet", disk / "scores" / "tiny" / "shard-0.parquet"
    # A rule script's run: the library's score_shard under run_rule, its outputs on a disk with no space left.
    code = f"""
import sys
sys.path.insert(0, {str(REPO / "workflow_scripts")!r})
from pathlib import Path
from types import SimpleNamespace
from gfm_audit.models import ModelSpec
from gfm_audit.privacy import scoring
from gfm_audit.rule_script import run_rule
folder = Path({str(folder)!r})
job = SimpleNamespace(rule="score_shard", log=[{str(log)!r}], output=[{str(features)!r}, {str(tokens)!r}])
run_rule(job, lambda job: scoring.score_shard(
    ModelSpec("tiny", {str(tiny_causal)!r}, "causal"),
    windows_fasta=str(folder / "0.fa"), neighbors_fasta=str(folder / "0.n.fa"),
    neighbors_tsv=str(folder / "0.n.tsv"), snps_path=str(folder / "0.snps.tsv.gz"),
    features=[], batch_size=4, seed=0, chunk_size=3,
    features_path=job.output[0], tokens_path=job.output[1], progress=False,
))
"""
    # Half way: room for the features (4 KiB) but not for the per-token table too (12 KiB, written a row group
    # of 3 sequences at a time).
    full = space == "full from the start"
    status, stderr, left = run_on_a_full_disk(code, disk, size_kib=64 if full else 12, fill=full)
    assert status == 1 and len(stderr.strip().splitlines()) == 1, stderr
    assert "disk is full" in stderr and str(features) in stderr and "Traceback" not in stderr
    assert left == (["filler"] if full else [])
    assert [line for line in log.read_text().splitlines() if "ERROR" in line][0].endswith(stderr.strip()[7:])


def test_a_shard_whose_closing_write_fails_has_removed_its_temporary_when_the_error_arrives(
    tiny_causal, shard_inputs, tmp_path
):
    folder, disk = shard_inputs / "of1", tmp_path / "disk"
    # 8 KiB hold the features' row groups (4 KiB of the file) but not the footer Parquet writes on closing. The
    # temporary must be gone when the error is raised, not only once the process exits and its objects are freed.
    code = f"""
import os, sys
sys.path.insert(0, {str(REPO / "workflow_scripts")!r})
from pathlib import Path
from gfm_audit.models import ModelSpec
from gfm_audit.privacy import scoring
folder = Path({str(folder)!r})
try:
    scoring.score_shard(
        ModelSpec("tiny", {str(tiny_causal)!r}, "causal"),
        windows_fasta=str(folder / "0.fa"), neighbors_fasta=str(folder / "0.n.fa"),
        neighbors_tsv=str(folder / "0.n.tsv"), snps_path=str(folder / "0.snps.tsv.gz"),
        features=[], batch_size=4, seed=0, chunk_size=3,
        features_path={str(disk / "shard-0.parquet")!r}, progress=False,
    )
except OSError as error:
    print("while the error is held:", os.listdir({str(disk)!r}), file=sys.stderr)
    os._exit(3)
"""
    status, stderr, left = run_on_a_full_disk(code, disk, size_kib=8, fill=False)
    assert status == 3 and "while the error is held: []" in stderr, stderr
    assert left == []


def _split(tmp_path, name, ids, n_shards):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "w.fa").write_text("".join(f">{w}\nACGT\n" for w in ids))
    snps = "window_id\toffset\n" + "".join(f"{w}\t1\n" for w in ids)
    with gzip.open(folder / "s.tsv.gz", "wt") as fh:
        fh.write(snps)
    fastas = [folder / f"{i}.fa" for i in range(n_shards)]
    split_windows(
        folder / "w.fa",
        folder / "s.tsv.gz",
        n_shards=n_shards,
        out_fastas=fastas,
        out_snps=[folder / f"{i}.tsv.gz" for i in range(n_shards)],
    )
    return [list(read_fasta(str(f))) for f in fastas], [
        gzip.open(folder / f"{i}.tsv.gz", "rt").read().splitlines()[1:] for i in range(n_shards)
    ]


def test_adding_windows_moves_no_window_to_another_shard(tmp_path):
    before = sorted(f"z:{i * 100}-{i * 100 + 50}" for i in range(40))
    after = sorted(before + [f"z:{i * 100 + 50}-{i * 100 + 100}" for i in range(40)])  # new windows in between
    (old, old_snps), (new, _) = _split(tmp_path, "a", before, 4), _split(tmp_path, "b", after, 4)
    assert sorted(w for shard in old for w in shard) == sorted(before) and all(old)
    for shard in range(4):
        assert [w for w in new[shard] if w in before] == old[shard]
        assert old_snps[shard] == [f"{w}\t1" for w in old[shard]]  # each window's SNPs go with it
        assert all(shard_of(w, 4) == shard for w in new[shard])


def test_missing_model_folder_is_named(tmp_path):
    spec = ModelSpec("mine", str(tmp_path / "nowhere"), "causal")
    with pytest.raises(InputError, match=r"model 'mine': checkpoint folder .*nowhere does not exist"):
        load_model(spec)


def test_masked_checkpoint_declared_causal_and_the_reverse_fail(tiny_causal, tiny_masked):
    with pytest.raises(InputError, match=r"is a masked LM \(EsmForMaskedLM\) but models.m.kind is causal"):
        load_model(ModelSpec("m", str(tiny_masked), "causal"))
    with pytest.raises(InputError, match=r"is a causal LM \(GPT2LMHeadModel\) but models.c.kind is masked"):
        load_model(ModelSpec("c", str(tiny_causal), "masked"))


def test_checkpoint_with_remote_code_needs_trust_remote_code(tmp_path, tiny_causal):
    folder = tmp_path / "mystery"
    shutil.copytree(tiny_causal, folder)
    config = json.loads((folder / "config.json").read_text())
    # Code of no family that gfm-audit reads natively (those never need it: tests/test_gfm_loader.py).
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_mystery.MysteryForCausalLM"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(InputError) as err:
        load_model(ModelSpec("mystery", str(folder), "causal"))
    message = str(err.value)
    assert "needs its own Python code" in message and "trust_remote_code" in message and "\n" not in message


def test_base_the_tokenizer_cannot_encode_is_excluded_and_counted_or_stops_above_the_share(tiny_causal):
    spec = ModelSpec("tiny", str(tiny_causal), "causal")
    records = _records("ACGTNNACGT", "ACGTRACGT")  # N is in the vocabulary, the IUPAC code R is not: [UNK]
    with pytest.raises(InputError, match=r"sequence s1: 1 of its 9 bases .* \('R' at offset 4 is \[UNK\]\)"):
        score_sequences(spec, records, snp_offsets={}, batch_size=2, seed=0, device="cpu")
    rows = score_sequences(
        spec, records, snp_offsets={}, batch_size=2, seed=0, device="cpu", max_excluded_share=0.2
    ).to_pylist()
    assert [r["n_excluded"] for r in rows] == [0, 1]
    assert rows[1]["n_tokens"] == 8 and 4 not in rows[1]["token_start"]  # [UNK] is input, never a target


def test_sequence_longer_than_the_model_fails_clearly(tiny_causal):
    spec = ModelSpec("tiny", str(tiny_causal), "causal")  # 300 positions
    with pytest.raises(InputError, match=r"sequence s0 is 401 tokens, longer than model 'tiny' takes \(300\)"):
        score_sequences(spec, _records("A" * 400), snp_offsets={}, batch_size=2, seed=0, device="cpu")
    limited = ModelSpec("tiny", str(tiny_causal), "causal", max_length=50)
    with pytest.raises(InputError, match=r"takes \(50\)"):
        score_sequences(limited, _records("A" * 60), snp_offsets={}, batch_size=2, seed=0, device="cpu")


def test_safetensors_are_required_unless_a_weights_only_bin_is_present(tmp_path, tiny_causal):
    folder = tmp_path / "noweights"
    shutil.copytree(tiny_causal, folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(InputError, match="holds no weights"):
        load_model(ModelSpec("nw", str(folder), "causal"))


class _Payload:
    """Stands for any object a pickle may carry besides tensors."""


def _non_state_dicts(state):
    return {
        "function": {**state, "hook": print},
        "class instance": {**state, "extra": _Payload()},
        "nested state dict": {"state_dict": state},
        "list of tensors": list(state.values()),
    }


@pytest.mark.parametrize("content", ["function", "class instance", "nested state dict", "list of tensors"])
def test_pickled_checkpoint_that_is_not_a_plain_state_dict_is_refused_in_one_line_in_the_rule_log(
    content, tmp_path, tiny_causal
):
    from types import SimpleNamespace

    from gfm_audit.rule_script import run_rule
    from safetensors.torch import load_file

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_causal, folder)
    state = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    torch.save(_non_state_dicts(state)[content], folder / "pytorch_model.bin")
    log = tmp_path / "score.log"
    rule = SimpleNamespace(log=[str(log)], rule="score_shard")

    with pytest.raises(SystemExit):
        run_rule(rule, lambda _: load_model(ModelSpec("tiny", str(folder), "causal")))

    errors = [line for line in log.read_text().splitlines() if "ERROR" in line]
    assert len(errors) == 1, log.read_text()
    assert "models.tiny.path" in errors[0] and str(folder / "pytorch_model.bin") in errors[0]
    assert "safetensors" in errors[0] and "weights_only" not in errors[0]


def test_pickled_plain_state_dict_still_loads(tmp_path, tiny_causal):
    from safetensors.torch import load_file

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_causal, folder)
    state = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    model = load_model(ModelSpec("tiny", str(folder), "causal"))
    assert torch.equal(model.state_dict()["transformer.wte.weight"], state["transformer.wte.weight"])


def _save_masked(path, tokenizer_dir, model_type):
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM, EsmConfig, EsmForMaskedLM

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    common = {
        "vocab_size": len(tok),
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "pad_token_id": tok.pad_token_id,
    }
    torch.manual_seed(0)
    if model_type == "bert":  # DNABERT-2's architecture family, with its kind of BPE tokenizer
        model = BertForMaskedLM(BertConfig(max_position_embeddings=512, **common))
    else:  # Nucleotide Transformer v1: EsmForMaskedLM with a k-mer tokenizer
        model = EsmForMaskedLM(EsmConfig(max_position_embeddings=512, mask_token_id=tok.mask_token_id, **common))
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.mark.parametrize("model_type", ["bert", "esm"])
def test_multi_base_tokens_are_scored_over_the_sampled_bases(model_type, tmp_path):
    tokenizer_dir = save_bpe_tokenizer(tmp_path / "t") if model_type == "bert" else save_kmer_tokenizer(tmp_path / "t")
    folder = _save_masked(tmp_path / "m", tokenizer_dir, model_type)
    spec = ModelSpec("m", str(folder), "masked", masking="sampled", mask_fraction=0.05)
    window = demo_sequence(10_000, 10_300)
    neighbor = window[:100] + ("A" if window[100] != "A" else "G") + window[101:]
    rows = score_sequences(
        spec, _records(window, neighbor), snp_offsets={"w0": np.array([100, 200])}, batch_size=8, seed=0, device="cpu"
    )
    for row, text in zip(rows.to_pylist(), (window, neighbor), strict=True):
        spans = list(zip(row["token_start"], row["token_end"], strict=True))
        assert any(s <= 100 < e for s, e in spans) and any(s <= 200 < e for s, e in spans)
        assert row["snp_loss"] is not None and all(0 <= s < e <= len(text) for s, e in spans)
        assert len(spans) < len(text)  # multi-base tokens, a sample of them


def test_a_roberta_style_model_takes_its_position_table_less_the_rows_before_padding(tmp_path):
    from transformers import RobertaConfig, RobertaForMaskedLM

    tok = char_tokenizer()
    tok.save_pretrained(tmp_path / "m")
    # 34 rows, pad id taken from the tokenizer: positions run pad+1 .. pad+n, so n = 34 - (pad + 1) tokens fit.
    pad = tok.pad_token_id
    torch.manual_seed(0)
    config = RobertaConfig(
        vocab_size=len(tok),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=34,
        pad_token_id=pad,
    )
    RobertaForMaskedLM(config).save_pretrained(tmp_path / "m")
    spec = ModelSpec("rob", str(tmp_path / "m"), "masked", masking="exact")
    fits = 34 - (pad + 1)
    special = len(tok("ACGT")["input_ids"]) - 4  # tokens the tokenizer adds around the bases
    longest = "ACGT" * fits
    rows = score_sequences(
        spec, _records(longest[: fits - special]), snp_offsets={}, batch_size=2, seed=0, device="cpu"
    ).to_pylist()
    assert rows[0]["n_tokens"] == fits - special
    with pytest.raises(InputError, match=rf"is {fits + 1} tokens, longer than model 'rob' takes \({fits}\)"):
        score_sequences(
            spec, _records(longest[: fits + 1 - special]), snp_offsets={}, batch_size=2, seed=0, device="cpu"
        )
