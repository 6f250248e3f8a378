"""Gradient-norm attack (white-box; as in mimir, iamgroot42/mimir mimir/attacks/gradnorm.py, whose README cites
Duan et al. 2024, "Do membership inference attacks work on large language models?").

score(x) = -|| grad L(x) ||_2
with L(x) the window's loss (the mean NLL over its scored tokens, the ``loss`` feature) and the gradient taken
with respect to all the model's parameters as one vector (attacks.gradnorm.wrt: parameters, the default) or to
the window's input embeddings (embeddings); feature ``gradnorm_<wrt>``, computed by the scoring jobs
(:func:`..scoring.gradient_norms`, one forward and backward per window).

Sign: training drives the loss of the training windows toward a minimum, where its gradient vanishes, so a
member's gradient is smaller than a non-member's: a smaller norm scores as member (the white-box observation of
Nasr, Shokri & Houmansadr 2019, "Comprehensive privacy analysis of deep learning", whose members have the
smaller gradient norms). mimir returns -norm under its convention that a lower score means member, so it scores
a larger norm as member; on a model fitted to half its windows that ordering is worse than chance
(tests/test_gradnorm_attack.py), and this module scores the opposite. mimir also averages the parameter tensors'
own p-norms (p = inf by default); here it is the L2 norm of the whole gradient.

Causal models only: config validation refuses gradnorm with a masked model (its loss, the pseudo-likelihood,
would take a backward pass per masked copy).
"""

from __future__ import annotations

import numpy as np

from ..features import gradnorm_feature

NAME = "gradnorm"
DEFAULTS = {"wrt": "parameters"}


def wrt(params) -> str:
    """attacks.gradnorm.wrt: parameters or embeddings."""
    return str({**DEFAULTS, **params.get("gradnorm", {})}["wrt"])


def features(params):
    return {gradnorm_feature(wrt(params))}


def missing(data):
    return None


def run(data):
    norms = data.windows(data.target)[gradnorm_feature(wrt(data.params))].to_numpy(np.float64)
    return {NAME: -norms}
