"""Tokenising DNA and mapping every token back to the bases it covers.

Some tokens cover bases but stand for no DNA: the unknown token, a k-mer
tokenizer's ``<oov>`` for a tail shorter than k or a k-mer with N (GENERator),
a special token inside the sequence. They are kept in the model's input, which
is what the model was trained to see, but flagged ``excluded``: no score is
ever taken at them, and scoring counts them per sequence.

The modules run one way: ``_encoded`` (the data classes) under ``_plain`` (the
tokenizer's own calls) under ``_vectorised`` (a lookup table for character and
fixed k-mer tokenizers, checked against ``_plain``); :func:`encode_many` here
picks between the last two.
"""

from __future__ import annotations

from ._covering import covering_many, tokens_covering
from ._encoded import Encoded, EncodedBatch
from ._plain import encode, encode_all
from ._vectorised import encode_batch

__all__ = ["Encoded", "EncodedBatch", "covering_many", "encode", "encode_many", "tokens_covering"]


def encode_many(tokenizer, seqs: list[str], *, seq_ids: list[str], model: str = "model") -> EncodedBatch:
    """``encode`` for many sequences, laid end to end: from a lookup table for character and fixed k-mer
    tokenizers, else with the tokenizer's own (for a fast tokenizer, batched) call."""
    fast = encode_batch(tokenizer, seqs, seq_ids=seq_ids, model=model)
    if fast is not None:
        return fast
    return encode_all(tokenizer, seqs, seq_ids=seq_ids, model=model)
