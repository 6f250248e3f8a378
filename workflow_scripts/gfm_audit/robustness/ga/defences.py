"""Which defence (``robustness.ga.adversarial_training.scheme``) a classifier can take, checked before training.

- ``iterative``, ``madry``: any classifier (they only query it and fine-tune its trainable parameters);
- ``freelb`` (:mod:`.freelb`): a continuous input to perturb: the CNN's one-hot matrix or a token-embedding layer;
- ``adfar`` (:mod:`.adfar`): a head module whose input the detection head can share.

Anything else (a classifier that is only a ``predict_proba``, e.g. a scikit-learn model) is refused in one line.
"""

from __future__ import annotations

from .classifiers import Classifier


def check_scheme(clf: Classifier, scheme: str) -> None:
    """One line naming the classifier, the scheme and what to use instead, when ``clf`` cannot take ``scheme``."""
    if scheme == "freelb":
        from .freelb import check_freelb

        check_freelb(clf)
    elif scheme == "adfar":
        from .adfar import head_module

        head_module(clf)
