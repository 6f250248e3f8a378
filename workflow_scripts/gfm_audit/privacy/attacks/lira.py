"""LiRA, online and offline (Carlini et al. 2022, "Membership inference attacks from first principles").

Statistic s_m(x) = -L_m(x) (mean token log-likelihood, close to Gaussian for
LMs). Per window, Gaussians are fitted to s over the reference models that
trained on x (IN) and that did not (OUT):
  online:  score = log N(s_target; mu_in, sd_in) - log N(s_target; mu_out, sd_out)
  offline: score = log Phi((s_target - mu_out) / sd_out)   (one-sided, OUT only)
With few reference models per window the variance is pooled over all windows
(the paper's fixed-variance variant; attacks.lira.fixed_variance: auto uses it
below 8 models per side). A window with no IN (or OUT) model takes the mean
IN-OUT shift of the windows that have both. Higher score = member.
"""

from __future__ import annotations

import numpy as np

NAME = "lira"


def features(params):
    return {"loss"}


def missing(data):
    if not data.references:
        return "needs reference models trained by the workflow (membership.mode finetune, reference_models >= 1)"
    return None


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    counts = mask.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, (values * mask).sum(axis=0) / counts, np.nan)


def _spread(values: np.ndarray, mask: np.ndarray, mean: np.ndarray, pooled: bool) -> np.ndarray:
    resid = np.where(mask, values - mean, 0.0)
    counts = mask.sum(axis=0)
    if pooled:
        dof = max(int(counts.sum()) - int((counts > 0).sum()), 1)
        return np.full(values.shape[1], max(np.sqrt(np.nansum(resid**2) / dof), 1e-6))
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt(np.nansum(resid**2, axis=0) / np.maximum(counts - 1, 1))
    return np.maximum(sd, 1e-6)


def lira_scores(target_stat: np.ndarray, ref_stat: np.ndarray, ref_in: np.ndarray, *, fixed_variance) -> dict:
    """Online and offline LiRA scores from (n,) target and (K, n) reference statistics."""
    # Imported here: the workflow imports every attack module to collect their features, before any conda env.
    from scipy.stats import norm

    mu_in, mu_out = _masked_mean(ref_stat, ref_in), _masked_mean(ref_stat, ~ref_in)
    both = ~np.isnan(mu_in) & ~np.isnan(mu_out)
    shift = float(np.mean(mu_in[both] - mu_out[both])) if both.any() else np.nan
    mu_in = np.where(np.isnan(mu_in), mu_out + shift, mu_in)
    mu_out = np.where(np.isnan(mu_out), mu_in - shift, mu_out)
    min_side = min(int(ref_in.sum(axis=0).min()), int((~ref_in).sum(axis=0).min()))
    pooled = min_side < 8 if fixed_variance == "auto" else bool(fixed_variance)
    sd_in = _spread(ref_stat, ref_in, mu_in, pooled)
    sd_out = _spread(ref_stat, ~ref_in, mu_out, pooled)
    out = {"lira_offline": norm.logcdf((target_stat - mu_out) / sd_out)}
    if both.any():
        out["lira_online"] = norm.logpdf(target_stat, mu_in, sd_in) - norm.logpdf(target_stat, mu_out, sd_out)
    return out


def run(data):
    refs = list(data.references)
    ref_in = np.stack([np.asarray(data.ref_member[r], bool) for r in refs])
    fixed = data.params.get("lira", {}).get("fixed_variance", "auto")
    return lira_scores(-data.losses([data.target])[0], -data.losses(refs), ref_in, fixed_variance=fixed)
