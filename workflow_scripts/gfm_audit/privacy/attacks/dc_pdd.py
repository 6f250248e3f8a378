"""DC-PDD (Zhang et al. 2024, "Pretraining data detection for large language models: a divergence-based
calibration method", EMNLP 2024, arXiv:2409.14781).

A token's probability is calibrated by how common the token is in a reference corpus: a model gives common
tokens high probability whether or not it trained on the sequence. For the scored tokens x_t of a sequence,

    alpha_t = p(x_t | context) * log(1 / f(x_t)),    clipped: alpha_t = min(alpha_t, a)
    score(x) = mean of alpha_t over FOS(x), the first occurrence of each distinct token id,

higher = member. f is the token's frequency in the reference corpus with Laplace smoothing over the vocabulary
V: f(v) = (count(v) + 1) / (N + |V|), N the tokens counted, |V| the tokenizer's vocabulary (zero counts
included). a = attacks.dc_pdd.a, default 0.01, the paper's and its code's default (a list gives one variant per
a, columns ``dc_pdd_a<a>``). Checked against the authors' code (zhang-wei-chao/DC-PDD, com_det_sco.py) and
mimir's port (iamgroot42/mimir, mimir/attacks/dc_pdd.py): both compute the same clipped alpha over first
occurrences and return its negated mean under their "lower = member" convention, i.e. the paper's beta with
"beta above a threshold = member". Differences, all stated:

* the reference corpus is the reference FASTA, counted by :mod:`..token_frequencies` (overlapping k-mers for a
  k-mer tokenizer, the genome cut into windows.length pieces and tokenized for BPE; see there), not C4. The
  authors count every occurrence of a token; mimir's ``fre_dis[ids] += 1`` adds one per token and document, a
  document frequency; this follows the authors;
* the first-occurrence rule runs over the *scored* tokens, as in the authors' code (com_pro_dis.py keeps the
  probabilities and ids from the second token on; mimir prepends an EOS token to score the first as well): a
  causal model's first token without a BOS before it has no probability here, and each distinct token id counts
  at its first scored position; a masked model scores every token (``exact``, ``stride``) or a sampled subset
  (``sampled``), over which the rule runs likewise;
* the clip bound's scale is the vocabulary's: with ~50k text tokens p * log(1/f) is mostly below 0.01, but with
  a DNA vocabulary of a few tokens (character models: p mostly above 0.2, log(1/f) about 1.2-1.6) alphas exceed
  0.01 and the score is the constant a for every window (AUC 0.5). For a character model choose a within the
  alphas' range (about 0.3-1.5: a = 1 clips only the most confident tokens); for 6-mers (log(1/f) about 8, p
  mostly below 0.1) 0.01-0.1 clips the likeliest tokens, as the paper intends. The run logs a warning when every
  window scores a.

Computed per sequence in the scoring job (feature ``dc_pdd_a<a>``, :mod:`..dc_pdd`), where the token ids are.
"""

import logging

import numpy as np

from ..features import dc_pdd_feature

NAME = "dc_pdd"
DEFAULT_A = 0.01

log = logging.getLogger(__name__)


def bounds(params) -> list[float]:
    """The configured clip bounds (attacks.dc_pdd.a: one number or a list)."""
    a = params.get("dc_pdd", {}).get("a", DEFAULT_A)
    return [float(v) for v in (a if isinstance(a, list | tuple) else [a])]


def column(a: float, n: int) -> str:
    """``dc_pdd`` for one bound, ``dc_pdd_a<a>`` per bound when there are several."""
    return NAME if n == 1 else f"{NAME}_a{a:g}"


def features(params):
    return {dc_pdd_feature(a) for a in bounds(params)}


def missing(data):
    return None


def run(data):
    values = bounds(data.params)
    table = data.windows(data.target)
    out = {}
    for a in values:
        scores = table[dc_pdd_feature(a)].to_numpy(float)
        if len(scores) and bool(np.allclose(scores, a, rtol=1e-9, atol=0)):
            log.warning(
                "dc_pdd: every window of %s scores a = %g (every token's p * log(1/f) is above it): the attack "
                "cannot tell windows apart; raise attacks.dc_pdd.a (docs/privacy-audit.md)",
                data.target,
                a,
            )
        out[column(a, len(values))] = scores
    return out
