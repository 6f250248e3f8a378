"""Scoring: per-token log-probs against hand computation, offsets, shards, bad models."""

import json
import math
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from conftest import NEIGHBOR_PARAMS, demo_sequence, run_windows, save_bpe_tokenizer, save_kmer_tokenizer
from gfm_audit.char_lm import char_tokenizer
from gfm_audit.errors import InputError
from gfm_audit.models import ModelSpec, load_model, load_tokenizer
from gfm_audit.privacy.neighbors import make_neighbors
from gfm_audit.privacy.scoring import ScoringOptions, SeqRecord, merge_shards, score_sequences, score_shard
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
    fasta, vcf, _ = small_reference
    _, out, _ = run_windows(tmp_path, fasta, vcf, n=7, length=120)
    params = {**NEIGHBOR_PARAMS, "probs": [0.5], "per_prob": 1}
    make_neighbors(
        str(out / "windows.fa"), str(out / "snps.tsv.gz"), params=params, out_fasta=out / "n.fa", out_tsv=out / "n.tsv"
    )
    return out


def _score(spec, out, shard, n_shards, path):
    return score_shard(
        spec,
        windows_fasta=str(out / "windows.fa"),
        neighbors_fasta=str(out / "n.fa"),
        neighbors_tsv=str(out / "n.tsv"),
        snps_path=str(out / "snps.tsv.gz"),
        shard=shard,
        n_shards=n_shards,
        batch_size=4,
        seed=0,
        out_path=path,
        progress=False,
    )


def test_merged_shards_equal_unsharded_scoring_and_reruns_are_identical(tiny_causal, shard_inputs):
    out = shard_inputs
    spec = ModelSpec("tiny", str(tiny_causal), "causal")
    _score(spec, out, 0, 1, out / "whole.parquet")
    shards = [out / f"shard-{i}.parquet" for i in range(3)]
    sizes = [_score(spec, out, i, 3, shards[i]) for i in range(3)]
    assert sizes == [6, 9, 6]  # 7 windows in blocks of 2, 3, 2; each with one snp and one control neighbor
    merge_shards(shards, out / "merged.parquet")
    whole, merged = pq.read_table(out / "whole.parquet"), pq.read_table(out / "merged.parquet")
    assert merged.equals(whole)
    _score(spec, out, 0, 1, out / "again.parquet")
    assert (out / "again.parquet").read_bytes() == (out / "whole.parquet").read_bytes()
    kinds = whole.column("kind").to_pylist()
    assert kinds[:3] == ["window", "snp", "control"]
    assert not list(out.glob(".*partial*"))


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
