"""The score table from concatenated arrays and offsets equals the one built sequence by sequence."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from gfm_audit.char_lm import char_tokenizer
from gfm_audit.gfm import dnabert2, nt_v2
from gfm_audit.privacy.score_table import build_table
from gfm_audit.privacy.scoring import SCHEMA, SeqRecord, _table, scored_positions
from gfm_audit.tokens import encode_many, tokens_covering
from test_fast_tokens import generator_6mer_tokenizer

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
