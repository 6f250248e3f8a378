"""Exposure of planted canaries (Carlini et al. 2019, "The Secret Sharer", USENIX Security).

The log-perplexity of a sequence is its negative log-likelihood in bits,
``Px(s) = -sum_t log2 p(s_t | s_<t)`` (a masked model's pseudo-log-likelihood, Salazar et al. 2020,
in its place). The rank of canary ``s`` is its position among all candidates ``R`` of its format
ordered by log-perplexity (rank 1 = the most likely), and

    exposure(s) = log2 |R| - log2 rank(s).

When ``|R|`` is small enough the rank is computed by enumerating ``R``. Otherwise the paper's
extrapolation (its Section 4.3): the log-perplexities of a seeded sample of candidates are fitted
with a skew-normal density rho, and

    exposure(s) ~ -log2 integral_{-inf}^{Px(s)} rho(x) dx,

since ``rank / |R|`` is the fraction of candidates more likely than the canary. The estimate is
capped at ``log2 |R|`` (rank >= 1). ``exposure_sampled`` is the plain sampling estimate
``-log2((1 + #{sampled candidates more likely}) / (M + 1))``, which cannot exceed ``log2 (M + 1)``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from .canaries import Canary

COLUMNS = (
    "canary_id",
    "group",
    "repeats",
    "length",
    "log2_space",
    "log_perplexity",
    "method",
    "candidates",
    "exposure",
    "exposure_sampled",
)

# Maps sequences to their log-perplexities (bits), one per sequence.
LogPerplexity = Callable[[Sequence[str]], np.ndarray]


def exact_exposure(canary: float, candidates: np.ndarray, log2_space: float) -> float:
    """``log2 |R| - log2 rank`` with ``rank = 1 + #{candidates strictly more likely}`` (R enumerated whole)."""
    rank = 1 + int(np.sum(np.asarray(candidates) < canary))
    return log2_space - math.log2(rank)


def extrapolated_exposure(canary: float, sample: np.ndarray, log2_space: float) -> float:
    """``-log2 CDF(Px(canary))`` under a skew-normal fitted to the sampled candidates, within [0, log2 |R|]."""
    from scipy import stats

    sample = np.asarray(sample, dtype=float)
    if np.ptp(sample) == 0:  # a degenerate sample: the canary is as likely as every candidate, or not
        return float(min(log2_space, 0.0 if canary >= sample[0] else log2_space))
    shape, loc, scale = stats.skewnorm.fit(sample)
    log_cdf = float(stats.skewnorm.logcdf(canary, shape, loc=loc, scale=scale))
    if not math.isfinite(log_cdf):
        return log2_space
    return float(min(log2_space, max(0.0, -log_cdf / math.log(2))))


def sampled_exposure(canary: float, sample: np.ndarray) -> float:
    """``-log2((1 + #{sampled candidates more likely}) / (M + 1))``."""
    sample = np.asarray(sample)
    return -math.log2((1 + int(np.sum(sample < canary))) / (len(sample) + 1))


def enumerate_format(canary: Canary) -> list[str]:
    """Every candidate of the canary's format (the canary among them)."""
    bases = list(canary.sequence)
    out = []
    for combo in itertools.product(*canary.choices):
        for off, b in zip(canary.secret_offsets, combo, strict=True):
            bases[off] = b
        out.append("".join(bases))
    return out


def sample_format(canary: Canary, m: int, rng: np.random.Generator) -> list[str]:
    """``m`` candidates of the canary's format, each secret position drawn uniformly from its choices."""
    picks = [rng.integers(0, len(c), size=m) for c in canary.choices]
    rows = np.tile(np.frombuffer(canary.sequence.encode(), dtype=np.uint8), (m, 1))
    for off, choice, pick in zip(canary.secret_offsets, canary.choices, picks, strict=True):
        rows[:, off] = np.frombuffer(choice.encode(), dtype=np.uint8)[pick]
    return [row.tobytes().decode() for row in rows]


def canary_exposure(
    canaries: Sequence[Canary],
    log_perplexity: LogPerplexity,
    *,
    candidates: int,
    enumerate_max: int,
    seed: int,
) -> pd.DataFrame:
    """The exposure of every canary; one row each (``COLUMNS``).

    Canaries of one format share one candidate set: enumerated when ``|R| <= enumerate_max``, else
    ``candidates`` seeded draws (the first format's draws come from child 0 of ``seed``, and so on).
    """
    formats: dict[tuple, list[Canary]] = {}
    for c in canaries:
        formats.setdefault(c.format_key, []).append(c)
    streams = np.random.SeedSequence(seed).spawn(len(formats))
    plan = []  # (canaries of the format, candidate sequences, exact?)
    for stream, group in zip(streams, formats.values(), strict=True):
        first = group[0]
        exact = first.log2_space <= math.log2(max(enumerate_max, 1))
        seqs = enumerate_format(first) if exact else sample_format(first, candidates, np.random.default_rng(stream))
        plan.append((group, seqs, exact))
    # One call for every sequence: the model is loaded once and its batches stay full.
    everything = [c.sequence for c in canaries] + [s for _, seqs, _ in plan for s in seqs]
    scores = np.asarray(log_perplexity(everything), dtype=float)
    own = dict(zip((c.canary_id for c in canaries), scores[: len(canaries)], strict=True))
    rows, at = [], len(canaries)
    for group, seqs, exact in plan:
        cand = scores[at : at + len(seqs)]
        at += len(seqs)
        for c in group:
            px = own[c.canary_id]
            space = c.log2_space
            value = exact_exposure(px, cand, space) if exact else extrapolated_exposure(px, cand, space)
            rows.append(
                (
                    c.canary_id,
                    c.group,
                    c.repeats,
                    len(c.sequence),
                    space,
                    px,
                    "exact" if exact else "extrapolated",
                    len(seqs),
                    value,
                    sampled_exposure(px, cand),
                )
            )
    order = {c.canary_id: i for i, c in enumerate(canaries)}
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    return table.sort_values("canary_id", key=lambda s: s.map(order)).reset_index(drop=True)


def model_log_perplexity(spec, *, batch_size: int, device: str | None = None) -> LogPerplexity:
    """Log-perplexity in bits under the model of ``spec``: causal log-likelihood, or exact pseudo-log-likelihood.

    The model's own special tokens are kept (a BOS lets the first base be scored).
    """
    import dataclasses

    from ..scoring import SeqRecord, score_sequences

    exact = dataclasses.replace(spec, masking="exact") if spec.kind == "masked" else spec

    def score(seqs: Sequence[str]) -> np.ndarray:
        records = [SeqRecord(f"seq{i}", f"seq{i}", "window", None, None, s) for i, s in enumerate(seqs)]
        table = score_sequences(exact, records, snp_offsets={}, batch_size=batch_size, seed=0, device=device)
        nll = np.asarray(table.column("loss").to_pylist(), dtype=float)
        n_tokens = np.asarray(table.column("n_tokens").to_pylist(), dtype=float)
        return nll * n_tokens / math.log(2)

    return score
