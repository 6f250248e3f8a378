"""The genetic-algorithm attack, its random baseline and a shared edit-pruning step.

All sequences under attack are evolved together: one generation of every
still-active sequence is one array (S, P, L) and one call of ``predict``.
Every candidate that is scored satisfies the hard constraints
(:mod:`.constraints`); invalid offspring are replaced by a valid parent before
scoring, never penalised.

Success (per sequence): the predicted class differs from the true label *and*
the true-class probability fell by at least ``delta`` from the original's.
The earlier GA study this attack follows used the max-class probability as
fitness, which needs no label flip.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .constraints import Constraints, is_valid, propose_bases

log = logging.getLogger(__name__)

Predict = Callable[[np.ndarray], np.ndarray]
"""(N, L) uint8 sequences -> (N, C) class probabilities; one batched forward pass."""


@dataclass(frozen=True)
class GAParams:
    population: int = 50
    generations: int = 100
    crossover: float = 0.9
    mutation: float = 0.3
    tournament: int = 3
    elitism: int = 2
    patience: int = 10
    delta: float = 0.2


@dataclass
class AttackResult:
    """Per attacked sequence: the reported candidate (the minimal successful one, else the best found)."""

    adversarial: np.ndarray  # (S, L) uint8
    p_true_before: np.ndarray  # (S,)
    p_true_after: np.ndarray  # (S,)
    success: np.ndarray  # (S,) bool
    queries: np.ndarray  # (S,) int: candidates scored for this sequence, the original included


def successful(
    p_true: np.ndarray, pred: np.ndarray, labels: np.ndarray, *, p_true_before: np.ndarray, delta: float
) -> np.ndarray:
    """The success test of every search: predicted class != label and true-class probability down by >= delta.

    ``p_true`` and ``pred`` are a candidate's true-class probability and arg-max class; all arguments
    broadcast. A candidate left unscored (p_true inf, see ``_Scorer``) never succeeds.
    """
    # The 1e-12 lets a drop of exactly delta count despite rounding in p_true_before - p_true.
    return (pred != labels) & (p_true_before - p_true >= delta - 1e-12) & np.isfinite(p_true)


class _Scorer:
    """Scores (S, P, L) candidates of chosen sequences in one ``predict`` call and counts the queries."""

    def __init__(self, predict: Predict, labels: np.ndarray, n_sequences: int):
        self.predict, self.labels = predict, labels
        self.queries = np.zeros(n_sequences, dtype=np.int64)

    def __call__(self, rows: np.ndarray, candidates: np.ndarray, mask: np.ndarray | None = None):
        """p_true and predicted class (len(rows), P); entries outside ``mask`` are not scored (p_true inf)."""
        n, p, length = candidates.shape
        mask = np.ones((n, p), dtype=bool) if mask is None else mask
        p_true = np.full((n, p), np.inf)
        pred = np.full((n, p), -1, dtype=np.int64)
        if mask.any():
            probs = self.predict(candidates[mask])
            r, c = np.nonzero(mask)
            p_true[r, c] = probs[np.arange(len(r)), self.labels[rows][r]]
            pred[r, c] = probs.argmax(axis=1)
        self.queries[rows] += mask.sum(axis=1)
        return p_true, pred


def _substitute(pop, originals, allowed_order, n_allowed, rng, weight, mask):
    """One random substitution at an allowed position for each masked (s, p); bases drawn by ``propose_bases``."""
    s_idx, p_idx = np.nonzero(mask)
    if s_idx.size == 0:
        return
    pick = (rng.random(s_idx.size) * n_allowed[s_idx]).astype(np.int64)
    pos = allowed_order[s_idx, pick]
    pop[s_idx, p_idx, pos] = propose_bases(originals[s_idx, pos], rng, weight)


def _trim(pop, originals, max_edits, rng):
    """Revert randomly chosen edits of candidates above the budget until they are at it."""
    diff = pop != originals[:, None, :]
    over = diff.sum(axis=-1) > max_edits
    if not over.any():
        return
    s_idx, p_idx = np.nonzero(over)
    d = diff[s_idx, p_idx]
    keys = np.where(d, rng.random(d.shape), 2.0)
    rank = np.argsort(np.argsort(keys, axis=1, kind="stable"), axis=1, kind="stable")
    revert = d & (rank >= max_edits)
    rows = pop[s_idx, p_idx]
    rows[revert] = originals[s_idx][revert]
    pop[s_idx, p_idx] = rows


def _revert_one(pop, originals, rng, mask):
    """Undo one random edit of each masked candidate that has one: lets the search shrink edit sets."""
    diff = pop != originals[:, None, :]
    mask = mask & diff.any(axis=-1)
    s_idx, p_idx = np.nonzero(mask)
    if s_idx.size == 0:
        return
    keys = np.where(diff[s_idx, p_idx], rng.random((s_idx.size, pop.shape[-1])), -1.0)
    pos = keys.argmax(axis=1)
    pop[s_idx, p_idx, pos] = originals[s_idx, pos]


def _allowed_positions(protected: np.ndarray):
    allowed = ~protected
    return np.argsort(~allowed, axis=1, kind="stable"), allowed.sum(axis=1)


def _tournament(fit: np.ndarray, n_children: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """(S, n_children) parent indices: the fittest of ``size`` random entrants of each sequence's population."""
    entrants = rng.integers(0, fit.shape[1], size=(fit.shape[0], n_children, size))
    scores = np.take_along_axis(fit[:, None, :].repeat(n_children, axis=1), entrants, axis=2)
    return np.take_along_axis(entrants, scores.argmin(axis=2)[..., None], axis=2)[..., 0]


def _fitness(p_true: np.ndarray, edits: np.ndarray) -> np.ndarray:
    # Lower is better; the edit term only breaks ties between equally confident candidates.
    return p_true + 1e-4 * edits


def _set_reported(result: AttackResult, seqs, candidates, p_true, keep, choice) -> None:
    """Where ``keep``, make candidate ``choice`` of row i of (rows, P) arrays the reported one of ``seqs[i]``."""
    result.adversarial[seqs[keep]] = candidates[keep, choice[keep]]
    result.p_true_after[seqs[keep]] = p_true[keep, choice[keep]]


def _record_best(result, best, seqs, candidates, p_true, score, tol: float = 0.0) -> np.ndarray:
    """Report each row's lowest-``score`` candidate where it beats ``best`` (per sequence) by more than ``tol``.

    ``candidates``, ``p_true`` and ``score`` hold one row per sequence in ``seqs``; ``best`` is updated in
    place. Returns which rows improved.
    """
    leader = score.argmin(axis=1)
    top = score[np.arange(len(seqs)), leader]
    improved = top < best[seqs] - tol
    _set_reported(result, seqs, candidates, p_true, improved, leader)
    best[seqs[improved]] = top[improved]
    return improved


def _record_winners(result, seqs, candidates, p_true, pred, edits, labels, delta) -> np.ndarray:
    """Report each row's successful candidate with fewest edits (then lowest p_true) and mark it a success.

    Arrays as in :func:`_record_best`; ``labels`` is per sequence. Returns the sequences that won.
    """
    ok = successful(p_true, pred, labels[seqs, None], p_true_before=result.p_true_before[seqs, None], delta=delta)
    key = np.where(ok, edits + np.clip(p_true, 0, 1) * 0.5, np.inf)
    won = ok.any(axis=1)
    _set_reported(result, seqs, candidates, p_true, won, key.argmin(axis=1))
    result.success[seqs[won]] = True
    return seqs[won]


def genetic_attack(
    predict: Predict,
    originals: np.ndarray,
    labels: np.ndarray,
    *,
    p_true_before: np.ndarray,
    protected: np.ndarray,
    constraints: Constraints,
    params: GAParams,
    rng: np.random.Generator,
) -> AttackResult:
    """Evolve substitution sets for every sequence at once; stop each on success or ``patience`` stale generations.

    Tournament selection, uniform crossover of whole sequences, mutation
    (one new substitution, or with probability 1/4 the undoing of one),
    elitism; offspring above the edit budget lose random edits, invalid
    offspring are replaced by their first parent.
    """
    s_count, length = originals.shape
    pop_size, k = params.population, constraints.max_edits
    order, n_allowed = _allowed_positions(protected)
    scorer = _Scorer(predict, labels, s_count)
    scorer.queries += 1  # the original's own prediction
    everything = np.arange(s_count)

    pop = np.repeat(originals[:, None, :], pop_size, axis=1)
    n_init = rng.integers(1, k + 1, size=(s_count, pop_size))
    for j in range(k):
        _substitute(pop, originals, order, n_allowed, rng, constraints.transition_weight, j < n_init)
    invalid = ~is_valid(pop, originals, protected, constraints=constraints)
    pop[invalid] = np.broadcast_to(originals[:, None, :], pop.shape)[invalid]
    p_true, pred = scorer(everything, pop)
    edits = (pop != originals[:, None, :]).sum(axis=-1)

    result = AttackResult(
        adversarial=originals.copy(),
        p_true_before=p_true_before.copy(),
        p_true_after=p_true_before.copy(),
        success=np.zeros(s_count, dtype=bool),
        queries=scorer.queries,
    )
    best_fit = np.full(s_count, np.inf)
    stall = np.zeros(s_count, dtype=np.int64)
    active = np.ones(s_count, dtype=bool)

    for generation in range(params.generations + 1):
        fit = _fitness(p_true, edits)
        rows = np.flatnonzero(active)
        # Record the best so far, then any success (which ends that sequence's search).
        sub, sub_p = pop[rows], p_true[rows]
        improved = _record_best(result, best_fit, rows, sub, sub_p, fit[rows], tol=1e-9)
        stall[rows] = np.where(improved, 0, stall[rows] + 1)
        won = _record_winners(result, rows, sub, sub_p, pred[rows], edits[rows], labels, params.delta)
        active[won] = False
        active[stall > params.patience] = False
        if generation == params.generations or not active.any():
            break
        rows = np.flatnonzero(active)
        n_rows, n_children = rows.size, pop_size - params.elitism

        first = _tournament(fit[rows], n_children, params.tournament, rng)
        second = _tournament(fit[rows], n_children, params.tournament, rng)
        sub = pop[rows]
        parent_a = np.take_along_axis(sub, first[..., None], axis=1)
        parent_b = np.take_along_axis(sub, second[..., None], axis=1)
        cross = rng.random((n_rows, n_children)) < params.crossover
        take_b = (rng.random(parent_a.shape) < 0.5) & cross[..., None]
        children = np.where(take_b, parent_b, parent_a)
        mutate = rng.random((n_rows, n_children)) < params.mutation
        undo = mutate & (rng.random((n_rows, n_children)) < 0.25)
        _substitute(
            children, originals[rows], order[rows], n_allowed[rows], rng, constraints.transition_weight, mutate & ~undo
        )
        _revert_one(children, originals[rows], rng, undo)
        _trim(children, originals[rows], k, rng)
        bad = ~is_valid(children, originals[rows], protected[rows], constraints=constraints)
        children[bad] = parent_a[bad]
        child_p, child_pred = scorer(rows, children)

        elite = np.argsort(fit[rows], axis=1, kind="stable")[:, : params.elitism]
        pop[rows] = np.concatenate([np.take_along_axis(sub, elite[..., None], axis=1), children], axis=1)
        p_true[rows] = np.concatenate([np.take_along_axis(p_true[rows], elite, axis=1), child_p], axis=1)
        pred[rows] = np.concatenate([np.take_along_axis(pred[rows], elite, axis=1), child_pred], axis=1)
        edits[rows] = (pop[rows] != originals[rows][:, None, :]).sum(axis=-1)
    log.info("GA: %d/%d sequences flipped after %d generation(s)", result.success.sum(), s_count, generation)
    return result


def random_attack(
    predict: Predict,
    originals: np.ndarray,
    labels: np.ndarray,
    *,
    p_true_before: np.ndarray,
    protected: np.ndarray,
    constraints: Constraints,
    budgets: np.ndarray,
    batch: int,
    delta: float,
    rng: np.random.Generator,
) -> AttackResult:
    """The chance baseline: batches of random valid candidates with ``max_edits`` substitutions each
    (same transition weighting), up to ``budgets[s]`` queries per sequence, stopping at the first success."""
    s_count, length = originals.shape
    k = constraints.max_edits
    order, n_allowed = _allowed_positions(protected)
    scorer = _Scorer(predict, labels, s_count)
    scorer.queries += 1
    result = AttackResult(
        originals.copy(), p_true_before.copy(), p_true_before.copy(), np.zeros(s_count, dtype=bool), scorer.queries
    )
    best = np.full(s_count, np.inf)
    active = budgets > scorer.queries
    while active.any():
        rows = np.flatnonzero(active)
        cand = np.repeat(originals[rows][:, None, :], batch, axis=1)
        every = np.ones((rows.size, batch), dtype=bool)
        for _ in range(k):
            _substitute(cand, originals[rows], order[rows], n_allowed[rows], rng, constraints.transition_weight, every)
        remaining = budgets[rows] - scorer.queries[rows]
        mask = is_valid(cand, originals[rows], protected[rows], constraints=constraints)
        mask &= np.cumsum(mask, axis=1) <= remaining[:, None]
        p_true, pred = scorer(rows, cand, mask)
        edits = (cand != originals[rows][:, None, :]).sum(axis=-1)
        _record_best(result, best, rows, cand, p_true, p_true)
        active[_record_winners(result, rows, cand, p_true, pred, edits, labels, delta)] = False
        # A batch with no valid candidate at all cannot make progress: stop rather than loop.
        active[rows[~mask.any(axis=1)]] = False
        active &= scorer.queries < budgets
    return result


def prune_edits(
    predict: Predict,
    result: AttackResult,
    *,
    originals: np.ndarray,
    labels: np.ndarray,
    protected: np.ndarray,
    constraints: Constraints,
    delta: float,
) -> AttackResult:
    """Greedily undo edits of successful candidates while they stay successful and valid.

    Each round tries every single-edit reversion of every still-shrinkable
    candidate in one call and keeps, per sequence, the surviving one with the
    lowest true-class probability. Used on the GA and the random baseline alike,
    so the edit counts compare search, not post-processing.
    """
    scorer = _Scorer(predict, labels, len(originals))
    todo = result.success.copy()
    while True:
        edits_now = (result.adversarial != originals).sum(axis=1)
        todo &= edits_now > 1
        if not todo.any():
            break
        rows = np.flatnonzero(todo)
        current, orig = result.adversarial[rows], originals[rows]
        diff = current != orig
        n_edits = diff.sum(axis=1)
        width = int(n_edits.max())
        positions = np.argsort(~diff, axis=1, kind="stable")[:, :width]
        slot = np.arange(width)[None, :] < n_edits[:, None]
        cand = np.repeat(current[:, None, :], width, axis=1)
        r, e = np.nonzero(slot)
        cand[r, e, positions[r, e]] = orig[r, positions[r, e]]
        mask = slot & is_valid(cand, orig, protected[rows], constraints=constraints)
        p_true, pred = scorer(rows, cand, mask)
        ok = successful(p_true, pred, labels[rows, None], p_true_before=result.p_true_before[rows, None], delta=delta)
        keep = ok.any(axis=1)
        _set_reported(result, rows, cand, p_true, keep, np.where(ok, p_true, np.inf).argmin(axis=1))
        todo[rows[~keep]] = False
    result.queries = result.queries + scorer.queries
    return result
