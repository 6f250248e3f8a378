"""The one-run canary audit: m canaries, each inserted into the target's training data by a fair coin, and an
empirical lower bound on the training's epsilon from how well the target tells which went in.

Steinke, Nasr & Jagielski (NeurIPS 2023, "Privacy auditing with one (1) training run"): each canary's score is
the LOSS attack's (Yeom et al. 2018), ``-mean NLL`` of its tokens under the target; the r/2 highest-scoring canaries
are guessed in, the r/2 lowest out, the rest abstained on, and v correct guesses give the bound of
``one_run_bound.one_run_epsilon``. The number of guesses r is fixed before looking (choosing it from the outcome
would void the bound): the audit tries a few fixed counts (``guess_counts``) and reports the largest bound, each
computed at confidence ``1 - (1 - level) / K`` for K counts, so that the largest holds at ``level`` (Bonferroni).

A second row gives the Gaussian-DP version (Mahloujifar, Melis & Chaudhuri 2024, ``one_run_fdp``): the largest mu
of mu-GDP the same guesses rule out, as eps at delta. It is tighter, but rules out only trainings whose privacy
curve is Gaussian, so it bounds a DP-SGD claim only as far as that curve is (the central limit theorem of Dong,
Roth & Su 2022 for many noisy steps); the report shows it without holding a claim against it.

With m canaries the bound cannot exceed its value for every guess right (``ceiling``); a run whose ceiling stays
below the epsilon it should detect cannot detect it, and is refused at start-up (``check_canaries``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ...errors import InputError
from ..one_run_bound import guesses_from_scores, one_run_epsilon
from ..one_run_fdp import gaussian_one_run_mu, gdp_to_epsilon

COLUMNS = (
    "bound",
    "eps_lower_bound",
    "mu_lower_bound",
    "delta",
    "level",
    "canaries",
    "included",
    "guesses",
    "correct",
    "guess_counts",
    "ceiling",
    "score",
)
# Fractions of m tried as the number of guesses: a strong signal on a few canaries favours few guesses, a weak one
# spread over all of them favours many (Steinke et al. 2023, Figure 2).
GUESS_FRACTIONS = (0.1, 0.25, 0.5, 1.0)


def guess_counts(m: int, guesses: Sequence[int] | None = None) -> list[int]:
    """The guess counts r tried: ``guesses`` as configured, or GUESS_FRACTIONS of m (each at least 2, even)."""
    if guesses:
        counts = sorted({int(r) for r in guesses})
        if counts[0] < 1 or counts[-1] > m:
            raise InputError(f"memorisation.canaries.guesses {list(guesses)} must lie within 1 .. n ({m})")
        return counts
    return sorted({min(m, max(2, 2 * round(f * m / 2))) for f in GUESS_FRACTIONS})


def ceiling(m: int, *, delta: float, level: float, counts: Sequence[int]) -> float:
    """The most this audit can report with m canaries: the best count r with every guess right."""
    per_count = 1 - (1 - level) / len(counts)
    return max(one_run_epsilon(m, r, r, delta=delta, level=per_count) for r in counts)


def needed_canaries(target: float, *, delta: float, level: float, guesses: Sequence[int] | None = None) -> int:
    """The fewest canaries whose ceiling reaches ``target`` (doubling, then bisection; the ceiling grows with m)."""

    def reaches(m: int) -> bool:
        return ceiling(m, delta=delta, level=level, counts=guess_counts(m, guesses)) >= target

    hi = 2
    while not reaches(hi):
        hi *= 2
        if hi > 1 << 24:
            raise InputError(
                f"no number of canaries up to {hi} lets the one-run bound reach epsilon {target:g} at delta {delta:g}"
            )
    lo = hi // 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if reaches(mid) else (mid, hi)
    return hi


def check_canaries(m: int, *, target: float, delta: float, level: float, guesses: Sequence[int] | None) -> None:
    """Refuse a one-run audit that could not report ``target`` even with every guess right, naming how many
    canaries it needs."""
    best = ceiling(m, delta=delta, level=level, counts=guess_counts(m, guesses))
    if best < target:
        need = needed_canaries(target, delta=delta, level=level, guesses=guesses)
        raise InputError(
            f"memorisation.canaries.n = {m} canaries cannot give a one-run bound above {best:.2f} even with every "
            f"guess right (at delta {delta:g}, {level:.0%} confidence), below epsilon {target:g}: set "
            f"memorisation.canaries.n to at least {need} (1000 or more is usual)"
        )


def one_run_audit(
    scores: np.ndarray,
    included: np.ndarray,
    *,
    delta: float,
    level: float,
    guesses: Sequence[int] | None = None,
    score: str = "loss",
) -> pd.DataFrame:
    """Two rows (``COLUMNS``), the (eps, delta) bound and the Gaussian-DP one: each the largest over the guess
    counts, each count at confidence 1 - (1 - level) / K.

    ``scores``: higher means more likely inserted; ``included``: whether each canary went into training.
    """
    scores, included = np.asarray(scores, float), np.asarray(included, bool)
    if not np.isfinite(scores).all():
        raise ValueError("every canary needs a finite score")
    m = len(scores)
    counts = guess_counts(m, guesses)
    per_count = 1 - (1 - level) / len(counts)
    observed = [guesses_from_scores(scores, included, k_in=r // 2, k_out=r - r // 2) for r in counts]
    common = {"delta": delta, "level": level, "canaries": m, "included": int(included.sum())}
    common |= {"guess_counts": ",".join(map(str, counts)), "score": score}
    # (eps, mu or NaN, r, v) of each count; the first of the largest is kept.
    steinke = [(one_run_epsilon(m, r, v, delta=delta, level=per_count), math.nan, r, v) for r, v in observed]
    mus = [(gaussian_one_run_mu(m, r, v, level=per_count), r, v) for r, v in observed]
    gaussian = [(gdp_to_epsilon(mu, delta), mu, r, v) for mu, r, v in mus]
    ceilings = {
        "one_run": ceiling(m, delta=delta, level=level, counts=counts),
        "one_run_gdp": gdp_to_epsilon(max(gaussian_one_run_mu(m, r, r, level=per_count) for r in counts), delta),
    }
    rows = []
    for name, results in (("one_run", steinke), ("one_run_gdp", gaussian)):
        eps, mu, r, v = max(results, key=lambda t: t[0])
        rows.append(
            {"bound": name, "eps_lower_bound": eps, "mu_lower_bound": mu, "guesses": r, "correct": v}
            | common
            | {"ceiling": ceilings[name]}
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def canary_scores(spec, sequences: Sequence[str], *, batch_size: int, device: str | None = None) -> np.ndarray:
    """The LOSS score of each canary under the model of ``spec``: minus its mean NLL per token (nats; masked
    models: exact pseudo-log-likelihood, every token masked in turn)."""
    import dataclasses

    from ..scoring import SeqRecord, score_sequences

    exact = dataclasses.replace(spec, masking="exact") if spec.kind == "masked" else spec
    records = [SeqRecord(f"canary{i}", f"canary{i}", "window", None, None, s) for i, s in enumerate(sequences)]
    table = score_sequences(exact, records, snp_offsets={}, batch_size=batch_size, seed=0, device=device)
    return -np.asarray(table.column("loss").to_pylist(), dtype=float)
