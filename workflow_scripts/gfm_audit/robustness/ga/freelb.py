r"""FreeLB adversarial training (``robustness.ga.adversarial_training.scheme: freelb``).

Zhu, Cheng, Gan, Sun, Goldstein & Liu, "FreeLB: Enhanced Adversarial Training for Natural Language
Understanding", ICLR 2020, Algorithm 1. Per batch ``(X, y)``, with ``X`` the classifier's continuous input:

.. math::

    \delta_0 = \frac{1}{\sqrt{N_\delta}} U(-\sigma, \sigma), \qquad g_0 = 0,

    g_t = g_{t-1} + \frac{1}{K} \nabla_\theta L(f_\theta(X + \delta_{t-1}), y), \qquad
    g_{adv} = \nabla_\delta L(f_\theta(X + \delta_{t-1}), y),

    \delta_t = \Pi_{\|\delta\|_2 \le \epsilon}\left(\delta_{t-1} + \alpha\, g_{adv} / \|g_{adv}\|_2\right),
    \qquad t = 1 \dots K,

    \theta \leftarrow \theta - \tau\, g_K \quad \text{(here: one AdamW step on } g_K\text{)},

so the parameter gradient is the average over the ``K`` ascent steps of the gradients at ``X + \delta_{t-1}`` (the
"free" gradients), and ``\delta`` is an L2 ascent projected, per sequence, to the ball of radius ``\epsilon``
(:math:`N_\delta` = the number of entries of one sequence's perturbation, :math:`\sigma` = ``init_magnitude``).

The continuous input ``X``:

- ``cnn``: the one-hot bases, (N, 4, L), relaxed to real values (the PGD attack's relaxation): the CNN is trained
  on one-hot matrices plus a perturbation of L2 norm at most ``epsilon`` per sequence (a one-hot sequence has norm
  sqrt(L));
- ``gfm_head`` and ``huggingface``: the output of the model's token-embedding layer (its ``get_input_embeddings()``,
  or the first ``nn.Embedding`` named ``word_embeddings``/``embed_tokens``), perturbed through a forward hook, as in
  the paper. With the encoder frozen only the head is trained, but the perturbation still reaches it through the
  encoder. Padding positions are perturbed too (they are masked out of attention and pooling, so they only take a
  share of the budget).

A classifier with neither (no token embeddings to perturb) is refused in one line before anything is written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ...errors import InputError
from .classifiers import Classifier, CNNClassifier
from .data import LabelledSequences, encode

log = logging.getLogger(__name__)

EMBEDDING_NAMES = ("word_embeddings", "embed_tokens", "wte", "embeddings")


def embedding_layer(clf: Classifier):
    """The classifier's token-embedding module (None for the CNN, whose input is the one-hot matrix itself)."""
    import torch

    if isinstance(clf, CNNClassifier):
        return None
    model = getattr(clf, "lm", None)
    model = getattr(clf, "model", None) if model is None else model
    if not isinstance(model, torch.nn.Module):
        return _refuse(clf)
    getter = getattr(model, "get_input_embeddings", None)
    if getter is not None:
        try:
            layer = getter()
        except NotImplementedError:
            layer = None
        if isinstance(layer, torch.nn.Embedding):
            return layer
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Embedding) and name.rsplit(".", 1)[-1] in EMBEDDING_NAMES:
            return module
    return _refuse(clf)


def _refuse(clf: Classifier):
    raise InputError(
        f"classifier '{clf.name}': robustness.ga.adversarial_training.scheme freelb perturbs the input embeddings "
        f"(or the CNN's one-hot input), and {type(clf).__name__} has neither; use scheme iterative, madry or adfar "
        "for it"
    )


def check_freelb(clf: Classifier) -> None:
    """Refuse, in one line, a classifier FreeLB cannot perturb."""
    embedding_layer(clf)


def ball_project(delta, epsilon: float):
    """Each sequence's perturbation (first axis) scaled into the L2 ball of radius ``epsilon``."""
    import torch

    norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
    scale = torch.clamp(epsilon / norms, max=1.0)
    return delta * scale.view(-1, *([1] * (delta.dim() - 1)))


def ascent(delta, grad, *, step_size: float, epsilon: float):
    """One FreeLB ascent step: delta + alpha grad / ||grad|| per sequence, projected to the epsilon ball."""
    norms = grad.flatten(1).norm(dim=1).clamp_min(1e-12)
    step = grad / norms.view(-1, *([1] * (grad.dim() - 1)))
    return ball_project(delta + step_size * step, epsilon)


class _Perturbed:
    """Runs the classifier on its continuous input plus the current perturbations, one per forward call (a native
    model without attention masks makes one call per sequence length)."""

    def __init__(self, clf: Classifier, init: Callable):
        self.clf, self.init = clf, init
        self.layer = embedding_layer(clf)
        self.deltas: list = []

    def logits(self, codes: np.ndarray):
        import torch

        if self.layer is None:
            x = torch.as_tensor(np.ascontiguousarray(codes), dtype=torch.long, device=self.clf.device)
            one_hot = torch.nn.functional.one_hot(x, 4).to(torch.float32).transpose(1, 2)
            if not self.deltas:
                self.deltas.append(self.init(one_hot.shape))
            return self.clf.logits_from_one_hot(one_hot + self.deltas[0])
        calls = iter(range(10**9))

        def add(module, inputs, output):
            i = next(calls)
            if i == len(self.deltas):
                self.deltas.append(self.init(output.shape))
            return output + self.deltas[i].to(output.dtype)

        handle = self.layer.register_forward_hook(add)
        try:
            return self.clf.logits(codes)
        finally:
            handle.remove()


def freelb_batch(
    clf: Classifier,
    codes: np.ndarray,
    labels: np.ndarray,
    *,
    steps: int,
    epsilon: float,
    step_size: float,
    init_magnitude: float,
    generator,
) -> list[list]:
    """Accumulate FreeLB's K-step parameter gradient of one batch into ``.grad`` (no optimizer step).

    Returns the perturbations used, ``trajectory[t]`` = the list of :math:`\\delta_t` (one per forward call) for
    t = 0..K; the forward pass of step t ran on :math:`X + \\delta_{t-1}`.
    """
    import torch

    def init(shape):
        n_entries = int(np.prod(shape[1:]))
        u = torch.rand(shape, generator=generator, dtype=torch.float32) * 2 - 1
        delta = ball_project(u * init_magnitude / np.sqrt(n_entries), epsilon)
        return delta.to(clf.device).requires_grad_(True)

    perturbed = _Perturbed(clf, init)
    target = torch.as_tensor(labels, dtype=torch.long, device=clf.device)
    trajectory = []
    for _ in range(steps):
        logits = perturbed.logits(codes)
        if not trajectory:
            trajectory.append([d.detach().clone() for d in perturbed.deltas])
        loss = torch.nn.functional.cross_entropy(logits.float(), target) / steps
        loss.backward()  # adds 1/K of this step's parameter gradient to .grad: g_t = g_{t-1} + grad / K
        perturbed.deltas = [
            ascent(d.detach(), d.grad, step_size=step_size, epsilon=epsilon).requires_grad_(True)
            for d in perturbed.deltas
        ]
        trajectory.append([d.detach().clone() for d in perturbed.deltas])
    return trajectory


def freelb_epochs(
    clf: Classifier,
    train: LabelledSequences,
    *,
    settings: Mapping[str, Any],
    training: Mapping[str, Any],
    seed: int,
) -> tuple[int, int]:
    """``settings['epochs']`` epochs of FreeLB over the training split; returns (perturbed sequences, gradient
    passes = K per sequence)."""
    from ...determinism import single_cpu_thread

    check_freelb(clf)
    with single_cpu_thread():
        return _freelb_epochs(clf, train, settings, training, seed)


def _freelb_epochs(clf, train, settings, training, seed) -> tuple[int, int]:
    import torch

    block = settings["freelb"]
    codes, labels = encode(train.sequences), train.labels
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(clf.trainable(), lr=settings["learning_rate"], weight_decay=training["weight_decay"])
    order_gen = torch.Generator().manual_seed(seed)
    delta_gen = torch.Generator().manual_seed(seed + 1)
    made = passes = 0
    for _ in range(settings["epochs"]):
        order = torch.randperm(len(codes), generator=order_gen).numpy()
        for start in range(0, len(order), training["batch_size"]):
            rows = order[start : start + training["batch_size"]]
            clf.model.train()
            optimizer.zero_grad(set_to_none=True)
            # Frozen encoder weights (requires_grad False) collect no gradient: only the trainable ones accumulate.
            freelb_batch(
                clf,
                codes[rows],
                labels[rows],
                steps=block["steps"],
                epsilon=block["epsilon"],
                step_size=block["step_size"],
                init_magnitude=block["init_magnitude"],
                generator=delta_gen,
            )
            optimizer.step()
            clf.model.eval()
            made += len(rows)
            passes += len(rows) * block["steps"]
    log.info("FreeLB: %d sequences perturbed, %d gradient passes", made, passes)
    return made, passes
