"""Stride masking of masked models: k passes per sequence, pass j masking the scored tokens of rank j mod k."""

import itertools
from collections import Counter

import numpy as np
import pytest
import torch
from conftest import demo_sequence
from gfm_audit.config import validate_config
from gfm_audit.errors import InputError
from gfm_audit.models import ModelSpec, load_model, load_tokenizer
from gfm_audit.privacy import scoring
from gfm_audit.privacy.scoring import (
    Scorer,
    ScoringOptions,
    SeqRecord,
    score_sequences,
    scored_positions_many,
    stride_passes,
)
from gfm_audit.tokens import encode_many

TEXTS = [demo_sequence(0, 23), demo_sequence(300, 310), demo_sequence(700, 704), demo_sequence(1200, 1231)]


def _records(texts):
    return [SeqRecord(f"s{i}", f"w{i}", "window", None, None, t) for i, t in enumerate(texts)]


def _spec(folder, masking="stride", **fields):
    return ModelSpec("tiny", str(folder), "masked", masking=masking, **fields)


def _kmer_tokenizer_without_n(path):
    """A k-mer tokenizer whose vocabulary lacks N: N becomes <unk>, a token that stands for no DNA (excluded)."""
    from transformers import EsmTokenizer

    path.mkdir(parents=True, exist_ok=True)
    kmers = ["".join(p) for p in itertools.product("ACGT", repeat=3)]
    (path / "vocab.txt").write_text("\n".join(["<unk>", "<pad>", "<mask>", "<cls>", "<eos>", *kmers, *"ACGT"]) + "\n")
    return EsmTokenizer(
        str(path / "vocab.txt"), unk_token="<unk>", cls_token="<cls>", pad_token="<pad>", mask_token="<mask>"
    )


def _pass_sets(scorable: np.ndarray, k: int) -> list[frozenset]:
    """Reference: the token positions each pass masks, from the scorable flags by a loop."""
    tokens = [t for t, ok in enumerate(scorable) if ok]
    return [frozenset(tokens[j::k]) for j in range(k) if tokens[j::k]]


@pytest.mark.parametrize("k", [1, 2, 3, 6, 1000])
def test_stride_masks_cover_every_scorable_token_once_and_nothing_else(k, tmp_path, tiny_masked):
    tok = _kmer_tokenizer_without_n(tmp_path / "kmer")
    texts = ["ACGTNNACGTACGATTGCA", "ACGTAC", "NNNNACG", "GATTACAGATTACAGATTACAGGG", "AC"]
    batch = encode_many(tok, texts, seq_ids=[f"s{i}" for i in range(len(texts))])
    assert batch.excluded.any() and not batch.scorable[batch.offsets[:-1]].any()  # <unk> and <cls> are present
    positions = scored_positions_many(batch, "masked", masking="stride")
    scorer = Scorer(
        load_model(_spec(tiny_masked)),
        "masked",
        pad_id=tok.pad_token_id,
        mask_id=tok.mask_token_id,
        batch_size=4,
        device="cpu",
    )
    built = Counter()
    for ids, attention, rows in scorer._batches(batch, positions, stride=k):
        dest = np.arange(positions.offsets[-1])[rows.dest]  # the flat index of each scored token
        seq = np.searchsorted(positions.offsets, dest, "right") - 1
        seq_of_row = {int(r): int(s) for r, s in zip(rows.row, seq, strict=True)}
        assert sorted(seq_of_row) == list(range(len(ids)))  # every copy masks something
        for r, s in seq_of_row.items():
            original = batch.ids[batch.offsets[s] : batch.offsets[s + 1]]
            n = len(original)
            masked = np.flatnonzero(ids[r, :n] != original)
            assert (ids[r, masked] == tok.mask_token_id).all() and attention[r, :n].all()
            assert (ids[r, n:] == tok.pad_token_id).all()
            built[(s, frozenset(masked.tolist()))] += 1
        np.testing.assert_array_equal(
            rows.targets,
            [
                batch.ids[batch.offsets[s] + p]
                for s, p in zip([seq_of_row[int(r)] for r in rows.row], rows.source, strict=True)
            ],
        )
    expected = Counter((s, m) for s, enc in enumerate(batch) for m in _pass_sets(enc.scorable, k))
    assert built == expected


def test_stride_passes_number_copies_by_sequence_and_pass():
    copy, passes = stride_passes(np.array([5, 0, 2, 3]), 3)
    np.testing.assert_array_equal(passes, [3, 0, 2, 3])
    # Ranks 0 1 2 3 4 | (none) | 0 1 | 0 1 2: copy = first copy of the sequence + rank mod 3.
    np.testing.assert_array_equal(copy, [0, 1, 2, 0, 1, 3, 4, 5, 6, 7])


@pytest.mark.parametrize("k", [31, 10_000])
def test_stride_at_least_the_length_equals_exact_bit_for_bit(k, tiny_masked):
    # 31 is the longest sequence's number of scored tokens: for the shorter ones, passes beyond theirs are empty.
    exact = score_sequences(
        _spec(tiny_masked, "exact"), _records(TEXTS), snp_offsets={}, batch_size=5, seed=0, device="cpu"
    ).to_pylist()
    stride = score_sequences(
        _spec(tiny_masked, stride_k=k), _records(TEXTS), snp_offsets={}, batch_size=5, seed=0, device="cpu"
    ).to_pylist()
    assert max(row["n_tokens"] for row in exact) == 31
    assert stride == exact


def test_small_stride_keeps_exacts_tokens_and_changes_their_scores(tiny_masked):
    exact, stride = (
        score_sequences(spec, _records(TEXTS), snp_offsets={}, batch_size=5, seed=0, device="cpu").to_pylist()
        for spec in (_spec(tiny_masked, "exact"), _spec(tiny_masked, stride_k=2))
    )
    for e, s in zip(exact, stride, strict=True):
        for column in ("n_tokens", "n_excluded", "token_start", "token_end"):
            assert s[column] == e[column]
    # Masking every other token removes context: some scores move.
    assert any(s["token_logprob"] != e["token_logprob"] for e, s in zip(exact, stride, strict=True))


def _by_hand(model, tok, text: str, k: int) -> np.ndarray:
    """(3, n) log p, mean, std of every base of ``text``: one unbatched forward per pass, masking positions
    1 + j, 1 + j + k, ... (position 0 is [BOS]); mean and std in float64."""
    ids = tok(text)["input_ids"]
    scored = list(range(1, len(ids)))
    out = np.zeros((3, len(scored)))
    for j in range(k):
        masked = list(ids)
        for t in scored[j::k]:
            masked[t] = tok.mask_token_id
        with torch.no_grad():
            logits = model(torch.tensor([masked])).logits[0]
        for t in scored[j::k]:
            logp = torch.log_softmax(logits[t].float(), -1)
            p64 = torch.log_softmax(logits[t].double(), -1)
            mean = float((p64.exp() * p64).sum())
            out[:, t - 1] = float(logp[ids[t]]), mean, float((p64.exp() * (p64 - mean) ** 2).sum().sqrt())
    return out


@pytest.mark.parametrize("k", [2, 3])
def test_stride_equals_masking_each_pass_by_hand(k, tiny_masked):
    spec = _spec(tiny_masked, stride_k=k)
    model, tok = load_model(spec), load_tokenizer(spec)
    batch = encode_many(tok, TEXTS, seq_ids=[f"s{i}" for i in range(len(TEXTS))])
    positions = scored_positions_many(batch, "masked", masking="stride")
    expected = [_by_hand(model, tok, text, k) for text in TEXTS]
    for batch_size in (1, 7):
        scorer = Scorer(
            model,
            "masked",
            pad_id=tok.pad_token_id,
            mask_id=tok.mask_token_id,
            batch_size=batch_size,
            device="cpu",
            options=ScoringOptions(prefetch=0),
        )
        got = scorer.score(batch, positions, stride=k)
        for i, want in enumerate(expected):
            have = got.flat[:, got.offsets[i] : got.offsets[i + 1]]
            if batch_size == 1:
                # One pass per forward: the forward the hand loop runs, same shape and input, so the same kernels
                # and summation order on any CPU (AVX-512, AVX2 or none): log p is equal bit for bit.
                np.testing.assert_array_equal(have[0], want[0].astype(np.float32))
            else:
                # Several passes of unequal length per batch (padding, attention mask): other matrix shapes, whose
                # blocked float32 sums may round differently. log p here is below 4 in magnitude, where a float32
                # ulp is 2.4e-7 (2-ulp differences seen with AVX-512, AVX2 and no vector kernels); 2e-6 is 8 ulps.
                np.testing.assert_allclose(have[0], want[0], rtol=0, atol=2e-6)
            # Mean and std: the scorer's float32 sums over the vocabulary against float64 ones; its std comes from
            # E[(log p)^2] - mean^2, which cancels: rounding of E[(log p)^2] (about 5 here, ulp 4.8e-7, summed over
            # the vocabulary) grows by 1 / (2 std), about 4 for std 0.13; differences up to 9e-6 seen, 5e-5 bounds them.
            np.testing.assert_allclose(have[1], want[1], rtol=0, atol=5e-6)
            np.testing.assert_allclose(have[2], want[2], rtol=0, atol=5e-5)
    rows = score_sequences(spec, _records(TEXTS), snp_offsets={}, batch_size=1, seed=0, device="cpu").to_pylist()
    for row, want in zip(rows, expected, strict=True):
        assert row["loss"] == pytest.approx(-want[0].astype(np.float32).astype(np.float64).mean(), rel=1e-6)


@pytest.mark.parametrize(("k", "batch_size"), [(6, 1), (3, 1), (3, 4)])
def test_stride_runs_k_forward_rows_per_sequence(k, batch_size, tiny_masked, monkeypatch):
    """Each sequence is k masked copies (fewer only when it has fewer scored tokens: the 4-base one), through the
    forward in batches of batch_size copies."""
    calls, rows = [], []
    load = scoring.load_model

    def counted(*args, **kwargs):
        model = load(*args, **kwargs)
        model.register_forward_pre_hook(count, with_kwargs=True)
        return model

    def count(_module, _args, inputs):
        calls.append(1)
        rows.append(len(inputs["input_ids"]))

    monkeypatch.setattr(scoring, "load_model", counted)
    table = score_sequences(
        _spec(tiny_masked, stride_k=k), _records(TEXTS), snp_offsets={}, batch_size=batch_size, seed=0, device="cpu"
    ).to_pylist()
    n_tokens = [row["n_tokens"] for row in table]
    assert n_tokens == [23, 10, 4, 31]
    copies = sum(min(k, n) for n in n_tokens)
    assert copies == k * 3 + min(k, 4)
    assert sum(rows) == copies and len(calls) == -(-copies // batch_size)


# --- config ----------------------------------------------------------------------------------------------------


def _config(**model):
    return {
        "reference": {"fasta": "a.fa", "vcf": "b.vcf.gz"},
        "models": {"m": {"path": "x", "kind": "masked", **model}},
        "target": "m",
    }


@pytest.mark.parametrize("k", [0, -2])
def test_stride_k_below_one_is_refused_naming_the_key(k):
    with pytest.raises(InputError, match=rf"^config error in the config: key models.m.stride_k: {k} is less than"):
        validate_config(_config(masking="stride", stride_k=k))


def test_stride_k_larger_than_a_window_is_refused_naming_both_numbers():
    config = _config(masking="stride", stride_k=300) | {"windows": {"length": 256}}
    with pytest.raises(InputError, match=r"models.m.stride_k is 300, more than the 256 bases of a window"):
        validate_config(config)
    validate_config(_config(masking="stride", stride_k=256) | {"windows": {"length": 256}})


def test_stride_k_that_is_not_an_integer_is_refused():
    with pytest.raises(InputError, match=r"key models.m.stride_k: 2.5 is not of type 'integer'"):
        validate_config(_config(masking="stride", stride_k=2.5))


@pytest.mark.parametrize("masking", ["exact", "sampled", None])
def test_stride_k_with_another_masking_is_refused(masking):
    model = {"stride_k": 3} if masking is None else {"masking": masking, "stride_k": 3}
    with pytest.raises(
        InputError,
        match=rf"models.m.stride_k is read only by masking stride, but masking is "
        rf"{masking or 'sampled'}; set models.m.masking: stride or remove stride_k$",
    ):
        validate_config(_config(**model))


def test_stride_k_defaults_to_six_and_is_read_into_the_spec():
    unset = validate_config(_config(masking="stride"))["models"]["m"]
    assert "stride_k" not in unset and ModelSpec.from_config("m", unset).stride_k == 6
    assert scoring.stride_of(ModelSpec.from_config("m", unset)) == 6
    three = validate_config(_config(masking="stride", stride_k=3))["models"]["m"]
    assert scoring.stride_of(ModelSpec.from_config("m", three)) == 3
    assert scoring.stride_of(ModelSpec.from_config("m", {**three, "masking": "exact"})) is None
