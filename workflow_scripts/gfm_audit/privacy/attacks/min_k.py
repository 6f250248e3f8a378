"""Min-k% prob (Shi et al. 2024, "Detecting pretraining data from large language models").

score(x) = mean of the lowest k-fraction of per-token log p(x_t | context)
(k = attacks.min_k.k, default 0.2). Members lack very unlikely tokens:
higher score = member.
"""

import numpy as np

NAME = "min_k"


def lowest_fraction_mean(values: np.ndarray, k: float) -> float:
    """Mean of the ceil-free count max(1, floor(k * n)) smallest values."""
    n = max(1, int(k * len(values)))
    return float(np.sort(values)[:n].mean()) if len(values) else float("nan")


def missing(data):
    return None


def run(data):
    k = data.params.get("min_k", {}).get("k", 0.2)
    rows = data.windows(data.target)["token_logprob"]
    return {"min_k": np.array([lowest_fraction_mean(np.asarray(lp, float), k) for lp in rows])}
