"""One attack run on one classifier: pick the attacked sequences, run the GA and the random baseline, tabulate.

Summary statistics (``summary.tsv``), per attack and per edit budget j:
- ``asr``: successes with at most j edits / sequences attacked (those the
  model classified correctly);
- ``mean_edits``, ``median_edits``, ``mean_conf_drop`` (p_true before − after)
  and ``transition_fraction`` (transitions / all substitutions): over those
  successes;
- ``mean_queries``: candidates scored per attacked sequence, the original
  and edit pruning included.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ...errors import InputError
from ...outputs import atomic_outputs, write_tsv
from ...sampling import sample_indices
from .classifiers import Classifier, load_classifier
from .constraints import Constraints, any_single_substitution, gc_fraction, is_transition, protected_mask
from .data import LabelledSequences, decode, encode, read_labelled_csv
from .search import AttackResult, GAParams, genetic_attack, prune_edits, random_attack
from .splits import check_fits

log = logging.getLogger(__name__)

ADVERSARIAL_COLUMNS = [
    "seq_id",
    "label",
    "original",
    "adversarial",
    "p_true_before",
    "p_true_after",
    "edits",
    "gc_before",
    "gc_after",
    "n_transitions",
    "queries",
    "success",
]
SUMMARY_COLUMNS = [
    "attack",
    "n_attacked",
    "asr",
    "mean_edits",
    "median_edits",
    "mean_conf_drop",
    "mean_queries",
    "transition_fraction",
]


def settings_from_config(block: Mapping[str, Any]) -> tuple[Constraints, GAParams]:
    """The ``robustness.ga.attack`` block as constraint and search settings."""
    constraints = Constraints(
        max_edits=block["max_edits"],
        gc_tolerance=block["gc_tolerance"],
        protected_motifs=tuple(block["protected_motifs"]),
        coding=block["coding"],
        frame=block["frame"],
        transition_weight=block["transition_weight"],
        forbid_new_motifs=block.get("forbid_new_motifs", False),  # blocks written before the key: off
    )
    params = GAParams(**{k: block[k] for k in GAParams.__dataclass_fields__})
    return constraints, params


def sample_rows(n_total: int, n: int, seed: int) -> np.ndarray:
    """A seeded sample of row indices, in file order."""
    return sample_indices(n_total, n, seed)


@dataclass
class Targets:
    """The sequences every attack of one run is given: those the model classified correctly."""

    attacked: LabelledSequences
    originals: np.ndarray
    labels: np.ndarray
    p_before: np.ndarray
    protected: np.ndarray
    possible: np.ndarray  # (S,) whether one valid substitution exists at all


@dataclass
class AttackRun:
    attacked: LabelledSequences  # the sequences the model got right
    originals: np.ndarray
    ga: AttackResult
    random: AttackResult
    targets: Targets | None = None


def attack_targets(clf: Classifier, data: LabelledSequences, constraints: Constraints) -> Targets:
    """Pick the correctly classified sequences of ``data``; refuse constraints that allow no substitution at all."""
    codes = encode(data.sequences)
    probs = clf.predict_proba(codes)
    correct = np.flatnonzero(probs.argmax(axis=1) == data.labels)
    log.info(
        "classifier %s: %d of %d sequences classified correctly; attacking those", clf.name, correct.size, len(data)
    )
    attacked = data.subset(correct)
    originals, labels = codes[correct], data.labels[correct]
    p_before = probs[correct, labels]
    protected = protected_mask(attacked.sequences, constraints.protected_motifs)
    possible = any_single_substitution(originals, protected, constraints)
    if correct.size and not possible.any():
        raise InputError(
            f"robustness.ga.attack: the constraints allow no substitution in any of the {correct.size} sequences "
            f"(max_edits {constraints.max_edits}, gc_tolerance {constraints.gc_tolerance}, protected motifs "
            f"{', '.join(constraints.protected_motifs) or 'none'}"
            f"{', coding' if constraints.coding else ''}), so no attack can succeed; relax them"
        )
    if (~possible).any():
        log.warning(
            "%d sequence(s) admit no valid substitution; they count as attacked and not flipped", int((~possible).sum())
        )
    return Targets(attacked, originals, labels, p_before, protected, possible)


def attack_sequences(
    clf: Classifier,
    data: LabelledSequences,
    *,
    constraints: Constraints,
    params: GAParams,
    seed: int,
    baseline: bool = True,
    prune: bool = True,
) -> AttackRun:
    """Attack every sequence of ``data`` that ``clf`` classifies correctly; GA first, then the random baseline
    with the GA's query count for that sequence."""
    t = attack_targets(clf, data, constraints)
    attacked, originals, labels, p_before = t.attacked, t.originals, t.labels, t.p_before
    protected, possible = t.protected, t.possible
    rng = np.random.default_rng(seed)
    ga = _empty(originals, p_before)
    rnd = _empty(originals, p_before)
    rows = np.flatnonzero(possible)
    if rows.size:
        # What every search and the pruning are given about the attackable sequences.
        chosen = dict(
            originals=originals[rows], labels=labels[rows], protected=protected[rows], constraints=constraints
        )
        p_true_before = p_before[rows]
        part = genetic_attack(clf.predict_proba, **chosen, p_true_before=p_true_before, params=params, rng=rng)
        budgets = part.queries.copy()
        if prune:
            part = prune_edits(clf.predict_proba, part, **chosen, delta=params.delta)
        _merge(ga, part, rows)
        if baseline:
            part = random_attack(
                clf.predict_proba,
                **chosen,
                p_true_before=p_true_before,
                budgets=budgets,
                batch=params.population,
                delta=params.delta,
                rng=rng,
            )
            if prune:
                part = prune_edits(clf.predict_proba, part, **chosen, delta=params.delta)
            _merge(rnd, part, rows)
    return AttackRun(attacked, originals, ga, rnd, t)


def _empty(originals: np.ndarray, p_before: np.ndarray) -> AttackResult:
    n = len(originals)
    return AttackResult(
        originals.copy(), p_before.copy(), p_before.copy(), np.zeros(n, dtype=bool), np.ones(n, dtype=np.int64)
    )


def _merge(into: AttackResult, part: AttackResult, rows: np.ndarray) -> None:
    into.adversarial[rows] = part.adversarial
    into.p_true_after[rows] = part.p_true_after
    into.success[rows] = part.success
    into.queries[rows] = part.queries


def adversarial_table(run: AttackRun) -> pd.DataFrame:
    """One row per attacked sequence: the GA's reported candidate."""
    res, orig = run.ga, run.originals
    diff = res.adversarial != orig
    return pd.DataFrame(
        {
            "seq_id": run.attacked.ids,
            "label": run.attacked.labels,
            "original": run.attacked.sequences,
            "adversarial": decode(res.adversarial) if len(orig) else [],
            "p_true_before": res.p_true_before,
            "p_true_after": res.p_true_after,
            "edits": diff.sum(axis=1),
            "gc_before": gc_fraction(orig),
            "gc_after": gc_fraction(res.adversarial),
            "n_transitions": (is_transition(orig, res.adversarial) & diff).sum(axis=1),
            "queries": res.queries,
            "success": res.success,
        },
        columns=ADVERSARIAL_COLUMNS,
    )


def summary_rows(name: str, res: AttackResult, *, originals: np.ndarray, max_edits: int) -> list[dict[str, Any]]:
    """The headline row (budget = max_edits) and one row ``<name>_k<j>`` per budget j = 1..max_edits."""
    diff = res.adversarial != originals
    edits = diff.sum(axis=1)
    transitions = (is_transition(originals, res.adversarial) & diff).sum(axis=1)
    drop = res.p_true_before - res.p_true_after
    n = len(originals)
    rows = []
    for label, budget in [(name, max_edits)] + [(f"{name}_k{j}", j) for j in range(1, max_edits + 1)]:
        hit = res.success & (edits <= budget)
        rows.append(
            {
                "attack": label,
                "n_attacked": n,
                "asr": hit.sum() / n if n else np.nan,
                "mean_edits": edits[hit].mean() if hit.any() else np.nan,
                "median_edits": float(np.median(edits[hit])) if hit.any() else np.nan,
                "mean_conf_drop": drop[hit].mean() if hit.any() else np.nan,
                "mean_queries": res.queries.mean() if n else np.nan,
                "transition_fraction": transitions[hit].sum() / edits[hit].sum() if hit.any() else np.nan,
            }
        )
    return rows


def summary_table(run: AttackRun, max_edits: int) -> pd.DataFrame:
    rows = summary_rows("ga", run.ga, originals=run.originals, max_edits=max_edits) + summary_rows(
        "random", run.random, originals=run.originals, max_edits=max_edits
    )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def ga_attack_stage(
    name: str,
    spec: Mapping[str, Any],
    *,
    folder: str,
    test_csv: str,
    non_acgt: str,
    attack: Mapping[str, Any],
    adversarial_tsv: str,
    summary_tsv: str,
) -> None:
    """Attack a seeded sample of the test split (``attack.n_sequences`` rows) with the GA and the random baseline;
    write the adversarial sequences and the summary by edit budget."""
    test = read_labelled_csv(test_csv, non_acgt)
    clf = load_classifier(name, folder, spec)
    check_fits(clf, test)
    constraints, params = settings_from_config(attack)
    chosen = test.subset(sample_rows(len(test), attack["n_sequences"], attack["seed"]))
    run = attack_sequences(clf, chosen, constraints=constraints, params=params, seed=attack["seed"])
    with atomic_outputs(adversarial_tsv, summary_tsv) as (adv_tmp, sum_tmp):
        write_tsv(adversarial_table(run), adv_tmp)
        write_tsv(summary_table(run, constraints.max_edits), sum_tmp)
