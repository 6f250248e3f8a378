"""The inner maximiser of adversarial training: gradient-guided greedy substitution under the GA's constraints.

HotFlip (Ebrahimi et al., ACL 2018) ranks every single substitution x_i := b of a one-hot input by the first-order
change of the loss, the directional derivative along the flip:

    gain(i, b) = dL/dx[i, b] - dL/dx[i, x_i]

(one backward pass scores all 3L flips). Here ``max_edits`` greedy steps are taken per sequence; each step

1. scores every flip at a position not yet edited and not protected by the first-order gain;
2. takes the ``candidates`` highest-gain flips that pass :func:`.constraints.is_valid` (edit budget, GC window,
   protected motifs, no new stop codon) against the *original* sequence;
3. evaluates their exact loss with one forward pass and keeps the best one if it raises the loss; a sequence
   whose best candidate does not raise its loss stops.

So every returned sequence satisfies the attack block's constraints and differs from its original at no more
than ``max_edits`` positions, the evaluation GA's own budget. With ``stop_after_flip`` tau a sequence also stops
tau steps after the classifier first gets it wrong (and one it already gets wrong with tau = 0 is returned as it
is): the early-stopped, "friendly" adversarial examples of Zhang et al., ICML 2020 (FAT), which lie just past the
decision boundary instead of deep in the other class, so that training on them costs less clean accuracy where
the budget's edits can change what a sequence is. The loss maximised is either the cross-entropy of
the true label (Madry et al., ICLR 2018: max_{x' in S(x)} CE(f(x'), y)) or, for TRADES (Zhang et al., ICML 2019),
KL(f(x) || f(x')) against the clean prediction. Queries: one gradient pass and ``candidates`` forward passes per
step and sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .constraints import Constraints, is_valid


@dataclass
class InnerResult:
    adversarial: np.ndarray  # (S, L) uint8
    loss: np.ndarray  # (S,) the maximised loss at the returned sequence
    queries: int  # gradient passes + scored candidates, summed over sequences


def _per_sequence_loss(clf, one_hot, labels, reference):
    """(CE of the true label (``reference`` None) or KL(reference || softmax(logits)), whether the classifier gets
    the sequence wrong (argmax != label)) per sequence."""
    import torch

    logits = clf.logits_from_one_hot(one_hot).float()
    wrong = (logits.argmax(dim=-1) != labels).cpu().numpy()
    if reference is None:
        return torch.nn.functional.cross_entropy(logits, labels, reduction="none"), wrong
    log_q = torch.log_softmax(logits, dim=-1)
    return (reference * (torch.log(reference.clamp_min(1e-12)) - log_q)).sum(dim=-1), wrong


def _one_hot(codes: np.ndarray, device):
    import torch

    x = torch.as_tensor(np.ascontiguousarray(codes), dtype=torch.long, device=device)
    return torch.nn.functional.one_hot(x, 4).to(torch.float32).transpose(1, 2)


def hotflip_attack(
    clf,
    originals: np.ndarray,
    labels: np.ndarray,
    *,
    protected: np.ndarray,
    constraints: Constraints,
    candidates: int = 4,
    reference: np.ndarray | None = None,
    stop_after_flip: int | None = None,
) -> InnerResult:
    """Greedy gradient-guided substitutions (see the module docstring) on a classifier with
    ``logits_from_one_hot`` (the CNN). ``reference`` (S, C): clean class probabilities for the TRADES KL loss;
    ``stop_after_flip`` tau: stop a sequence tau steps after it is first misclassified (None: never)."""
    import torch

    device = getattr(clf, "device", "cpu")
    s_count, length = originals.shape
    y = torch.as_tensor(labels, dtype=torch.long, device=device)
    ref = None if reference is None else torch.as_tensor(reference, dtype=torch.float32, device=device)
    current = originals.copy()
    was_training = clf.model.training
    clf.model.eval()  # dropout off: the attack maximises the loss of the model that is evaluated
    with torch.no_grad():
        loss, wrong = _per_sequence_loss(clf, _one_hot(current, device), y, ref)
    current_loss = loss.cpu().numpy()
    queries = s_count
    active = np.ones(s_count, dtype=bool)
    rows_all = np.arange(s_count)
    # Steps taken since the sequence was first misclassified; -1 while it is still classified correctly.
    since = np.where(wrong, 0, -1)
    for _ in range(constraints.max_edits):
        if stop_after_flip is not None:
            active &= since < stop_after_flip
        rows = rows_all[active]
        if rows.size == 0:
            break
        one_hot = _one_hot(current[rows], device).requires_grad_(True)
        loss, _ = _per_sequence_loss(clf, one_hot, y[rows], None if ref is None else ref[rows])
        (grad,) = torch.autograd.grad(loss.sum(), one_hot)
        grad = grad.transpose(1, 2).cpu().numpy().astype(np.float64)  # (R, L, 4)
        queries += rows.size
        cur = current[rows]
        gain = grad - np.take_along_axis(grad, cur[..., None].astype(np.int64), axis=2)
        blocked = protected[rows] | (cur != originals[rows])
        gain[blocked] = -np.inf
        gain[np.arange(rows.size)[:, None], np.arange(length)[None, :], cur] = -np.inf
        flat = gain.reshape(rows.size, -1)
        # Rank a few more than needed: some top flips may break the GC window or make a stop codon.
        n_rank = min(flat.shape[1], 4 * candidates)
        top = np.argsort(-flat, axis=1, kind="stable")[:, :n_rank]
        finite = np.isfinite(np.take_along_axis(flat, top, axis=1))
        pos, base = top // 4, (top % 4).astype(np.uint8)
        cand = np.repeat(cur[:, None, :], n_rank, axis=1)
        r = np.arange(rows.size)[:, None]
        cand[r, np.arange(n_rank)[None, :], pos] = base
        ok = finite & is_valid(cand, originals[rows], protected[rows], constraints=constraints)
        ok &= np.cumsum(ok, axis=1) <= candidates
        scored = np.full((rows.size, n_rank), -np.inf)
        is_wrong = np.zeros((rows.size, n_rank), dtype=bool)
        if ok.any():
            rr, cc = np.nonzero(ok)
            with torch.no_grad():
                values, is_wrong[rr, cc] = _per_sequence_loss(
                    clf,
                    _one_hot(cand[rr, cc], device),
                    y[rows][rr],
                    None if ref is None else ref[rows][rr],
                )
            scored[rr, cc] = values.cpu().numpy()
            queries += int(ok.sum())
        choice = scored.argmax(axis=1)
        best = scored[np.arange(rows.size), choice]
        better = best > current_loss[rows]
        current[rows[better]] = cand[better, choice[better]]
        current_loss[rows[better]] = best[better]
        active[rows[~better]] = False
        moved, now_wrong = rows[better], is_wrong[np.arange(rows.size), choice][better]
        since[moved] = np.where(now_wrong, np.where(since[moved] >= 0, since[moved] + 1, 0), -1)
    clf.model.train(was_training)
    return InnerResult(current, current_loss, queries)
