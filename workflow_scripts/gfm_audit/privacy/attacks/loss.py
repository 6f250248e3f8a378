"""LOSS attack (Yeom et al. 2018, "Privacy risk in machine learning").

score(x) = -L(x), L = mean per-token negative log-likelihood of the window.
Members were fitted, so their loss is lower: higher score = member.
"""

NAME = "loss"


def features(params):
    return {"loss"}


def missing(data):
    return None


def run(data):
    return {"loss": -data.windows(data.target)["loss"].to_numpy(float)}
