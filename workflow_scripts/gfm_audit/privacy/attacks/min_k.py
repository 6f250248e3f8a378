"""Min-k% prob (Shi et al. 2024, "Detecting pretraining data from large language models").

score(x) = mean of the lowest k-fraction of per-token log p(x_t | context)
(k = attacks.min_k.k, default 0.2; a list gives one variant per k). Members
lack very unlikely tokens: higher score = member. The mean is computed per
sequence in the scoring job (feature ``min_k_k<k>``, :mod:`..features`).
"""

from ..features import lowest_fraction_mean, min_k_feature

__all__ = ["lowest_fraction_mean"]

NAME = "min_k"


def ks(params) -> list[float]:
    """The configured k values (attacks.min_k.k: one number or a list)."""
    k = params.get("min_k", {}).get("k", 0.2)
    return [float(v) for v in (k if isinstance(k, list | tuple) else [k])]


def column(name: str, k: float, n_ks: int) -> str:
    """``name`` for one k (the published attack's column), ``name_k<k>`` per k when there are several."""
    return name if n_ks == 1 else f"{name}_k{k:g}"


def features(params):
    return {min_k_feature(k) for k in ks(params)}


def missing(data):
    return None


def run(data):
    values = ks(data.params)
    table = data.windows(data.target)
    return {column(NAME, k, len(values)): table[min_k_feature(k)].to_numpy(float) for k in values}
