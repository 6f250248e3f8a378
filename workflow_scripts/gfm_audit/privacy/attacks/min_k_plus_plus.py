"""Min-k%++ (Zhang et al. 2024, "Min-K%++: improved baseline for detecting pre-training data").

Each token's log-prob is z-normalised by the predictive distribution at its
position: z_t = (log p(x_t) - mu_t) / sigma_t, mu_t = E_{v~p}[log p(v)],
sigma_t^2 = Var_{v~p}[log p(v)]; score(x) = mean of the lowest k-fraction of
z_t (k as for min_k). Training points sit at local maxima of the likelihood:
higher = member. Computed per sequence in the scoring job (``min_k_pp_k<k>``).
"""

from ..features import min_k_pp_feature
from .min_k import column, ks

NAME = "min_k_plus_plus"


def features(params):
    return {min_k_pp_feature(k) for k in ks(params)}


def missing(data):
    return None


def run(data):
    values = ks(data.params)
    table = data.windows(data.target)
    return {column(NAME, k, len(values)): table[min_k_pp_feature(k)].to_numpy(float) for k in values}
