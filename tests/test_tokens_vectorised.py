"""Vectorised tokenisation (gfm_audit.tokens._vectorised) against each tokenizer's own output."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pysam
import pytest
from gfm_audit import tokens
from gfm_audit.char_lm import char_tokenizer
from gfm_audit.errors import InputError
from gfm_audit.gfm import caduceus, dnabert2, hyenadna, nt_v2
from gfm_audit.tokens import _vectorised

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "gfm"


def _kmer_vocab(k: int) -> list[str]:
    return ["".join(p) for p in itertools.product("ATCG", repeat=k)]


def esm_6mer_tokenizer(tmp: Path):
    """NT v1 style: transformers' own (slow) EsmTokenizer over a 6-mer vocab.txt, <cls> before and <eos> after."""
    from transformers import EsmTokenizer

    vocab = ["<unk>", "<pad>", "<mask>", "<cls>", "<eos>", "<bos>", *_kmer_vocab(6), "A", "T", "C", "G", "N"]
    path = tmp / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n")
    return EsmTokenizer(str(path))


def chunked_6mer_tokenizer():
    """Every 6 bases from the start one token (k-mers over A/C/G/T), the tail one token per base, a BOS
    before; a chunk holding N is unknown."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(["<unk>", "<s>", "</s>", "<pad>", "<mask>", *_kmer_vocab(6), *"ACGTN"])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]{6}|[\s\S]"), behavior="isolated")
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )


def generator_6mer_tokenizer():
    """GENERator style: every 6 bases from the start one token, a tail of 1-5 bases (or a chunk with N) one
    ``<oov>``, ``<s>`` before."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(["<pad>", "<s>", "</s>", "<unk>", "<oov>", *_kmer_vocab(6)])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<oov>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(".{1,6}"), behavior="isolated")
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )


EXPECTED = {  # family: (k, mode, folds lower case)
    "demo_char": (1, "runs", False),
    "hyenadna": (1, "runs", False),
    "caduceus": (1, "runs", True),
    "nt_v2": (6, "runs", False),
    "esm_6mer": (6, "runs", False),
    "chunked_6mer": (6, "chunks", False),
    "generator_6mer": (6, "tail", False),
}


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    return {
        "demo_char": char_tokenizer(),
        "hyenadna": hyenadna.load_tokenizer(FIXTURES / "hyenadna"),
        "caduceus": caduceus.load_tokenizer(FIXTURES / "caduceus"),
        "nt_v2": nt_v2.load_tokenizer(FIXTURES / "nt_v2"),
        "esm_6mer": esm_6mer_tokenizer(tmp_path_factory.mktemp("esm")),
        "chunked_6mer": chunked_6mer_tokenizer(),
        "generator_6mer": generator_6mer_tokenizer(),
    }


@pytest.fixture(scope="module")
def demo_windows():
    with pysam.FastaFile(str(REPO / "resources" / "demo" / "z.fa")) as fa:
        genome = fa.fetch("z")
    rng = np.random.default_rng(7)
    starts = rng.integers(0, len(genome) - 400, 300)
    lengths = rng.integers(150, 400, 300)  # most not a multiple of 6
    return [genome[s : s + n] for s, n in zip(starts, lengths, strict=True)]


def _reference(tok, seqs):
    """The tokenizer's own output, one sequence at a time (an InputError where it refuses one)."""
    out = []
    for i, s in enumerate(seqs):
        try:
            out.append(tokens.encode(tok, s, seq_id=f"s{i}", model="m"))
        except InputError as exc:
            out.append(str(exc))
    return out


def _assert_same(got: tokens.Encoded, want: tokens.Encoded) -> None:
    for field in ("ids", "start", "end", "special"):
        a, b = getattr(got, field), getattr(want, field)
        assert a.dtype == b.dtype, field
        np.testing.assert_array_equal(a, b, err_msg=field)


@pytest.mark.parametrize("family", list(EXPECTED))
def test_layout_found_for_character_and_kmer_tokenizers(tokenizers, family):
    lay = _vectorised.layout(tokenizers[family])
    assert lay is not None
    k, mode, folds = EXPECTED[family]
    assert (lay.k, lay.mode) == (k, mode)
    table = lay.single if k == 1 else lay.code  # lower case reads as upper case where the tokenizer folds it
    assert bool(table[ord("a")] == table[ord("A")]) is folds


@pytest.mark.parametrize("family", list(EXPECTED))
def test_vectorised_equals_tokenizer_on_demo_windows(tokenizers, demo_windows, family):
    tok = tokenizers[family]
    got = _vectorised.encode_batch(tok, demo_windows, seq_ids=[f"s{i}" for i in range(len(demo_windows))])
    want = _reference(tok, demo_windows)
    assert got is not None and len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        _assert_same(g, w)


def _edge_cases(windows: list[str]) -> list[str]:
    w = windows[0]
    return [
        w[:200] + "N" * 13 + w[200:260],  # an N run inside
        "NNNNN" + w[:97],  # starting with N
        w[:101] + "NNNNNNN",  # ending with N
        w[:50] + "N" + w[50:57] + "N" + w[57:120],  # single Ns a few bases apart
        "N" * 12,
        w[:60].lower() + w[60:131],  # lower case
        w[:61].lower(),
        w[:1],
        w[:5],
        w[:7],
        w[:13],  # lengths not a multiple of 6
        w[:6],
        w[:12],
        w[:90] + "n" + w[90:100],
    ]


@pytest.mark.parametrize("family", list(EXPECTED))
def test_vectorised_equals_tokenizer_on_edge_cases(tokenizers, demo_windows, family):
    """N runs, lower case and tails, one sequence at a time (a refused one must be refused the same way)."""
    tok = tokenizers[family]
    cases = _edge_cases(demo_windows)
    want = _reference(tok, cases)
    for i, (seq, w) in enumerate(zip(cases, want, strict=True)):
        if isinstance(w, str):
            with pytest.raises(InputError) as err:
                _vectorised.encode_batch(tok, [seq], seq_ids=[f"s{i}"], model="m")
            assert str(err.value) == w
        else:
            (g,) = _vectorised.encode_batch(tok, [seq], seq_ids=[f"s{i}"], model="m")
            _assert_same(g, w)


@pytest.mark.parametrize("family", list(EXPECTED))
def test_vectorised_batch_mixing_covered_and_fallback_sequences_keeps_order(tokenizers, demo_windows, family):
    tok = tokenizers[family]
    edge = _edge_cases(demo_windows)
    cases = [c for c, w in zip(edge, _reference(tok, edge), strict=True) if not isinstance(w, str)]
    batch = [x for pair in zip(demo_windows[: len(cases)], cases, strict=True) for x in pair]
    got = _vectorised.encode_batch(tok, batch, seq_ids=[f"s{i}" for i in range(len(batch))])
    for g, w in zip(got, _reference(tok, batch), strict=True):
        _assert_same(g, w)


def test_nt_layout_by_hand(tokenizers):
    """ACGTAC N A C: one 6-mer, then N, then the 2-base tail one base per token, after <cls>."""
    vocab = (FIXTURES / "nt_v2" / "vocab.txt").read_text().split()
    (enc,) = _vectorised.encode_batch(tokenizers["nt_v2"], ["ACGTACNAC"], seq_ids=["x"])
    assert enc.ids.tolist() == [vocab.index(t) for t in ("<cls>", "ACGTAC", "N", "A", "C")]
    assert enc.start.tolist() == [0, 0, 6, 7, 8]
    assert enc.end.tolist() == [0, 6, 7, 8, 9]
    assert enc.special.tolist() == [True, False, False, False, False]


def test_bpe_tokenizer_has_no_layout_and_keeps_its_batched_call(demo_windows):
    tok = dnabert2.load_tokenizer(FIXTURES / "dnabert2")
    assert _vectorised.layout(tok) is None
    assert _vectorised.encode_batch(tok, demo_windows[:3], seq_ids=["a", "b", "c"]) is None
    got = tokens.encode_many(tok, demo_windows[:20], seq_ids=[str(i) for i in range(20)])
    for g, w in zip(got, _reference(tok, demo_windows[:20]), strict=True):
        _assert_same(g, w)


def test_encode_many_takes_the_vectorised_path(tokenizers, demo_windows, monkeypatch):
    tok = tokenizers["hyenadna"]
    _vectorised.layout(tok)
    # Were the tokenizer called at all (it is not, for covered sequences), this would fail.
    monkeypatch.setattr(type(tok), "__call__", lambda *a, **k: pytest.fail("tokenizer called"))
    got = tokens.encode_many(tok, demo_windows[:50], seq_ids=[str(i) for i in range(50)])
    monkeypatch.undo()
    for g, w in zip(got, _reference(tok, demo_windows[:50]), strict=True):
        _assert_same(g, w)
