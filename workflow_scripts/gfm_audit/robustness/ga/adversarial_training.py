"""Adversarial training schemes (``robustness.ga.adversarial_training.scheme``); ``freelb`` (FreeLB, embedding
perturbations) and ``adfar`` (ADFAR, detection + frequency-aware randomisation) are in :mod:`.freelb` and
:mod:`.adfar`, the check of which classifier takes which in :mod:`.defences`.

``iterative`` (the default): each iteration attacks the current model on a fresh seeded sample of the
*training* split, adds the successful adversarial sequences with their true
labels to the training set, and fine-tunes (only the head when the encoder is
frozen). After every iteration the model is measured on the clean test split
and on a fixed held-out attack set drawn from the test split, which is never
trained on. The earlier GA study this attack follows made adversarial
examples from the test set and then trained and evaluated on that same set;
here the splits never meet.

``madry`` (Madry et al., ICLR 2018: min_theta E[max_{x' in S(x)} loss(theta, x', y)]): each iteration is
``epochs`` epochs over the clean training split in which every batch is mixed with adversarial versions of its
sequences, made on the fly against the current weights under the attack block's constraints at budget
``inner_max_edits`` (null: the attack's own ``max_edits``). With ``inner: hotflip`` (one-hot classifiers, the
CNN; ``inner: auto`` picks it for those) every sequence of the batch gets one from the gradient-guided greedy
maximiser (HotFlip, Ebrahimi et al., ACL 2018; :mod:`.inner`), with the madry or the TRADES loss (Zhang et al.,
ICML 2019) and, with ``init: scratch``, from freshly initialised weights (:mod:`.robust_training`). With
``inner: greedy`` the first ``adv_per_batch`` sequences of each batch get one from the greedy attack
(:mod:`.comparison`), which keeps its lowest-p_true candidate whether or not it flips the label; the loss is
the mean cross-entropy over the clean and adversarial sequences of the batch.

robust accuracy (:mod:`.robust_accuracy`, the standard criterion) = held-out sequences classified correctly that
no attack within j edits makes wrong / held-out sequences; ``robust_accuracy`` with its 95% Wilson score interval
(Wilson, JASA 1927) at the attack's budget, and the robust counts ``n_robust_k<j>`` at every budget j =
1..max_edits, are in ``cost.tsv`` beside the cost of the iteration (queries spent making training adversarial
examples, wall seconds). ``asr`` in ``progress.tsv`` stays the GA's own success rate (flip and p_true down by
delta) over the correctly classified held-out sequences.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from ...outputs import atomic_outputs, write_tsv
from .adfar import AdfarClassifier
from .attack import attack_sequences, sample_rows, settings_from_config
from .classifiers import Classifier, accuracy, load_classifier, save_classifier
from .constraints import Constraints, protected_mask
from .data import LabelledSequences, encode
from .defences import check_scheme
from .freelb import freelb_epochs
from .robust_accuracy import robust_by_budget
from .robust_training import reset_weights, robust_epochs
from .search import GAParams
from .splits import check_fits, load_splits

log = logging.getLogger(__name__)

PROGRESS_COLUMNS = [
    "iteration",
    "train_size",
    "n_adversarial",
    "clean_accuracy",
    "robust_accuracy",
    "asr",
    "n_attacked",
]

COST_COLUMNS = [
    "iteration",
    "scheme",
    "robust_accuracy",
    "robust_ci_low",
    "robust_ci_high",
    "n_holdout",
    "attack_queries",
    "seconds",
]
Z_95 = 1.959963984540054


def wilson_interval(k: float, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n: (p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n).

    At k = 0 the lower end is exactly 0 and at k = n the upper end exactly 1 (the formula's value there; computed
    in floats, centre - half misses it by rounding, about 1e-17)."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if k <= 0 else max(0.0, centre - half)
    high = 1.0 if k >= n else min(1.0, centre + half)
    return low, high


def holdout_needed(gain: float, z: float = Z_95) -> int:
    """The smallest holdout n whose Wilson intervals at robust accuracy 0.5 - gain/2 and 0.5 + gain/2 do not
    overlap: the size at which a gain of ``gain`` can show as significant where the binomial variance is largest."""
    if not 0 < gain <= 1:
        raise ValueError(f"gain must be in (0, 1], got {gain}")
    n = 1
    while wilson_interval(n * (0.5 + gain / 2), n, z)[0] <= wilson_interval(n * (0.5 - gain / 2), n, z)[1]:
        n += 1
    return n


def check_holdout(n_holdout: int, gain: float | None) -> None:
    """Warn (one line) when a holdout of ``n_holdout`` sequences is too small for its intervals to separate a
    robust-accuracy gain of ``gain`` (``adversarial_training.target_gain``; None: no check)."""
    if gain is None:
        return
    needed = holdout_needed(gain)
    if n_holdout < needed:
        log.warning(
            "robustness.ga.adversarial_training.holdout: %d held-out sequences cannot separate a robust-accuracy "
            "gain of %.2f (target_gain) with non-overlapping 95%% Wilson intervals; use at least %d (or a smaller "
            "target_gain)",
            n_holdout,
            gain,
            needed,
        )


def _holdout_metrics(clf, holdout, constraints, params, seed) -> tuple[float, int, np.ndarray]:
    """The GA's success rate (its own rule) over the correct held-out sequences, how many those are, and the
    robust counts by budget under the standard criterion."""
    run = attack_sequences(clf, holdout, constraints=constraints, params=params, seed=seed, baseline=False, prune=False)
    flipped = int(run.ga.success.sum())
    n_attacked = len(run.attacked)
    robust = robust_by_budget(clf, holdout, constraints=constraints, params=params, seed=seed).robust
    return (flipped / n_attacked if n_attacked else float("nan")), n_attacked, robust


def madry_epochs(
    clf: Classifier,
    train: LabelledSequences,
    *,
    constraints: Constraints,
    delta: float,
    settings: Mapping[str, Any],
    training: Mapping[str, Any],
    seed: int,
) -> tuple[int, int]:
    """``settings['epochs']`` epochs of Madry-style training; returns (adversarial sequences made, queries spent)."""
    from ...determinism import single_cpu_thread

    budget = settings.get("inner_max_edits") or constraints.max_edits
    inner = settings.get("inner", "greedy")
    if inner == "hotflip" or (inner == "auto" and hasattr(clf, "logits_from_one_hot")):
        made, queries, _ = robust_epochs(
            clf,
            train,
            constraints=replace(constraints, max_edits=budget),
            settings=settings,
            training=training,
            seed=seed,
        )
        return made, queries
    with single_cpu_thread():
        return _madry_epochs(clf, train, constraints, delta, {**settings, "inner_max_edits": budget}, training, seed)


def _madry_epochs(clf, train, constraints, delta, settings, training, seed) -> tuple[int, int]:
    import torch

    from .comparison import all_alternatives, ranked_substitution_attack

    codes, labels = encode(train.sequences), train.labels
    protected = protected_mask(train.sequences, constraints.protected_motifs)
    inner = replace(constraints, max_edits=settings["inner_max_edits"])
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(clf.trainable(), lr=settings["learning_rate"], weight_decay=training["weight_decay"])
    generator = torch.Generator().manual_seed(seed)
    made = queries = 0
    for _ in range(settings["epochs"]):
        order = torch.randperm(len(codes), generator=generator).numpy()
        for start in range(0, len(order), training["batch_size"]):
            rows = order[start : start + training["batch_size"]]
            adv_rows = rows[: settings["adv_per_batch"]]
            x, y = codes[adv_rows], labels[adv_rows]
            proposals = all_alternatives(x)
            if settings["inner_positions"] is not None and settings["inner_positions"] < x.shape[1]:
                keys = rng.random(x.shape)
                kth = np.sort(keys, axis=1)[:, settings["inner_positions"] - 1 : settings["inner_positions"]]
                proposals &= (keys <= kth)[..., None]
            p_before = clf.predict_proba(x)[np.arange(len(y)), y]
            res = ranked_substitution_attack(
                clf.predict_proba,
                x,
                y,
                p_true_before=p_before,
                protected=protected[adv_rows],
                proposals=proposals,
                constraints=inner,
                delta=delta,
            )
            made += len(adv_rows)
            queries += int(res.queries.sum())
            batch = np.concatenate([codes[rows], res.adversarial])
            target = torch.as_tensor(np.concatenate([labels[rows], y]), dtype=torch.long)
            clf.model.train()
            logits = clf.logits(batch)
            loss = torch.nn.functional.cross_entropy(logits.float(), target.to(logits.device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            clf.model.eval()
    return made, queries


def adversarial_training(
    clf: Classifier,
    train: LabelledSequences,
    test: LabelledSequences,
    *,
    constraints: Constraints,
    params: GAParams,
    settings: Mapping[str, Any],
    training: Mapping[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run ``settings['iterations']`` rounds of the configured scheme; returns the progress table (iteration 0 =
    before any) and the cost table (robust accuracy with its Wilson interval, queries, seconds)."""
    seed = settings["seed"]
    scheme = settings.get("scheme", "iterative")
    holdout = test.subset(sample_rows(len(test), settings["holdout"], seed))
    check_holdout(len(holdout), settings.get("target_gain"))
    if scheme == "adfar" and not isinstance(clf, AdfarClassifier):  # detector + randomisation (adfar.py)
        clf = AdfarClassifier(clf, train, settings=settings)
    test_codes = encode(test.sequences)
    train_codes, train_labels = encode(train.sequences), train.labels
    adv_codes = np.zeros((0, train_codes.shape[1]), dtype=np.uint8)
    adv_labels = np.zeros(0, dtype=np.int64)
    fine_tune = {**training, "epochs": settings["epochs"], "learning_rate": settings["learning_rate"]}
    rows, costs = [], []
    n_made = 0
    for iteration in range(settings["iterations"] + 1):
        started, queries = time.perf_counter(), 0
        if iteration and scheme == "freelb":
            made, queries = freelb_epochs(clf, train, settings=settings, training=training, seed=seed + iteration)
            n_made += made
        elif iteration and scheme == "adfar":
            made, queries = clf.train_round(
                train,
                constraints=constraints,
                params=params,
                settings=settings,
                training=training,
                seed=seed + iteration,
            )
            n_made += made
        elif iteration and scheme == "madry":
            if iteration == 1 and settings.get("init", "clean") == "scratch":
                reset_weights(clf, seed)
            made, queries = madry_epochs(
                clf,
                train,
                constraints=constraints,
                delta=params.delta,
                settings=settings,
                training=training,
                seed=seed + iteration,
            )
            n_made += made
            log.info("iteration %d: %d adversarial sequences made on the fly, %d queries", iteration, made, queries)
        elif iteration:
            pick = sample_rows(len(train), settings["train_sample"], seed + iteration)
            run = attack_sequences(
                clf,
                train.subset(pick),
                constraints=constraints,
                params=params,
                seed=seed + iteration,
                baseline=False,
                prune=False,
            )
            won = run.ga.success
            queries = int(run.ga.queries.sum())
            adv_codes = np.concatenate([adv_codes, run.ga.adversarial[won]])
            adv_labels = np.concatenate([adv_labels, run.attacked.labels[won]])
            n_made = len(adv_codes)
            log.info(
                "iteration %d: %d adversarial training sequences from %d attacked",
                iteration,
                won.sum(),
                len(run.attacked),
            )
            clf.fit(
                np.concatenate([train_codes, adv_codes]),
                np.concatenate([train_labels, adv_labels]),
                training=fine_tune,
                seed=seed + iteration,
            )
        seconds = time.perf_counter() - started
        asr, n_attacked, by_budget = _holdout_metrics(clf, holdout, constraints, params, seed)
        n_robust = int(by_budget[-1])
        robust = n_robust / len(holdout) if len(holdout) else float("nan")
        rows.append(
            {
                "iteration": iteration,
                "train_size": len(train_codes) + len(adv_codes),
                "n_adversarial": n_made,
                "clean_accuracy": accuracy(clf, test_codes, test.labels),
                "robust_accuracy": robust,
                "asr": asr,
                "n_attacked": n_attacked,
            }
        )
        low, high = wilson_interval(n_robust, len(holdout))
        costs.append(
            {
                "iteration": iteration,
                "scheme": scheme,
                "robust_accuracy": robust,
                "robust_ci_low": low,
                "robust_ci_high": high,
                "n_holdout": len(holdout),
                "attack_queries": queries,
                "seconds": round(seconds, 1),
                **{f"n_robust_k{j}": int(k) for j, k in enumerate(by_budget, start=1)},
            }
        )
        log.info("iteration %d: %s", iteration, rows[-1])
    budgets = [f"n_robust_k{j}" for j in range(1, constraints.max_edits + 1)]
    return pd.DataFrame(rows, columns=PROGRESS_COLUMNS), pd.DataFrame(costs, columns=COST_COLUMNS + budgets)


def adversarial_training_stage(
    name: str,
    spec: Mapping[str, Any],
    *,
    folder: str,
    train_csv: str,
    test_csv: str,
    non_acgt: str,
    attack: Mapping[str, Any],
    settings: Mapping[str, Any],
    progress_tsv: str,
    cost_tsv: str,
    model_dir: str,
) -> None:
    """Adversarially train the classifier saved in ``folder``; write its progress and cost tables and the model."""
    train, test = load_splits(train_csv, test_csv, non_acgt)
    clf = load_classifier(name, folder, spec)
    check_fits(clf, train, test)
    check_scheme(clf, settings.get("scheme", "iterative"))
    if settings.get("scheme") == "adfar":  # wrapped here, so that the saved model keeps its detection head
        clf = AdfarClassifier(clf, train, settings=settings)
    constraints, params = settings_from_config(attack)
    progress, cost = adversarial_training(
        clf, train, test, constraints=constraints, params=params, settings=settings, training=spec["training"]
    )
    with atomic_outputs(progress_tsv, cost_tsv) as (tmp, cost_tmp):
        write_tsv(progress, tmp)
        write_tsv(cost, cost_tmp)
        save_classifier(clf, [], model_dir)
