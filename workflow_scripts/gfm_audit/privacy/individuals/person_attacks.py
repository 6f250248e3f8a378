"""Person-level membership attacks: one score per person from the scores of their haplotype windows.

Person-level statistics (higher = member), over the person's sequences x (two haplotypes per window):

* ``lira_online``: sum_x log N(s_T(x); mu_in(x), sd_in) - log N(s_T(x); mu_out(x), sd_out), the per-window
  likelihood ratios of LiRA (Carlini et al. 2022, attacks/lira.py) summed as for independent windows;
  s(x) = -mean token NLL, centred per window and model (minus its mean over all people's haplotypes of that
  window: how well a model fits a window as a whole varies between independently trained models and would
  otherwise drown the person's own signal); IN / OUT = the reference models that did / did not train on the
  person.
* ``lira_offline``: Stouffer's sum_x z(x) / sqrt(n), z(x) = (s_T(x) - mu_out(x)) / sd_out: the offline
  LiRA statistic per window, combined as a sum of z-scores (its per-window log Phi is not additive).
* ``loss_difference``: mean_x s_T(x) - s_ref(x) = L_ref(x) - L_T(x) (centred as above), L_ref the mean over
  the references OUT for the person (all references if none is OUT): the negated mean loss difference
  target - reference (Carlini et al. 2021).
* ``alt_alleles``: mean over the tokens covering the person's non-reference alleles of
  log p_T - log p_ref (same references): where a person differs from the reference genome, and from most
  other people. Persons without alt alleles in the windows get no score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ...errors import InputError
from ..attacks.lira import lira_scores

PERSON_ATTACKS = ("lira_online", "lira_offline", "loss_difference", "alt_alleles")


def person_scores(
    features: Mapping[str, pd.DataFrame],
    index: pd.DataFrame,
    membership: pd.DataFrame,
    *,
    target: str,
    windows: Sequence[str] | None = None,
    fixed_variance: Any = "auto",
    centre: bool = True,
) -> pd.DataFrame:
    """One row per person: ``sample, member`` and every statistic of :data:`PERSON_ATTACKS`.

    ``features``: :func:`sequence_features` of the target (key ``target``) and of each reference model
    ``ref_i``; ``windows``: only these windows count (all when None).
    """
    per_seq = sequence_statistics(
        features, index, membership, target=target, windows=windows, fixed_variance=fixed_variance, centre=centre
    )
    g = per_seq.groupby("sample", sort=False)
    table = pd.DataFrame(
        {
            "lira_online": g.lira_online.sum(min_count=1),
            "lira_offline": g.z.sum() / np.sqrt(g.z.count()),
            "loss_difference": g.loss_difference.mean(),
            "alt_alleles": g.alt_diff.sum() / g.alt_tokens.sum().replace(0, np.nan),
            "n_sequences": g.size(),
            "alt_tokens": g.alt_tokens.sum().astype(int),
        }
    )
    table = table.reindex(membership["sample"]).reset_index(names="sample")
    table.insert(1, "member", membership.target_member.to_numpy(int))
    return table


def sequence_statistics(
    features: Mapping[str, pd.DataFrame],
    index: pd.DataFrame,
    membership: pd.DataFrame,
    *,
    target: str,
    windows: Sequence[str] | None = None,
    fixed_variance: Any = "auto",
    centre: bool = True,
) -> pd.DataFrame:
    """The per-haplotype-window terms that :func:`person_scores` sums per person (module docstring).

    One row per sequence of ``index`` (in ``windows``): ``seq_id, sample, window_id``, ``loss`` (the target's mean
    token NLL, uncentred), ``lira_online`` (the sequence's log likelihood ratio), ``z`` (its offline LiRA z-score),
    ``loss_difference`` (the OUT references' centred loss minus the target's), ``alt_diff`` and ``alt_tokens``
    (log p_T - log p_ref summed over the tokens covering the haplotype's alt alleles, and their count).
    """
    refs = [c.removesuffix("_member") for c in membership.columns if c.startswith("ref_")]
    if not refs:
        raise InputError("person-level attacks need reference models (membership.reference_models >= 1)")
    seqs = index if windows is None else index[index.window_id.isin(set(windows))]
    seqs = seqs.reset_index(drop=True)
    m = membership.set_index("sample")
    ref_in = np.stack([m.loc[seqs["sample"], f"{r}_member"].to_numpy(bool) for r in refs])
    stat_t = _statistic(features[target], seqs, centre=centre)
    stat_r = np.stack([_statistic(features[r], seqs, centre=centre) for r in refs])
    lira = lira_scores(stat_t, stat_r, ref_in, fixed_variance=fixed_variance)
    # The offline z-score per sequence, from the same Gaussian fit lira_scores made (log Phi is its logcdf).
    mu_out, sd_out = _out_fit(stat_r, ref_in)
    z = (stat_t - mu_out) / sd_out
    # The references that did not train on the person; all of them when every one did.
    use = np.where(ref_in.all(axis=0)[None, :], np.ones_like(ref_in, dtype=float), (~ref_in).astype(float))
    ref_loss = (-stat_r * use).sum(axis=0) / use.sum(axis=0)
    ref_alt = np.stack([features[r].loc[seqs.seq_id, "alt_logprob"].to_numpy(float) for r in refs])
    ref_alt = (ref_alt * use).sum(axis=0) / use.sum(axis=0)
    return pd.DataFrame(
        {
            "seq_id": seqs.seq_id.to_numpy(),
            "sample": seqs["sample"].to_numpy(),
            "window_id": seqs.window_id.to_numpy(),
            "loss": features[target].loc[seqs.seq_id, "loss"].to_numpy(float),
            "lira_online": lira.get("lira_online", np.full(len(seqs), np.nan)),
            "z": z,
            "loss_difference": ref_loss + stat_t,
            "alt_diff": features[target].loc[seqs.seq_id, "alt_logprob"].to_numpy(float) - ref_alt,
            "alt_tokens": features[target].loc[seqs.seq_id, "alt_tokens"].to_numpy(float),
        }
    )


def _statistic(features: pd.DataFrame, seqs: pd.DataFrame, *, centre: bool) -> np.ndarray:
    """s(x) = -loss(x); centred: minus the mean of s over every haplotype of x's window under the same model.

    Independently trained models fit a window better or worse as a whole (seed, convergence); every person
    has every window, so subtracting the window's mean over all people cancels that and keeps what is
    particular to the person. It adds the same constant to every person under the target, so the target's
    ranking of people is unchanged.
    """
    stat = -features.loc[seqs.seq_id, "loss"].to_numpy(float)
    if centre:
        stat = stat - pd.Series(stat).groupby(seqs.window_id.to_numpy()).transform("mean").to_numpy()
    return stat


def _out_fit(stat_r: np.ndarray, ref_in: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """mu_out per sequence and the pooled sd_out, as lira_scores fits them with fixed variance.

    A sequence with no OUT reference takes mu_in minus the mean IN-OUT shift of the others.
    """
    out = ~ref_in
    counts = out.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu_out = np.where(counts > 0, (stat_r * out).sum(axis=0) / counts, np.nan)
    inside = ref_in.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu_in = np.where(inside > 0, (stat_r * ref_in).sum(axis=0) / inside, np.nan)
    both = ~np.isnan(mu_in) & ~np.isnan(mu_out)
    shift = float(np.mean(mu_in[both] - mu_out[both])) if both.any() else 0.0
    mu_out = np.where(np.isnan(mu_out), mu_in - shift, mu_out)
    resid = np.where(out, stat_r - mu_out, 0.0)
    dof = max(int(counts.sum()) - int((counts > 0).sum()), 1)
    sd = max(float(np.sqrt((resid**2).sum() / dof)), 1e-6)
    return mu_out, np.full(stat_r.shape[1], sd)


def evaluate_persons(table: pd.DataFrame, *, params: Mapping[str, Any]) -> pd.DataFrame:
    """privacy/metrics.py's metrics (AUC with bootstrap CI, TPR at low FPR, epsilon bound) per person-level attack."""
    from ..metrics import evaluate

    shaped = table[["sample", "member", *PERSON_ATTACKS]].rename(columns={"sample": "window_id"})
    metrics = evaluate(
        shaped, n_boot=params["bootstrap"], seed=params["seed"], delta=params["delta"], level=params["confidence"]
    )
    return metrics.drop(columns="rmia_population")
