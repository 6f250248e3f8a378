"""ReCaLL (Xie et al. 2024, "ReCaLL: Membership inference via relative conditional log-likelihoods").

score(x) = LL(x | P) / LL(x)
with LL(x) = -loss, the mean log p(x_t | x_<t) over the window's scored tokens, and LL(x | P) the mean log
p(x_t | P, x_<t) over every scorable token of x with the prefix P before it (feature
``recall_loss_n<n>_seed<s>``, computed by the scoring jobs: :func:`..scoring.conditional_losses`). P is the
bases of attacks.recall.prefix_windows non-member windows of the target's membership ground truth, drawn with
attacks.recall.seed (:func:`prefix_windows`) and joined end to end in window order.

Sign: both log-likelihoods are negative, and a non-member prefix lowers a member's likelihood more than a
non-member's (Xie et al.), so the ratio is larger for members: higher = member. mimir's implementation
(iamgroot42/mimir, mimir/attacks/recall.py) returns ``ll_nonmember / lls`` = LL(x | P) / (-LL(x)), the negative of
this score, under its convention that a lower score means member (its get_roc_metrics negates the scores): the
same ordering. As there, the prefix's tokens are not scored, the window's first token is (the prefix predicts
it), and LL(x) is the plain loss.

The prefix's own windows get no score (NaN): the metrics leave them out, as they do RMIA's population, and
metrics.tsv's n_nonmembers counts the non-members that remain. Causal models only: a masked model has no
left-to-right likelihood to condition on a prefix, and config validation refuses recall with one.
"""

from __future__ import annotations

import os

import numpy as np

from ...errors import InputError
from ...sampling import sample_indices
from ..features import recall_feature

NAME = "recall"
DEFAULTS = {"prefix_windows": 1, "seed": 0}


def settings(params) -> tuple[int, int]:
    """(prefix windows, seed) of attacks.recall."""
    block = {**DEFAULTS, **params.get("recall", {})}
    return int(block["prefix_windows"]), int(block["seed"])


def prefix_windows(window_ids, member, n: int, *, seed: int) -> list[str]:
    """The ``n`` windows of ReCaLL's prefix: a seeded draw among the non-members (``member`` 0), in the order of
    ``window_ids`` (the membership table's). The scoring jobs (through rule recall_prefix) and :func:`run` both
    call it on the same membership table, so they name the same windows."""
    nonmembers = np.flatnonzero(np.asarray(member) == 0)
    if n >= len(nonmembers):
        raise InputError(
            f"attacks.recall.prefix_windows is {n}, but the membership has {len(nonmembers)} non-member windows: "
            "the prefix must leave some to score"
        )
    return [window_ids[i] for i in nonmembers[sample_indices(len(nonmembers), n, seed)]]


def features(params):
    return {recall_feature(*settings(params))}


def missing(data):
    return None


def run(data):
    n, seed = settings(data.params)
    table = data.windows(data.target)
    conditional = table[recall_feature(n, seed)].to_numpy(np.float64)
    # Both are mean NLLs: their ratio is that of the (negative) log-likelihoods.
    score = conditional / table["loss"].to_numpy(np.float64)
    score[np.isin(np.asarray(data.window_ids), prefix_windows(data.window_ids, data.member, n, seed=seed))] = np.nan
    return {NAME: score}


def write_prefix(
    membership_path: str | os.PathLike,
    windows_fasta: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    n: int,
    seed: int,
) -> list[str]:
    """Rule recall_prefix: the prefix's windows (:func:`prefix_windows` on the membership table, read as the
    attacks read it) with their sequences, as FASTA in prefix order; returns their ids."""
    from ...fasta import read_fasta
    from ...outputs import atomic_outputs
    from ..membership import read_membership

    membership = read_membership(membership_path)
    ids = prefix_windows(membership.window_id.tolist(), membership.target_member.to_numpy(), n, seed=seed)
    sequences = read_fasta(windows_fasta, keep=set(ids))
    with atomic_outputs(out_path) as (tmp,), open(tmp, "w") as fh:
        for window_id in ids:
            fh.write(f">{window_id}\n{sequences[window_id]}\n")
    return ids
