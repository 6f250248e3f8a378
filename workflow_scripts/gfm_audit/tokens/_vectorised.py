"""Vectorised tokenisation of DNA for character and fixed k-mer tokenizers.

The fast tokenizers' batched call returns one Python list per sequence per
field, which costs microseconds per token: more than a small model's forward.
Character tokenizers (HyenaDNA, Caduceus, the demo LM) and fixed k-mer
tokenizers (Nucleotide Transformer's ``EsmTokenizer``, GENERator-style 6-mers)
map bases to ids by rules a lookup table over the sequence bytes reproduces in
NumPy, for a whole batch at once, with the same ids, base offsets and special
flags as :func:`gfm_audit.tokens.encode`.

The rules are not assumed from a tokenizer's class: a :class:`Layout` is
derived from the tokenizer's own output (its special tokens around a sequence,
the id of each base, of each k-mer) and then checked against the tokenizer on
probe sequences with N runs, lower case and lengths that are not a multiple of
k. Three k-mer layouts are tried: ``runs`` (k-mers over A/C/G/T, an N or any
other single-base token ends the run and the run's tail shorter than k is one
token per base, as the Nucleotide Transformer), ``chunks`` (every k bases from
the start are one token, the tail one token per base) and ``tail`` (the same,
but the tail is one token, such as GENERator's ``<oov>``; where
``tokens.Encoded`` flags tokens that stand for no DNA as ``excluded``, the
tail is flagged as the tokenizer's own encoding flags it). A tokenizer
that fits neither (BPE, say) gets no layout and keeps its own batched call, as
does any sequence holding a byte the layout does not cover (the tokenizer then
raises its own error for bases it cannot encode).
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..ragged import offsets_of
from ._encoded import Encoded, EncodedBatch
from ._plain import encode

log = logging.getLogger(__name__)

_ATTR = "_gfm_audit_layout"  # cached on the tokenizer object: derived once per loaded tokenizer
_BASES = "ACGT"
_ALPHABET = "ACGTNacgtn"  # the bytes a genome FASTA holds; anything else goes through the tokenizer
_MAX_K = 6  # 4**6 k-mers are probed once per tokenizer; longer k would cost more than it saves


@dataclass(frozen=True)
class Layout:
    """How a tokenizer turns bases into ids, as tables indexed by byte value.

    ``single``: id of the one-base token for each byte (-1: not covered);
    ``code``: 0-3 for bytes that are A/C/G/T in a k-mer (case folded where the tokenizer folds), -1 otherwise;
    ``kmer``: ids of the 4**k k-mers by base-4 code (``k`` > 1); ``mode``: ``runs``, ``chunks`` or ``tail``;
    ``prefix`` / ``suffix``: special ids before and after every sequence; ``tail``: id of the one token over a
    tail shorter than k (mode ``tail``) and whether the tokenizer flags it ``excluded``.
    """

    k: int
    single: np.ndarray
    code: np.ndarray
    kmer: np.ndarray | None
    mode: str
    prefix: np.ndarray
    suffix: np.ndarray
    tail: int = -1
    tail_excluded: bool = False

    def covered(self, buf: np.ndarray) -> np.ndarray:
        """Which bytes this layout encodes as the tokenizer would (the rest: the tokenizer's own call)."""
        if self.mode == "runs":
            return self.single[buf] >= 0
        # Chunks: every base of a chunk is in a k-mer over A/C/G/T (or the tail); anything else is the tokenizer's.
        ok = self.code[buf] >= 0
        return ok & (self.single[buf] >= 0) if self.mode == "chunks" else ok


def layout(tokenizer) -> Layout | None:
    """The tokenizer's :class:`Layout`, or None when it is not a character or fixed k-mer tokenizer."""
    cached = getattr(tokenizer, _ATTR, False)
    if cached is not False:
        return cached
    try:
        found = _derive(tokenizer)
    except Exception as exc:  # any surprise while probing means: use the tokenizer itself
        log.debug("no vectorised tokenisation for %s: %s", type(tokenizer).__name__, exc)
        found = None
    try:
        setattr(tokenizer, _ATTR, found)
    except AttributeError:
        pass
    return found


def encode_batch(tokenizer, seqs: list[str], *, seq_ids: list[str], model: str = "model") -> EncodedBatch | None:
    """``tokens.encode_many``'s output computed from a lookup table, or None when the tokenizer has no layout.

    Sequences the layout does not cover (bytes outside A/C/G/T/N in either case, or lower case where the
    tokenizer does not fold it; empty ones) go through :func:`gfm_audit.tokens.encode`, one by one.
    """
    lay = layout(tokenizer) if seqs else None
    if lay is None:
        return None
    return _encode_with(lay, tokenizer, seqs, seq_ids, model)


def _encode_with(lay: Layout, tokenizer, seqs, seq_ids, model) -> EncodedBatch:
    ok = np.fromiter((len(s) > 0 and s.isascii() for s in seqs), dtype=bool, count=len(seqs))
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))[ok]
    buf = np.frombuffer("".join(itertools.compress(seqs, ok)).encode("ascii"), dtype=np.uint8)
    covered = lay.covered(buf)
    if not covered.all():
        bounds = np.concatenate(([0], np.cumsum(lengths)))
        bad = np.zeros(len(lengths), dtype=bool)
        bad[np.searchsorted(bounds, np.flatnonzero(~covered), side="right") - 1] = True
        buf = buf[np.repeat(~bad, lengths)]
        lengths = lengths[~bad]
        ok[np.flatnonzero(ok)[bad]] = False
    if not ok.any():
        return EncodedBatch.of(
            [encode(tokenizer, s, seq_id=i, model=model) for s, i in zip(seqs, seq_ids, strict=True)]
        )
    ids, start, end, special, excluded, per_seq = _tokens(lay, buf, lengths)
    if ok.all():
        # The common case: every sequence from the table, already laid end to end.
        return EncodedBatch(ids, start, end, special, excluded, offsets_of(per_seq))
    table = EncodedBatch(ids, start, end, special, excluded, offsets_of(per_seq))
    out: list[Encoded | None] = [None] * len(seqs)
    for n, i in enumerate(np.flatnonzero(ok).tolist()):
        out[i] = table[n]
    for i in np.flatnonzero(~ok).tolist():
        out[i] = encode(tokenizer, seqs[i], seq_id=seq_ids[i], model=model)
    return EncodedBatch.of(out)  # type: ignore[arg-type]


def _tokens(lay: Layout, buf: np.ndarray, lengths: np.ndarray):
    """Flat ids / start / end / special over all sequences, and the token count of each sequence."""
    seq_start = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    if lay.k == 1:
        core_ids = lay.single[buf]
        core_start = np.arange(len(buf), dtype=np.int64) - np.repeat(seq_start, lengths)
        core_len = 1
        core_per_seq = lengths
        core_excluded = np.zeros(len(buf), dtype=bool)
    else:
        core_ids, core_start, core_len, core_excluded, core_per_seq = _kmer_tokens(lay, buf, lengths, seq_start)
    p, s = len(lay.prefix), len(lay.suffix)
    per_seq = core_per_seq + p + s
    if p + s == 0:
        return (
            core_ids,
            core_start.astype(np.int32),
            (core_start + core_len).astype(np.int32),
            np.zeros(len(core_ids), dtype=bool),
            core_excluded,
            per_seq,
        )
    # Each sequence is p specials, its own tokens, s specials: one mask of the whole batch from run lengths,
    # then masked (sequential) writes rather than scattered ones.
    n = len(lengths)
    counts = np.empty(3 * n, dtype=np.int64)
    counts[0::3], counts[1::3], counts[2::3] = p, core_per_seq, s
    special = np.repeat(np.tile(np.array([True, False, True]), n), counts)
    real = ~special
    total = len(special)
    ids = np.empty(total, dtype=np.int64)
    start = np.zeros(total, dtype=np.int32)
    end = np.zeros(total, dtype=np.int32)
    ids[real] = core_ids
    ids[special] = np.tile(np.concatenate((lay.prefix, lay.suffix)), n)
    start[real] = core_start
    end[real] = core_start + core_len
    excluded = np.zeros(total, dtype=bool)
    excluded[real] = core_excluded
    return ids, start, end, special, excluded, per_seq


def _kmer_tokens(lay: Layout, buf: np.ndarray, lengths: np.ndarray, seq_start: np.ndarray):
    k = lay.k
    n_bases = len(buf)
    code = lay.code[buf]
    idx = np.arange(n_bases, dtype=np.int64)
    first_of_seq = np.zeros(n_bases, dtype=bool)
    first_of_seq[seq_start[lengths > 0]] = True
    # A run is what gets cut into k-mers: a run of A/C/G/T (``runs``) or the whole sequence (``chunks``).
    in_run = code >= 0 if lay.mode == "runs" else np.ones(n_bases, dtype=bool)
    prev_in_run = np.concatenate(([False], in_run[:-1]))
    run_begins = in_run & (first_of_seq | ~prev_in_run)
    run_start = np.maximum.accumulate(np.where(run_begins, idx, 0))
    run_ends = in_run & np.concatenate((run_begins[1:] | ~in_run[1:], [True]))
    run_len_at_end = np.where(run_ends, idx - run_start + 1, 0)
    # Carry each run's length back to all its positions: the end's value, read through the run's start.
    run_len = np.zeros(n_bases, dtype=np.int64)
    run_len[run_start[run_ends]] = run_len_at_end[run_ends]
    run_len = run_len[run_start]
    r = idx - run_start
    whole = (run_len // k) * k
    in_kmer = in_run & (r < whole)
    # Outside k-mers: one token per base, or (``tail``) one token from the end of the last k-mer.
    begins = np.where(in_kmer, r % k == 0, True if lay.mode != "tail" else r == whole)
    starts = np.flatnonzero(begins)
    is_kmer = in_kmer[starts]
    ids = lay.single[buf[starts]] if lay.mode != "tail" else np.full(len(starts), lay.tail, dtype=np.int64)
    kstarts = starts[is_kmer]
    if len(kstarts):
        value = np.zeros(len(kstarts), dtype=np.int64)
        for t in range(k):
            value = value * 4 + code[kstarts + t]
        ids[is_kmer] = lay.kmer[value]
    if lay.mode == "tail":
        tok_len = np.where(is_kmer, k, run_len[starts] - whole[starts])
        excluded = ~is_kmer if lay.tail_excluded else np.zeros(len(starts), dtype=bool)
    else:
        tok_len = np.where(is_kmer, k, 1)
        excluded = np.zeros(len(starts), dtype=bool)
    seq_of = np.searchsorted(seq_start, starts, side="right") - 1
    tok_start = starts - seq_start[seq_of]
    per_seq = np.bincount(seq_of, minlength=len(lengths)).astype(np.int64)
    return ids, tok_start, tok_len, excluded, per_seq


# --- deriving and checking a layout ------------------------------------------------


def _reference(tokenizer, seq: str) -> Encoded | None:
    """The tokenizer's own encoding (what ``tokens.encode`` gives), or None where it refuses the sequence."""
    try:
        return encode(tokenizer, seq, seq_id="probe", model="probe")
    except InputError:
        return None


def _derive(tokenizer) -> Layout | None:
    if getattr(tokenizer, "is_fast", False):
        # Only a word-level vocabulary maps a base (or k-mer) to one id whatever surrounds it; BPE merges do not.
        if type(tokenizer.backend_tokenizer.model).__name__ != "WordLevel":
            return None
    one = _reference(tokenizer, "A")
    if one is None or int((~one.special).sum()) != 1:
        return None
    body = int(np.flatnonzero(~one.special)[0])
    prefix, suffix = one.ids[:body].copy(), one.ids[body + 1 :].copy()
    if not one.special[:body].all() or not one.special[body + 1 :].all():
        return None
    single = np.full(256, -1, dtype=np.int64)
    for ch in _ALPHABET:
        enc = _reference(tokenizer, ch)
        if (
            enc is not None
            and int((~enc.special).sum()) == 1
            and not _excluded(enc).any()
            and np.array_equal(enc.ids[enc.special], np.concatenate((prefix, suffix)))
        ):
            single[ord(ch)] = int(enc.ids[~enc.special][0])
    rng = np.random.default_rng(0)
    probe = "".join(rng.choice(list(_BASES), 60))
    enc = _reference(tokenizer, probe)
    if enc is None:
        return None
    lengths = (enc.end - enc.start)[~enc.special]
    k = int(lengths[0])
    code = np.full(256, -1, dtype=np.int64)
    for i, b in enumerate(_BASES):
        code[ord(b)] = i
    if k == 1:
        if (single[[ord(b) for b in _BASES]] < 0).any():
            return None
        candidates = [Layout(1, single, code, None, "runs", prefix, suffix)]
    elif 2 <= k <= _MAX_K:
        kmers = ["".join(p) for p in itertools.product(_BASES, repeat=k)]
        kmer = np.empty(len(kmers), dtype=np.int64)
        step = 256  # k-mers per probe: within any model's length, so the tokenizer does not warn
        for i in range(0, len(kmers), step):
            enc = _reference(tokenizer, "".join(kmers[i : i + step]))
            if enc is None or int((~enc.special).sum()) != len(kmers[i : i + step]):
                return None
            if not ((enc.end - enc.start)[~enc.special] == k).all() or _excluded(enc).any():
                return None
            kmer[i : i + step] = enc.ids[~enc.special]
        # Lower case joins k-mers only where the tokenizer folds it: ask with a lower-case k-mer.
        low = _reference(tokenizer, kmers[27 % len(kmers)].lower())
        if low is not None and int((~low.special).sum()) == 1 and low.ids[~low.special][0] == kmer[27 % len(kmers)]:
            for i, b in enumerate(_BASES):
                code[ord(b.lower())] = i
        candidates = []
        if (single[[ord(b) for b in _BASES]] >= 0).all():
            candidates += [Layout(k, single, code, kmer, mode, prefix, suffix) for mode in ("runs", "chunks")]
        short = _reference(tokenizer, probe[: k - 1])
        if short is not None and int((~short.special).sum()) == 1:
            at = int(np.flatnonzero(~short.special)[0])
            if (short.start[at], short.end[at]) == (0, k - 1):
                tail = int(short.ids[at]), bool(_excluded(short)[at])
                candidates.append(Layout(k, single, code, kmer, "tail", prefix, suffix, *tail))
    else:
        return None
    probes = _probes(k, rng)
    refs = [_reference(tokenizer, p) for p in probes]
    for lay in candidates:
        if _agrees(lay, tokenizer, probes, refs):
            return lay
    return None


def _probes(k: int, rng: np.random.Generator) -> list[str]:
    """Sequences that exercise what a layout must get right: tails, N runs, lower case, mixtures."""
    out = ["".join(rng.choice(list(_BASES), n)) for n in range(1, 3 * k + 3)]
    for n in (7, 19, 64, 301):
        for alphabet, p in (("ACGTN", [0.22, 0.22, 0.22, 0.22, 0.12]), (_ALPHABET, None)):
            out.append("".join(rng.choice(list(alphabet), n, p=p)))
    for seq in list(out[-8:]):
        out.append(seq[:5] + "N" * (k + 2) + seq[5:] + "NN")
        out.append(seq.lower())
    out += ["N", "NNNNNNNNNNNNN", "A" * k + "N" + "C" * (k - 1), "acgtACGTnNacgt" * 3]
    return out


def _excluded(enc: Encoded) -> np.ndarray:
    return enc.excluded


def _covers(lay: Layout, seq: str) -> bool:
    if not seq or not seq.isascii():
        return False
    return bool(lay.covered(np.frombuffer(seq.encode("ascii"), dtype=np.uint8)).all())


def _agrees(lay: Layout, tokenizer, probes: list[str], refs: list[Encoded | None]) -> bool:
    """Same encodings as the tokenizer on every probe it accepts, and no claim on a probe it refuses."""
    if any(ref is None and _covers(lay, seq) for seq, ref in zip(probes, refs, strict=True)):
        return False
    accepted = [(seq, ref) for seq, ref in zip(probes, refs, strict=True) if ref is not None]
    mine = _encode_with(lay, tokenizer, [s for s, _ in accepted], [str(i) for i in range(len(accepted))], "probe")
    for (_, want), got in zip(accepted, mine, strict=True):
        for field in ("ids", "start", "end", "special", "excluded"):
            a, b = getattr(got, field), getattr(want, field)
            if a.dtype != b.dtype or not np.array_equal(a, b):
                return False
    return True
