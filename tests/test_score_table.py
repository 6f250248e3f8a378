"""The score table and the per-sequence features from concatenated arrays and offsets equal those built
sequence by sequence."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from gfm_audit.char_lm import char_tokenizer
from gfm_audit.gfm import dnabert2, nt_v2
from gfm_audit.privacy.features import features_many, sequence_features
from gfm_audit.privacy.score_table import build_table, scored_tokens
from gfm_audit.privacy.scoring import SCHEMA, SeqRecord, _table, scored_positions, scored_positions_many
from gfm_audit.ragged import offsets_of, segment_means
from gfm_audit.tokens import encode_many, tokens_covering
from test_tokens_vectorised import generator_6mer_tokenizer

FIXTURES = Path(__file__).parent / "fixtures" / "gfm"


def loop_table(records, encodings, positions, stats, snp_offsets) -> pa.Table:
    """The table as scoring built it before: one sequence at a time, Python lists into ``from_pydict``."""
    columns: dict[str, list] = {name: [] for name in SCHEMA.names}
    empty = np.zeros(0, dtype=np.int64)
    for r, enc, pos, s in zip(records, encodings, positions, stats, strict=True):
        logp = s[0].astype(np.float64)
        snp_tokens = tokens_covering(enc, snp_offsets.get(r.window_id, empty))[pos]
        columns["sequence_id"].append(r.seq_id)
        columns["window_id"].append(r.window_id)
        columns["kind"].append(r.kind)
        columns["prob"].append(r.prob)
        columns["replicate"].append(r.replicate)
        columns["n_tokens"].append(len(pos))
        if "n_excluded" in columns:
            columns["n_excluded"].append(int(enc.excluded.sum()))
        columns["loss"].append(float(-logp.mean()) if len(pos) else None)
        columns["snp_loss"].append(float(-logp[snp_tokens].mean()) if snp_tokens.any() else None)
        columns["token_logprob"].append(s[0].astype(np.float16))
        columns["token_mean"].append(s[1].astype(np.float16))
        columns["token_std"].append(s[2].astype(np.float16))
        columns["token_start"].append(enc.start[pos])
        columns["token_end"].append(enc.end[pos])
    return pa.Table.from_pydict(columns, schema=SCHEMA)


def _inputs(tokenizer, kind: str, masking: str, rng: np.random.Generator):
    records, texts = [], []
    snp_offsets = {}
    for w in range(12):
        length = int(rng.integers(40, 200))
        window = "".join(rng.choice(list("ACGT"), length))
        wid = f"w{w}"
        if w % 4:  # some windows without SNPs
            snp_offsets[wid] = np.sort(rng.choice(length, int(rng.integers(1, 6)), replace=False)).astype(np.int64)
        records.append(SeqRecord(wid, wid, "window", None, None, window))
        for j in range(int(rng.integers(0, 4))):
            site = int(rng.integers(0, length))
            text = window[:site] + "ACGT"[(("ACGT".index(window[site])) + 1) % 4] + window[site + 1 :]
            records.append(SeqRecord(f"{wid}_n{j}", wid, "snp", 0.1 * (j + 1), j, text))
    texts = [r.text for r in records]
    encodings = encode_many(tokenizer, texts, seq_ids=[r.seq_id for r in records])
    positions = []
    for r, enc in zip(records, encodings, strict=True):
        offsets = rng.choice(len(r.text), int(rng.integers(0, 4)), replace=False) if masking == "sampled" else None
        positions.append(scored_positions(enc, kind, masking=masking, offsets=offsets))
    stats = [rng.normal(-1.4, 0.6, (3, len(p))).astype(np.float32) for p in positions]
    return records, encodings, positions, stats, snp_offsets


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


@pytest.mark.parametrize(
    ("tokenizer_name", "kind", "masking"),
    [
        ("char", "causal", "exact"),
        ("char", "masked", "exact"),
        ("char", "masked", "sampled"),  # some sequences score no token at all
        ("nt_v2", "masked", "sampled"),
        ("dnabert2", "masked", "exact"),
        ("generator", "causal", "exact"),  # a tail of 1-5 bases is one <oov> token
    ],
)
def test_table_from_offsets_equals_the_loop_table(tokenizer_name, kind, masking):
    tokenizer = {
        "char": char_tokenizer,
        "nt_v2": lambda: nt_v2.load_tokenizer(FIXTURES / "nt_v2"),
        "dnabert2": lambda: dnabert2.load_tokenizer(FIXTURES / "dnabert2"),
        "generator": generator_6mer_tokenizer,
    }[tokenizer_name]()
    inputs = _inputs(tokenizer, kind, masking, np.random.default_rng(3))
    want = loop_table(*inputs)
    got = build_table(*inputs[:3], stats=inputs[3], snp_offsets=inputs[4], schema=SCHEMA)
    assert got.schema == want.schema
    assert got.equals(want)
    assert _parquet_bytes(got) == _parquet_bytes(want)
    assert _table(*inputs).equals(want)
    # The comparison can fail: without the SNP sites the table differs.
    assert got.column("snp_loss").null_count < got.num_rows
    assert not build_table(*inputs[:3], stats=inputs[3], snp_offsets={}, schema=SCHEMA).equals(want)


def test_empty_input_gives_an_empty_table():
    table = build_table([], [], [], stats=[], snp_offsets={}, schema=SCHEMA)
    assert table.num_rows == 0 and table.schema == SCHEMA


def test_float16_conversion_is_numpys_bit_for_bit():
    from gfm_audit.privacy.score_table import _float16

    rng = np.random.default_rng(0)
    special = [np.inf, -np.inf, np.nan, 65504.0, 65520.0, 1e-8, -0.0, 6.1e-5, 5.96e-8, 2.98e-8, -1e6]
    values = np.concatenate([rng.normal(-2, 4, 30000), rng.uniform(-7e4, 7e4, 30000), special]).astype(np.float32)
    values = values[: 3 * (len(values) // 3)].reshape(3, -1)
    with np.errstate(over="ignore"):
        want = values.astype(np.float16)
    assert np.array_equal(_float16(values).view(np.uint16), want.view(np.uint16))


def loop_features(stats, snp_tokens, features, text=None) -> dict:
    """The per-sequence features as the scoring job computed them before, one sequence at a time."""
    logp = stats[0].astype(np.float64)
    stored = stats.astype(np.float16).astype(np.float64)
    out = {}
    for name in features:
        if name == "n_tokens":
            out[name] = int(stats.shape[1])
        elif name == "loss":
            out[name] = float(-logp.mean()) if len(logp) else None
        elif name == "snp_loss":
            out[name] = float(-logp[snp_tokens].mean()) if snp_tokens.any() else None
        elif name == "zlib_bytes":
            out[name] = len(zlib.compress(text.encode(), 9)) if text is not None else None
        else:
            k = float(name.rsplit("_k", 1)[1])
            values = (stored[0] - stored[1]) / np.maximum(stored[2], 1e-6) if "_pp_" in name else stored[0]
            n = max(1, int(k * len(values)))
            out[name] = float(np.sort(values)[:n].mean()) if len(values) else float("nan")
    return out


FEATURES = ["n_tokens", "loss", "snp_loss", "zlib_bytes", "min_k_k0.001", "min_k_k0.2", "min_k_pp_k0.2", "min_k_pp_k1"]


def _same(a, b) -> bool:
    return a == b or (a is not None and b is not None and np.isnan(a) and np.isnan(b))


@pytest.mark.parametrize(
    ("tokenizer_name", "kind", "masking"),
    [("char", "causal", "exact"), ("char", "masked", "sampled"), ("generator", "causal", "exact")],
)
def test_features_of_all_sequences_at_once_equal_the_loop_bit_for_bit(tokenizer_name, kind, masking):
    """Real demo bases, sequences with no scored token (sampled), excluded <oov> tails, k% of n below one token;
    log p spread over magnitudes, so that the sums' rounding depends on the order of additions."""
    tokenizer = {"char": char_tokenizer, "generator": generator_6mer_tokenizer}[tokenizer_name]()
    rng = np.random.default_rng(5)
    records, encodings, positions, stats, snp_offsets = _inputs(tokenizer, kind, masking, rng)
    stats = [(s * np.exp(rng.normal(0, 2, s.shape))).astype(np.float32) for s in stats]
    # A sequence of one scored token, and one whose values hold NaN and infinities (a model masking logits).
    stats[0] = stats[0][:, :1]
    positions[0] = positions[0][:1]
    stats[1][:, :3] = np.array([[np.nan], [-np.inf], [np.inf]], dtype=np.float32)
    scored = scored_tokens(records, encodings, positions, stats=stats, snp_offsets=snp_offsets)
    texts = [r.text if r.kind == "window" else None for r in records]
    got = features_many(scored.values, scored.offsets, scored.snp, features=FEATURES, texts=texts)
    empty = np.zeros(0, dtype=np.int64)
    for i, (r, enc, pos, s) in enumerate(zip(records, encodings, positions, stats, strict=True)):
        snp_tokens = tokens_covering(enc, snp_offsets.get(r.window_id, empty))[pos]
        want = loop_features(s, snp_tokens, FEATURES, texts[i])
        one = sequence_features(s, snp_tokens, FEATURES, text=texts[i])
        for name in FEATURES:
            assert _same(got[name][i], want[name]), (r.seq_id, name, got[name][i], want[name])
            assert _same(one[name], want[name]), (r.seq_id, name)
    assert min(got["n_tokens"]) == (0 if masking == "sampled" else 1)


def test_segment_means_equal_numpys_mean_of_each_segment():
    rng = np.random.default_rng(1)
    counts = rng.choice([0, 1, 7, 8, 9, 129, 300], 200)
    x = rng.normal(0, 1, int(counts.sum())) * np.exp(rng.normal(0, 5, int(counts.sum())))
    offsets = offsets_of(counts)
    got = segment_means(x, offsets)
    want = [x[a:b].mean() if b > a else 0.0 for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    assert np.array_equal(got, want)
    # The comparison can fail: np.add.reduceat sums in another order and gives other last bits here.
    full = counts > 0
    assert not np.array_equal(np.add.reduceat(x, offsets[:-1][full]) / counts[full], got[full])
    same_length = offsets_of(np.full(5, 9))  # consecutive segments of one length: a reshaped view
    assert np.array_equal(segment_means(x[:45], same_length), [x[i : i + 9].mean() for i in range(0, 45, 9)])


@pytest.mark.parametrize(("kind", "masking"), [("causal", "exact"), ("masked", "exact"), ("masked", "sampled")])
def test_scored_positions_of_a_batch_equal_each_sequences(kind, masking):
    tokenizer = generator_6mer_tokenizer()
    rng = np.random.default_rng(2)
    records, encodings, *_ = _inputs(tokenizer, kind, "exact", rng)
    offsets = [rng.choice(len(r.text), int(rng.integers(0, 4)), replace=False) for r in records]
    got = scored_positions_many(encodings, kind, masking=masking, offsets=offsets)
    for enc, off, pos in zip(encodings, offsets, got, strict=True):
        np.testing.assert_array_equal(pos, scored_positions(enc, kind, masking=masking, offsets=off))
