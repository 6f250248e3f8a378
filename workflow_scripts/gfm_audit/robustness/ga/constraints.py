"""Hard biological constraints on substitution candidates, checked on whole arrays.

A candidate is valid when, against its original sequence:
- it has at most ``max_edits`` substitutions (Hamming distance);
- its GC fraction is within ``gc_tolerance`` of the original's;
- no base inside an occurrence of a protected motif (either strand) changes,
  so no protected motif present in the original is destroyed;
- with ``forbid_new_motifs``, no protected motif (either strand) occurs where
  the original had none, so none is written in either: on a short sequence a
  few substitutions can create a TF's binding site, which may change the true
  label and is then no adversarial example;
- with ``coding``, it has no stop codon (TAA, TAG, TGA) in frame ``frame``
  where the original had none.

The earlier GA study this attack follows scored these as soft fitness
bonuses; here a candidate that breaks one is never scored and never reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

A, C, G, T = 0, 1, 2, 3


@dataclass(frozen=True)
class Constraints:
    max_edits: int = 5
    gc_tolerance: float = 0.05
    protected_motifs: tuple[str, ...] = field(default_factory=lambda: ("TATAAA", "CCAAT", "GGGCGG"))
    coding: bool = False
    frame: int = 0
    transition_weight: float = 2.0
    forbid_new_motifs: bool = False


def reverse_complement(motif: str) -> str:
    return motif.translate(str.maketrans("ACGT", "TGCA"))[::-1]


def both_strands(motifs: tuple[str, ...] | list[str]) -> list[str]:
    """The motifs and their reverse complements, upper case, each once, sorted."""
    return sorted({m.upper() for m in motifs} | {reverse_complement(m.upper()) for m in motifs})


def protected_mask(sequences: list[str], motifs: tuple[str, ...] | list[str]) -> np.ndarray:
    """(S, L) True at every base covered by an occurrence (overlaps included) of a motif or its reverse complement."""
    length = len(sequences[0]) if sequences else 0
    mask = np.zeros((len(sequences), length), dtype=bool)
    for pattern in both_strands(motifs):
        finder = re.compile(f"(?={re.escape(pattern)})")
        for s, seq in enumerate(sequences):
            for hit in finder.finditer(seq):
                mask[s, hit.start() : hit.start() + len(pattern)] = True
    return mask


def motif_starts(codes: np.ndarray, motifs: tuple[str, ...] | list[str]) -> np.ndarray:
    """(..., L) True where an occurrence of a motif or its reverse complement starts in codes (..., L)."""
    length = codes.shape[-1]
    out = np.zeros(codes.shape, dtype=bool)
    for pattern in both_strands(motifs):
        n = length - len(pattern) + 1
        if n < 1:
            continue
        match = np.ones((*codes.shape[:-1], n), dtype=bool)
        for j, base in enumerate(pattern):
            match &= codes[..., j : j + n] == "ACGT".index(base)
        out[..., :n] |= match
    return out


def gc_fraction(codes: np.ndarray) -> np.ndarray:
    """GC fraction along the last axis."""
    return ((codes == C) | (codes == G)).mean(axis=-1)


def stop_codons(codes: np.ndarray, frame: int = 0) -> np.ndarray:
    """(..., n_codons) True where the in-frame codon is TAA, TAG or TGA."""
    n = (codes.shape[-1] - frame) // 3
    codons = codes[..., frame : frame + 3 * n].reshape(*codes.shape[:-1], n, 3)
    first, second, third = codons[..., 0], codons[..., 1], codons[..., 2]
    return (first == T) & (((second == A) & ((third == A) | (third == G))) | ((second == G) & (third == A)))


def is_valid(
    candidates: np.ndarray, originals: np.ndarray, protected: np.ndarray, *, constraints: Constraints
) -> np.ndarray:
    """(S, P) validity of candidates (S, P, L) against originals (S, L) and their protected mask (S, L)."""
    diff = candidates != originals[:, None, :]
    ok = diff.sum(axis=-1) <= constraints.max_edits
    ok &= ~(diff & protected[:, None, :]).any(axis=-1)
    gc_shift = np.abs(gc_fraction(candidates) - gc_fraction(originals)[:, None])
    ok &= gc_shift <= constraints.gc_tolerance + 1e-9
    if constraints.coding:
        new_stop = stop_codons(candidates, constraints.frame) & ~stop_codons(originals, constraints.frame)[:, None, :]
        ok &= ~new_stop.any(axis=-1)
    if constraints.forbid_new_motifs and constraints.protected_motifs:
        new_motif = (
            motif_starts(candidates, constraints.protected_motifs)
            & ~motif_starts(originals, constraints.protected_motifs)[:, None, :]
        )
        ok &= ~new_motif.any(axis=-1)
    return ok


def is_transition(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """A<->G and C<->T; with A=0, C=1, G=2, T=3 the partner of b is b XOR 2."""
    return (before != after) & ((before ^ 2) == after)


def propose_bases(originals: np.ndarray, rng: np.random.Generator, transition_weight: float) -> np.ndarray:
    """A substitute for each original base: its transition partner with weight w, each transversion with weight 1."""
    w = transition_weight
    roll = rng.random(originals.shape) * (w + 2.0)
    partner = originals ^ 2
    # The two transversions of b are b^1 and b^3 (A->C,T; C->A,G; G->T,C; T->G,A).
    return np.where(roll < w, partner, np.where(roll < w + 1.0, originals ^ 1, originals ^ 3)).astype(np.uint8)


def any_single_substitution(originals: np.ndarray, protected: np.ndarray, constraints: Constraints) -> np.ndarray:
    """(S,) whether at least one single substitution is valid: without one the attack cannot start."""
    s, length = originals.shape
    result = np.zeros(s, dtype=bool)
    if constraints.max_edits < 1:
        return result
    for shift in (1, 2, 3):
        for start in range(0, length, 64):
            stop = min(length, start + 64)
            cand = np.repeat(originals[:, None, :], stop - start, axis=1)
            pos = np.arange(start, stop)
            cand[:, pos - start, pos] ^= shift
            result |= is_valid(cand, originals, protected, constraints=constraints).any(axis=1)
    return result
