"""Reference sequence around each window for long-context models (``scoring.context``).

A model with a long context scores a window differently when it sees the genome around it. With
``scoring.context`` c > 0 every window and each of its neighbors is given to the model as
``left flank + sequence + right flank``, the flanks being the c reference bases on each side of the window (the
same for its neighbors, which differ from it only inside the window), and only the window's own tokens are
scored. A causal model's score of a token depends on the tokens before it alone, so the right flank could not
change a single score: it is not read, and a causal model gets the left flank only. A masked model sees both.

The flanks are read from the indexed reference FASTA, one chunk of a shard's windows at a time, as the
windows' coordinates (their FASTA headers, ``chrom:start-end``) say; memory holds one chunk's flanks. A flank
that would run past a contig end is cut there, and the windows whose flank is shorter than c are counted.

The window's tokens must be the ones it has alone: each flank is tokenised on its own and its tokens laid
beside the window's, inside the tokenizer's special tokens (``[BOS] left window right [EOS]``). That is the
tokenisation of the joined text for a character tokenizer, and for a fixed k-mer tokenizer when each flank is
a multiple of k bases (a clipped flank is shortened to one); c not a multiple of k is refused. A BPE tokenizer
merges bases across the window's edge, so its window would not keep its own tokens: it is refused. Flank tokens
are flagged ``special``, so they are never scored and are not counted as excluded.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import numpy as np
import pysam

from ..errors import InputError
from ..tokens import Encoded, EncodedBatch, encode_many
from ..tokens._vectorised import layout

Locus = tuple[str, int, int]  # contig, 0-based start, end


def read_loci(windows_fasta: str | os.PathLike) -> dict[str, Locus]:
    """Each window's reference coordinates, from its FASTA header (``>w000001 chrom:start-end``, 1-based)."""
    loci: dict[str, Locus] = {}
    with pysam.FastxFile(os.fspath(windows_fasta)) as fh:
        for record in fh:
            where = (record.comment or "").split()
            try:
                chrom, span = where[0].rsplit(":", 1)
                first, last = (int(x) for x in span.split("-"))
            except (IndexError, ValueError):
                raise InputError(
                    f"window {record.name} in {os.fspath(windows_fasta)} has no coordinates in its header "
                    "(chrom:start-end), which scoring.context needs to read its flanks; re-run rule select_windows"
                ) from None
            loci[record.name] = (chrom, first - 1, last)
    return loci


def token_multiple(tokenizer, context: int, *, model: str) -> int:
    """k of the model's character (1) or fixed k-mer tokenizer, after checking that flanks of ``context`` bases
    keep the window's own tokens; a tokenizer that cannot is refused in one line."""
    lay = layout(tokenizer)
    if lay is None:
        raise InputError(
            f"model '{model}': scoring.context needs a character or fixed k-mer tokenizer; this one (BPE or "
            "another merging tokenizer) would merge flank and window bases into new tokens, changing the window's "
            "own tokens; set scoring.context: 0 for it"
        )
    if context % lay.k:
        raise InputError(
            f"model '{model}' reads {lay.k}-mers: scoring.context ({context}) must be a multiple of {lay.k}, or "
            "the flank would shift the window's k-mers; choose a multiple"
        )
    return lay.k


class Flanks:
    """The flanks of a shard's windows, read from the indexed reference FASTA a chunk at a time.

    ``right``: whether the model sees a right flank (masked models; a causal model's scores cannot depend on it).
    ``multiple``: the tokenizer's k; a clipped flank is shortened to a multiple of it. ``clipped``: the windows
    whose flank came out shorter than ``context`` at a contig end, of ``seen`` windows.
    """

    def __init__(
        self, fasta: str | os.PathLike, loci: dict[str, Locus], *, context: int, right: bool, multiple: int = 1
    ) -> None:
        self.path, self.loci, self.context, self.right = os.fspath(fasta), loci, context, right
        self.multiple = multiple
        self.clipped: set[str] = set()
        self.seen: set[str] = set()
        self._fasta: pysam.FastaFile | None = None  # opened at the first read, by the thread that reads

    def close(self) -> None:
        if self._fasta is not None:
            self._fasta.close()

    def __enter__(self) -> Flanks:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def texts(self, window_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        """(left, right) flank of each window, upper case as the windows are; right is empty for a causal model."""
        if self._fasta is None:
            self._fasta = pysam.FastaFile(self.path)
        out = {}
        for w in dict.fromkeys(window_ids):
            if w not in self.loci:
                raise InputError(f"window {w} has no coordinates in the shard's windows FASTA")
            chrom, start, end = self.loci[w]
            size = self._fasta.get_reference_length(chrom)
            left = min(self.context, start)
            left -= left % self.multiple
            right = min(self.context, size - end) if self.right else 0
            right -= right % self.multiple
            if left < self.context or (self.right and right < self.context):
                self.clipped.add(w)
            self.seen.add(w)
            out[w] = (
                self._fasta.fetch(chrom, start - left, start).upper(),
                self._fasta.fetch(chrom, end, end + right).upper() if right else "",
            )
        return out

    def flank_tokens(self) -> int:
        """Tokens that full flanks add to a window (flanks of A/C/G/T: c / k tokens a side)."""
        return (self.context // self.multiple) * (2 if self.right else 1)


def _cores(tokenizer, texts: Sequence[str], *, model: str) -> list[Encoded]:
    """Each text's tokens without the tokenizer's special tokens around it (an empty text: no token)."""
    lay = layout(tokenizer)
    p, s = len(lay.prefix), len(lay.suffix)
    empty = Encoded(np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, bool))
    out: list[Encoded] = [empty] * len(texts)
    full = [i for i, t in enumerate(texts) if t]
    if full:
        batch = encode_many(tokenizer, [texts[i] for i in full], seq_ids=[f"flank{i}" for i in full], model=model)
        for i, enc in zip(full, batch, strict=True):
            n = len(enc.ids)
            out[i] = Encoded(enc.ids[p : n - s], enc.start[p : n - s], enc.end[p : n - s], enc.special[p : n - s])
    return out


def with_flanks(
    tokenizer, encodings: EncodedBatch, records: Sequence, *, flanks: dict[str, tuple[str, str]], model: str
) -> EncodedBatch:
    """``encodings`` (of ``records``, each a window or a neighbor) with their window's flank tokens inside the
    special tokens; window tokens keep their base offsets, flank tokens are ``special`` with offsets relative to
    the window's start (negative on the left, past its end on the right)."""
    lay = layout(tokenizer)
    p, s = len(lay.prefix), len(lay.suffix)
    ids = list(flanks)
    cores = _cores(tokenizer, [t for w in ids for t in flanks[w]], model=model)
    tokens = {w: (cores[2 * i], cores[2 * i + 1]) for i, w in enumerate(ids)}
    out = []
    for enc, record in zip(encodings, records, strict=True):
        left, right = tokens[record.window_id]
        n, before, after = len(enc.ids), len(flanks[record.window_id][0]), len(record.text)

        def own(part: slice, enc=enc) -> tuple[np.ndarray, ...]:
            return enc.ids[part], enc.start[part], enc.end[part], enc.special[part], enc.excluded[part]

        def flank(piece: Encoded, shift: int) -> tuple[np.ndarray, ...]:
            k = len(piece.ids)
            return piece.ids, piece.start + shift, piece.end + shift, np.ones(k, bool), np.zeros(k, bool)

        # Offsets relative to the window's start: the left flank's negative, the right one's past its last base.
        parts = (
            own(slice(0, p)),
            flank(left, -before),
            own(slice(p, n - s)),
            flank(right, after),
            own(slice(n - s, n)),
        )
        out.append(Encoded(*(np.concatenate(column) for column in zip(*parts, strict=True))))
    return EncodedBatch.of(out)
