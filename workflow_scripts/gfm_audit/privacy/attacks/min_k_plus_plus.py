"""Min-k%++ (Zhang et al. 2024, "Min-K%++: improved baseline for detecting pre-training data").

Each token's log-prob is z-normalised by the predictive distribution at its
position: z_t = (log p(x_t) - mu_t) / sigma_t, mu_t = E_{v~p}[log p(v)],
sigma_t^2 = Var_{v~p}[log p(v)]; score(x) = mean of the lowest k-fraction of
z_t. Training points sit at local maxima of the likelihood: higher = member.
"""

import numpy as np

from .min_k import lowest_fraction_mean

NAME = "min_k_plus_plus"


def missing(data):
    return None


def run(data):
    k = data.params.get("min_k", {}).get("k", 0.2)
    rows = data.windows(data.target)
    out = []
    for lp, mu, sd in zip(rows["token_logprob"], rows["token_mean"], rows["token_std"], strict=True):
        z = (np.asarray(lp, float) - np.asarray(mu, float)) / np.maximum(np.asarray(sd, float), 1e-6)
        out.append(lowest_fraction_mean(z, k))
    return {"min_k_plus_plus": np.array(out)}
