"""Batches prepared in a background thread: same items, same order, same score tables."""

from __future__ import annotations

import io
import threading
import time

import pyarrow.parquet as pq
import pytest
from conftest import demo_sequence
from gfm_audit.models import ModelSpec
from gfm_audit.prefetch import prefetch
from gfm_audit.privacy.scoring import ScoringOptions, SeqRecord, score_sequences


def test_items_come_in_order_transformed_and_made_ahead_in_another_thread():
    made_in = []

    def slow_square(x):
        made_in.append(threading.current_thread().name)
        time.sleep(0.001)
        return x * x

    assert list(prefetch(range(50), 3, slow_square)) == [x * x for x in range(50)]
    assert set(made_in) == {"gfm-audit-prefetch"}
    assert list(prefetch(range(5), 0, slow_square)) == [0, 1, 4, 9, 16]
    assert made_in[-1] == threading.current_thread().name  # depth 0: the plain loop, in the caller's thread


def test_an_error_while_preparing_is_raised_in_the_caller_after_the_items_before_it():
    def items():
        yield 1
        yield 2
        raise ValueError("bad batch")

    got = []
    with pytest.raises(ValueError, match="bad batch"):
        for x in prefetch(items(), 2):
            got.append(x)
    assert got == [1, 2]


def test_leaving_the_loop_early_stops_the_thread():
    before = threading.active_count()
    for x in prefetch(iter(range(10**9)), 2):
        if x == 3:
            break
    assert threading.active_count() == before


def _parquet_bytes(table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


@pytest.mark.parametrize("kind", ["causal", "masked"])
def test_overlapped_scoring_gives_byte_identical_tables(kind, tiny_causal, tiny_masked):
    folder = tiny_causal if kind == "causal" else tiny_masked
    spec = ModelSpec("tiny", str(folder), kind, masking="sampled", mask_fraction=0.3)
    texts = [demo_sequence(s, s + n) for s, n in ((0, 61), (300, 17), (700, 45), (1200, 33), (2000, 7), (40, 90))]
    records = [SeqRecord(f"s{i}", f"w{i % 3}", "window", None, None, t) for i, t in enumerate(texts)]
    snps = {"w0": [3, 10, 40], "w1": [0, 5]}

    def run(depth):
        options = ScoringOptions(prefetch=depth)
        return score_sequences(spec, records, snp_offsets=snps, batch_size=2, seed=0, device="cpu", options=options)

    plain, overlapped = run(0), run(3)
    assert plain.num_rows == len(texts)
    assert overlapped.equals(plain)
    assert _parquet_bytes(overlapped) == _parquet_bytes(plain)
