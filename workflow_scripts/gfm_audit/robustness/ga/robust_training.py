"""Whole-epoch adversarial training with the gradient-guided inner maximiser (:mod:`.inner`).

Every batch B of the clean training split gets an adversarial version x' of each of its sequences, made against
the current weights by :func:`.inner.hotflip_attack` at the evaluation budget under the attack block's constraints
(S(x): at most ``max_edits`` substitutions, GC window, protected motifs, stop codons). The outer step minimises

- ``loss: madry`` (Madry et al., ICLR 2018, with the clean half of Goodfellow et al., ICLR 2015):
  w CE(f(x), y) + (1 - w) CE(f(x'), y), x' = argmax_{x' in S(x)} CE(f(x'), y), w = ``clean_weight`` (default
  1/2; a weighted clean/adversarial mix as in Kurakin et al., ICLR 2017: a larger w keeps more clean accuracy
  where the adversarial examples at the budget are hard to tell from the other class);
- ``loss: trades`` (Zhang et al., ICML 2019): CE(f(x), y) + beta KL(f(x) || f(x')),
  x' = argmax_{x' in S(x)} KL(f(x) || f(x')).

The training keeps the clean examples in every batch, so the model does not forget the clean task while it learns
the adversarial one. With ``ema_decay`` d the model kept is the exponential moving average of the weights over the
optimiser steps, theta_avg <- d theta_avg + (1 - d) theta_t (from theta_1; Polyak averaging as used for adversarial
training by Gowal et al., 2020, arXiv:2010.03593, and Chen et al., ICLR 2021, against robust overfitting): the inner
maximiser still attacks the current weights theta_t.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from ...determinism import single_cpu_thread
from ...errors import InputError
from .classifiers import Classifier, CNNClassifier
from .constraints import Constraints, protected_mask
from .data import LabelledSequences, encode
from .inner import hotflip_attack

log = logging.getLogger(__name__)


def reset_weights(clf: Classifier, seed: int) -> None:
    """Re-initialise every trainable layer (seeded): adversarial training from the start rather than a fine-tune."""
    import torch

    if not isinstance(clf, CNNClassifier):
        raise InputError(
            f"classifier '{clf.name}': robustness.ga.adversarial_training.init scratch re-initialises a CNN only "
            "(a GFM head would lose its pretrained encoder); use init: clean for this one"
        )
    torch.manual_seed(seed)
    for module in clf.model.modules():
        if hasattr(module, "reset_parameters") and any(p.requires_grad for p in module.parameters(recurse=False)):
            module.reset_parameters()


def robust_epochs(
    clf: Classifier,
    train: LabelledSequences,
    *,
    constraints: Constraints,
    settings: Mapping[str, Any],
    training: Mapping[str, Any],
    seed: int,
) -> tuple[int, int, list[float]]:
    """``settings['epochs']`` epochs (see the module docstring); returns (adversarial sequences made, queries,
    per-epoch mean loss)."""
    if not hasattr(clf, "logits_from_one_hot"):
        raise InputError(
            f"classifier '{clf.name}': robustness.ga.adversarial_training.inner hotflip needs a one-hot input "
            "classifier (kind cnn); use inner: greedy for this one"
        )
    with single_cpu_thread():
        return _robust_epochs(clf, train, constraints, settings, training, seed)


def _robust_epochs(clf, train, constraints, settings, training, seed) -> tuple[int, int, list[float]]:
    import torch

    codes, labels = encode(train.sequences), train.labels
    protected = protected_mask(train.sequences, constraints.protected_motifs)
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(clf.trainable(), lr=settings["learning_rate"], weight_decay=training["weight_decay"])
    generator = torch.Generator().manual_seed(seed)
    trades = settings["loss"] == "trades"
    made = queries = 0
    losses = []
    average = _weight_average(clf, settings.get("ema_decay"))
    for epoch in range(settings["epochs"]):
        order = torch.randperm(len(codes), generator=generator).numpy()
        total, batches = 0.0, 0
        for start in range(0, len(order), training["batch_size"]):
            rows = order[start : start + training["batch_size"]]
            x, y = codes[rows], labels[rows]
            reference = clf.predict_proba(x) if trades else None
            inner = hotflip_attack(
                clf,
                x,
                y,
                protected=protected[rows],
                constraints=constraints,
                candidates=settings["inner_candidates"],
                reference=reference,
                stop_after_flip=settings.get("inner_stop_after_flip"),
            )
            made += len(rows)
            queries += inner.queries
            target = torch.as_tensor(y, dtype=torch.long)
            clf.model.train()
            if trades:
                clean = clf.logits(x).float()
                adv = clf.logits(inner.adversarial).float()
                kl = torch.nn.functional.kl_div(
                    torch.log_softmax(adv, dim=-1), torch.softmax(clean, dim=-1), reduction="batchmean"
                )
                loss = torch.nn.functional.cross_entropy(clean, target) + settings["trades_beta"] * kl
            else:
                logits = clf.logits(np.concatenate([x, inner.adversarial])).float()
                per_row = torch.nn.functional.cross_entropy(logits, torch.cat([target, target]), reduction="none")
                # 2w and 2(1 - w) under a mean over both halves: at w = 1/2 both are exactly 1, the plain mean.
                w = settings.get("clean_weight", 0.5)
                half = len(rows)
                weights = torch.cat([torch.full((half,), 2 * w), torch.full((half,), 2 * (1 - w))])
                loss = (per_row * weights).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            clf.model.eval()
            if average is not None:
                average.update_parameters(clf.model)
            total += float(loss.detach())
            batches += 1
        losses.append(total / max(batches, 1))
        # One line per epoch: the deep demo CNN's ten epochs ran 87 minutes on one core with no other sign of life.
        log.info("adversarial training epoch %d of %d: mean loss %.4f", epoch + 1, settings["epochs"], losses[-1])
    if average is not None:
        clf.model.load_state_dict(average.module.state_dict())
    return made, queries, losses


def _weight_average(clf: Classifier, decay: float | None):
    """torch's exponential moving average of the trainable weights (None when ``ema_decay`` is unset)."""
    if decay is None:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    # Buffers are averaged too, so a model with batch statistics keeps ones that match its averaged weights.
    return AveragedModel(clf.model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
