r"""Certified robustness to k base substitutions by randomised substitution smoothing.

The noise. :math:`\phi_q(x)` replaces each base of ``x`` independently with probability ``q`` by one of the other
three bases, drawn uniformly: a base is kept with probability :math:`a = 1 - q` and becomes each other base with
probability :math:`b = q / 3`. This is the discrete noise of Lee, Yuan, Chang & Jaakkola (NeurIPS 2019, "Tight
certificates of adversarial robustness for randomly smoothed classifiers", their l0 certificate for discrete
inputs) with :math:`K + 1 = 4` values per coordinate, :math:`K = 3` alternatives, and their keep probability
:math:`\alpha = 1 - q`.

The smoothed classifier. :math:`g(x) = \arg\max_c P(f(\phi_q(x)) = c)` of a base classifier ``f`` (here the
arg-max class of the classifier's ``predict``). :math:`p_A` is a lower bound on :math:`P(f(\phi_q(x)) = c_A)` of the
class :math:`c_A` picked for ``x``.

The certificate (Lee et al. 2019, their likelihood-ratio argument for this noise). For ``x`` and any ``x'`` with
Hamming distance :math:`\|x - x'\|_0 = r`, the likelihood ratio of a noisy sequence ``z`` only involves the ``r``
positions where ``x`` and ``x'`` differ. At such a position ``z_i`` equals ``x_i`` (factor :math:`a` under ``x``,
:math:`b` under ``x'``), equals ``x'_i`` (:math:`b` and :math:`a`), or is one of the other two bases (:math:`b` and
:math:`b`); elsewhere both laws agree. With ``u`` the positions where ``z`` agrees with ``x`` and ``v`` those where
it agrees with ``x'``,

.. math:: \frac{\mu_{x'}(z)}{\mu_x(z)} = (b / a)^{s}, \qquad s = u - v \in \{-r, \dots, r\},

so the likelihood-ratio regions are the level sets of ``s``. Under ``x`` the ``r`` positions contribute independent
steps of +1 (probability :math:`a`), -1 (:math:`b`) and 0 (:math:`2b`); ``s`` is their sum, whose law

.. math:: m_r(s) = P_x(S_r = s) = \sum_{u - v = s} \frac{r!}{u!\, v!\, (r-u-v)!}\, a^u\, b^v\, (2b)^{r-u-v}

is computed by the dynamic program :math:`m_r = m_{r-1} * (b, 2b, a)` (one convolution per position, O(r) each).
Under ``x'`` the steps are mirrored, :math:`P_{x'}(S_r = s) = m_r(-s)`. Neither depends on the sequence length
nor on which ``r`` positions differ, so the worst case over every ``x'`` at distance ``r`` is the worst case for one.

The worst case over base classifiers (Neyman-Pearson, as Lee et al. use it): among all (randomised) ``f`` with
:math:`P_x(f = c_A) \ge p_A`, the smallest :math:`P_{x'}(f = c_A)` fills mass :math:`p_A` under ``x`` with the
regions of the smallest ratio first (largest ``s`` first when :math:`a > b`, i.e. :math:`q < 3/4`; smallest first
when :math:`q > 3/4`), the last region in part. With :math:`A_j, B_j` the cumulated masses of the first ``j``
regions in that order under ``x`` and ``x'``,

.. math:: \rho_r(p_A) = B_{j-1} + (p_A - A_{j-1}) \frac{B_j - B_{j-1}}{A_j - A_{j-1}}, \qquad A_{j-1} < p_A \le A_j,

piecewise linear from (0, 0) to (1, 1). It is attained (a deterministic ``f``, the indicator of the regions
:math:`s \ge s_j`, attains it at every breakpoint :math:`p_A = A_j`), so it is tight: no certificate from
:math:`p_A` alone can be larger. Over deterministic classifiers only, the exact worst case can be larger by at
most the mass of one sequence, :math:`\max(a, b)^L` (at 300 bp: 1e-46 at q = 0.3, 2e-7 at q = 0.05), which the
authors' code adds by rounding the last region up to whole sequences; leaving it out only makes the certificate
conservative.

The radius. ``x`` is certified at distance ``r`` when :math:`\rho_r(p_A) > 1/2`: every ``x'`` at distance ``r``
then has :math:`P_{x'}(f = c_A) > 1/2`, so :math:`g(x') = c_A`. Since :math:`\rho_r` is increasing in
:math:`p_A`, that is :math:`p_A > t_r = \rho_r^{-1}(1/2)`. The certified radius is the largest ``R`` (at most the
length ``L``: no two sequences are further apart) with :math:`p_A > t_r` for every ``r = 1..R``; each distance is
checked on its own, so the radius never assumes that :math:`t_r` grows with ``r`` (it does, see the tests).
:math:`p_A \le 1/2` abstains (radius -1): not even :math:`g(x) = c_A` is certain. Special cases: ``q = 3/4`` makes
the noise independent of ``x`` (every base uniform), :math:`t_r = 1/2` and the radius is ``L``; :math:`p_A = 1`
certifies ``L``; at ``r = 1`` and :math:`q \le 1/2`, :math:`t_1 = 1 - q/3 + (1/2 - q)\, q / (3 (1 - q))`, and for
:math:`1/2 \le q < 3/4`, :math:`t_1 = 3/2 - 4q/3`.

The estimate (Cohen, Rosenfeld & Kolter, ICML 2019, CERTIFY). Two sample sets per sequence: ``n_select`` noisy
copies pick :math:`c_A` (the most frequent class of ``f``), ``n_samples`` fresh ones count it, and :math:`p_A` is
the one-sided Clopper-Pearson lower bound at ``confidence`` of that count. The Clopper-Pearson bound covers a class
fixed before its samples are drawn; bounding the class that won on the same samples would need the level split
over the classes. Every certificate then holds with probability at least ``confidence`` over the sampling. Each
sequence draws from its own seeded stream (a child of ``SeedSequence(seed)``, one per sequence and sample set), so
its result does not depend on the batch size or on the sequences after it.

The empirical comparison. Beside the certified accuracy, :func:`certify_stage` measures the base classifier's
robust accuracy on the same sample under the standard criterion (Madry et al., ICLR 2018): correct, and no
candidate the attacks find within ``k`` substitutions is misclassified (:func:`.robust_accuracy.robust_by_budget`:
the GA with ``delta = -inf``, plus HotFlip on one-hot classifiers). Not the GA's success rule, which also needs a
drop of ``delta`` in the true-class probability and so counts a sequence whose prediction is flipped by a small
drop as robust. The attacks give an upper bound on the base classifier's robust accuracy, the certificate a lower
bound on the smoothed classifier's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from ...errors import InputError
from ...outputs import atomic_outputs, write_tsv
from .adversarial_training import wilson_interval
from .attack import sample_rows, settings_from_config
from .classifiers import Classifier, load_classifier
from .data import LabelledSequences, encode, read_labelled_csv
from .robust_accuracy import robust_by_budget
from .splits import check_fits

log = logging.getLogger(__name__)

Predict = Callable[[np.ndarray], np.ndarray]
"""(N, L) uint8 sequences -> (N, C) class probabilities; one batched forward pass."""

ALPHABET = 4
CERTIFIED_COLUMNS = ["seq_id", "label", "prediction", "votes", "n_samples", "p_a_lower", "radius", "abstain"]
ACCURACY_COLUMNS = [
    "budget",
    "n_sequences",
    "certified_accuracy",
    "certified_ci_low",
    "certified_ci_high",
    "robust_accuracy",
    "robust_ci_low",
    "robust_ci_high",
]


# --- the noise --------------------------------------------------------------------------------------------------
def substitute(codes: np.ndarray, q: float, uniforms: np.ndarray) -> np.ndarray:
    """``codes`` with each base replaced by one of the other three where its uniform draw is below ``q``.

    One uniform per base decides both whether it changes and to what: given ``u < q``, ``u / q`` is uniform on
    [0, 1), so ``1 + floor(3 u / q)`` is a uniform shift of 1, 2 or 3 (mod 4), i.e. a uniform other base.
    """
    replaced = uniforms < q
    shift = np.minimum((uniforms / q * 3).astype(np.int64), 2) + 1
    return ((codes.astype(np.int64) + np.where(replaced, shift, 0)) % ALPHABET).astype(np.uint8)


def noisy_copies(codes: np.ndarray, n: int, q: float, *, rng: np.random.Generator) -> np.ndarray:
    """(n, L) independent noisy copies of one (L,) sequence."""
    return substitute(codes[None, :], q, rng.random((n, codes.shape[-1])))


# --- the tight certificate ----------------------------------------------------------------------------------------
def region_masses(radius: int, q: float) -> np.ndarray:
    """(2r + 1,) law of S_r = u - v under x, index i meaning s = i - r (the dynamic program of the module text)."""
    step = np.array([q / 3, 2 * q / 3, 1 - q])  # s steps -1, 0, +1
    masses = np.ones(1)
    for _ in range(radius):
        masses = np.convolve(masses, step)
    return masses


def _curve(masses: np.ndarray, q: float) -> tuple[np.ndarray, np.ndarray]:
    """Breakpoints (A_j, B_j) of rho_r, from (0, 0) to (1, 1), regions in ascending likelihood ratio."""
    under_x, under_other = masses, masses[::-1]
    if 1 - q >= q / 3:  # ratio (b/a)^s falls with s: largest s first
        under_x, under_other = under_x[::-1], under_other[::-1]
    a = np.concatenate([[0.0], np.cumsum(under_x)])
    b = np.concatenate([[0.0], np.cumsum(under_other)])
    # Both sum to 1 exactly in real arithmetic; dividing removes the float residue at the end of the curve.
    return a / a[-1], b / b[-1]


def worst_case_probability(p_a: ArrayLike, radius: int, q: float) -> np.ndarray:
    """rho_r(p_A): the least P(f(phi(x')) = c_A) over base classifiers with P(f(phi(x)) = c_A) >= p_A and every x'
    at Hamming distance ``radius`` from x."""
    a, b = _curve(region_masses(radius, q), q)
    return np.interp(np.asarray(p_a, dtype=float), a, b)


def threshold(radius: int, q: float) -> float:
    """t_r: the p_A above which distance ``radius`` is certified (rho_r(p_A) > 1/2)."""
    if q == 0.75:  # every region has ratio 1: rho_r(p) = p
        return 0.5
    a, b = _curve(region_masses(radius, q), q)
    return float(np.interp(0.5, b, a))


def certified_radius(p_a: ArrayLike, q: float, length: int) -> np.ndarray:
    """Certified radius (substitutions) for each p_A: -1 where p_A <= 1/2 (abstain), else the largest R <= length
    with rho_r(p_A) > 1/2 for every r in 1..R."""
    check_noise(q)
    p = np.atleast_1d(np.asarray(p_a, dtype=float))
    radius = np.where(p > 0.5, 0, -1).astype(np.int64)
    open_ = p > 0.5  # still certified at every distance checked so far
    masses = np.ones(1)
    step = np.array([q / 3, 2 * q / 3, 1 - q])
    for r in range(1, length + 1):
        if not open_.any():
            break
        masses = np.convolve(masses, step)  # the dynamic program, one distance further
        # rho_r(p) > 1/2 rather than p > t_r: the same in real arithmetic, and p = 1 stays certified where t_r
        # rounds to 1.0.
        rho = p if q == 0.75 else np.interp(p, *_curve(masses, q))
        ok = open_ & (rho > 0.5)
        radius[ok] = r
        open_ = ok
    return radius.reshape(np.shape(p_a))


def max_certifiable_radius(q: float, n_samples: int, confidence: float, *, length: int) -> int:
    """The radius of a sequence whose every sample agrees: no sequence can be certified further at these settings."""
    return int(certified_radius(clopper_pearson_lower(n_samples, n_samples, confidence), q, length))


# --- the estimate -------------------------------------------------------------------------------------------------
def clopper_pearson_lower(k: ArrayLike, n: int, confidence: float) -> np.ndarray:
    """One-sided Clopper-Pearson lower bound of a binomial proportion: the ``1 - confidence`` quantile of
    Beta(k, n - k + 1), 0 for k = 0."""
    from scipy.stats import beta

    k = np.asarray(k, dtype=float)
    safe = np.maximum(k, 1.0)  # beta.ppf warns on a shape of 0; those entries are replaced by 0 below
    return np.where(k > 0, beta.ppf(1 - confidence, safe, n - k + 1), 0.0)


def minimum_samples(confidence: float) -> int:
    """The smallest N for which N agreeing samples of N give p_A > 1/2 at ``confidence``.

    All agreeing, the bound is (1 - confidence)^(1/N) (the Beta(N, 1) quantile), above 1/2 iff
    N > log2(1 / (1 - confidence)); the estimate is checked against the bound itself, so rounding cannot move it.
    """
    n = max(1, int(np.floor(np.log2(1 / (1 - confidence)))))
    while clopper_pearson_lower(n, n, confidence) <= 0.5:
        n += 1
    while n > 1 and clopper_pearson_lower(n - 1, n - 1, confidence) > 0.5:
        n -= 1
    return n


def check_noise(q: float) -> None:
    if not 0 < q < 1:
        raise InputError(f"robustness.ga.certify.substitution_probability must be in (0, 1), got {q}")


def check_config(block: Mapping[str, Any], where: str) -> None:
    """The certify block's settings that the schema cannot check: enough samples to certify anything at all."""
    if not block.get("enabled"):
        return
    check_noise(block["substitution_probability"])
    need = minimum_samples(block["confidence"])
    if block["n_samples"] < need:
        raise InputError(
            f"{where} robustness.ga.certify.n_samples {block['n_samples']} is too small for confidence "
            f"{block['confidence']}: even with every sample agreeing the Clopper-Pearson bound stays at or below 1/2, "
            f"so every sequence would abstain; the minimum is {need}"
        )


@dataclass
class Certificates:
    """Per certified sequence."""

    prediction: np.ndarray  # (S,) c_A, the class the selection samples picked
    votes: np.ndarray  # (S,) estimation samples on which f gave c_A
    p_a_lower: np.ndarray  # (S,) Clopper-Pearson lower bound of P(f(phi(x)) = c_A)
    radius: np.ndarray  # (S,) certified substitutions; -1 = abstain
    n_samples: int

    @property
    def abstain(self) -> np.ndarray:
        return self.radius < 0


def class_counts(
    predict: Predict,
    codes: np.ndarray,
    n: int,
    *,
    q: float,
    rngs: list[np.random.Generator],
    num_classes: int,
    batch_rows: int = 8192,
) -> np.ndarray:
    """(S, C) how often f's arg-max class is each class over ``n`` noisy copies of each sequence.

    Copies of several sequences share one ``predict`` call of at most ``batch_rows`` rows (``batch_rows`` is at
    least one sequence's chunk); sequence i's copies are drawn in order from ``rngs[i]``.
    """
    s_count, length = codes.shape
    counts = np.zeros((s_count, num_classes), dtype=np.int64)
    chunk = max(1, min(n, batch_rows))
    # (sequence, number of copies) pieces, in order; one batch takes pieces until it is full.
    pieces = [(s, min(chunk, n - start)) for s in range(s_count) for start in range(0, n, chunk)]
    i = 0
    while i < len(pieces):
        rows, owners = [], []
        size = 0
        while i < len(pieces) and (not rows or size + pieces[i][1] <= batch_rows):
            s, m = pieces[i]
            rows.append(noisy_copies(codes[s], m, q, rng=rngs[s]))
            owners.append(np.full(m, s))
            size += m
            i += 1
        classes = predict(np.concatenate(rows)).argmax(axis=1)
        np.add.at(counts, (np.concatenate(owners), classes), 1)
    return counts


def sequence_streams(seed: int, n_sequences: int) -> tuple[list[np.random.Generator], list[np.random.Generator]]:
    """Per sequence, the generator of its selection samples and that of its estimation samples."""
    children = np.random.SeedSequence(seed).spawn(n_sequences)
    pairs = [child.spawn(2) for child in children]
    return [np.random.default_rng(p[0]) for p in pairs], [np.random.default_rng(p[1]) for p in pairs]


def certify(
    predict: Predict,
    codes: np.ndarray,
    *,
    q: float,
    n_select: int,
    n_samples: int,
    confidence: float,
    seed: int,
    num_classes: int,
    batch_rows: int = 8192,
) -> Certificates:
    """Cohen et al.'s CERTIFY with the tight substitution certificate: (S, L) codes in, one certificate each."""
    check_noise(q)
    select_rngs, estimate_rngs = sequence_streams(seed, len(codes))
    common = dict(q=q, num_classes=num_classes, batch_rows=batch_rows)
    chosen = class_counts(predict, codes, n_select, rngs=select_rngs, **common).argmax(axis=1)
    counts = class_counts(predict, codes, n_samples, rngs=estimate_rngs, **common)
    votes = counts[np.arange(len(codes)), chosen]
    p_a = clopper_pearson_lower(votes, n_samples, confidence)
    radius = certified_radius(p_a, q, codes.shape[1]) if len(codes) else np.zeros(0, dtype=np.int64)
    return Certificates(chosen, votes, np.atleast_1d(p_a), np.atleast_1d(radius), n_samples)


# --- tables and the rule's stage ------------------------------------------------------------------------------
def certified_table(ids: list[str], labels: np.ndarray, cert: Certificates) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "seq_id": ids,
            "label": labels,
            "prediction": cert.prediction,
            "votes": cert.votes,
            "n_samples": cert.n_samples,
            "p_a_lower": cert.p_a_lower,
            "radius": cert.radius,
            "abstain": cert.abstain,
        },
        columns=CERTIFIED_COLUMNS,
    )


def empirical_robust_counts(clf: Classifier, sample: LabelledSequences, attack: Mapping[str, Any]) -> np.ndarray:
    """(max_edits + 1,) sequences of ``sample`` robust at k = 0..max_edits under the standard criterion (module
    text): k = 0 counts the correctly classified ones, k >= 1 those :func:`.robust_accuracy.robust_by_budget` finds
    no misclassified candidate for within k substitutions, with the GA's constraints, settings and seed."""
    constraints, params = settings_from_config(attack)
    correct = int((clf.predict_proba(encode(sample.sequences)).argmax(axis=1) == sample.labels).sum())
    robust = robust_by_budget(clf, sample, constraints=constraints, params=params, seed=attack["seed"])
    return np.concatenate([[correct], robust.robust]).astype(np.int64)


def accuracy_table(certified: pd.DataFrame, robust: ArrayLike) -> pd.DataFrame:
    """Per budget k = 0..len(robust) - 1 over the same sample: the smoothed classifier's certified accuracy
    (correct, not abstaining, radius >= k) beside the base classifier's robust accuracy (``robust[k]`` of the
    sample's sequences correct with no misclassified candidate within k substitutions, see
    :func:`empirical_robust_counts`; k = 0 is its clean accuracy), each with its 95% Wilson interval."""
    n = len(certified)
    robust = np.asarray(robust, dtype=np.int64)
    correct = (certified.prediction == certified.label) & ~certified.abstain.astype(bool)
    rows = []
    for k, robust_k in enumerate(robust.tolist()):
        certified_k = int((correct & (certified.radius >= k)).sum())
        c_lo, c_hi = wilson_interval(certified_k, n)
        r_lo, r_hi = wilson_interval(robust_k, n)
        rows.append(
            {
                "budget": k,
                "n_sequences": n,
                "certified_accuracy": certified_k / n if n else np.nan,
                "certified_ci_low": c_lo,
                "certified_ci_high": c_hi,
                "robust_accuracy": robust_k / n if n else np.nan,
                "robust_ci_low": r_lo,
                "robust_ci_high": r_hi,
            }
        )
    return pd.DataFrame(rows, columns=ACCURACY_COLUMNS)


def certify_stage(
    name: str,
    spec: Mapping[str, Any],
    *,
    folder: str,
    test_csv: str,
    non_acgt: str,
    attack: Mapping[str, Any],
    certify_block: Mapping[str, Any],
    certified_tsv: str,
    accuracy_tsv: str,
) -> None:
    """Certify the GA's own sample of the test split (``attack.n_sequences`` rows, ``attack.seed``) and tabulate
    certified accuracy by radius beside the base classifier's robust accuracy by budget on that sample (standard
    criterion, :func:`empirical_robust_counts`)."""
    test = read_labelled_csv(test_csv, non_acgt)
    clf = load_classifier(name, folder, spec)
    check_fits(clf, test)
    chosen = test.subset(sample_rows(len(test), attack["n_sequences"], attack["seed"]))
    codes = encode(chosen.sequences)
    q, confidence = certify_block["substitution_probability"], certify_block["confidence"]
    n = certify_block["n_samples"]
    log.info(
        "classifier %s: certifying %d sequences of %d bp, q %g, %d + %d samples each (%d forward passes), "
        "confidence %g; no radius above %d can be certified at these settings",
        name,
        len(chosen),
        codes.shape[1],
        q,
        certify_block["n_select"],
        n,
        len(chosen) * (certify_block["n_select"] + n),
        confidence,
        max_certifiable_radius(q, n, confidence, length=codes.shape[1]),
    )
    cert = certify(
        clf.predict_proba,
        codes,
        q=q,
        n_select=certify_block["n_select"],
        n_samples=n,
        confidence=confidence,
        seed=certify_block["seed"],
        num_classes=clf.num_labels,
    )
    certified = certified_table(chosen.ids, chosen.labels, cert)
    log.info("classifier %s: %d abstained; radii %s", name, int(cert.abstain.sum()), np.bincount(cert.radius + 1))
    robust = empirical_robust_counts(clf, chosen, attack)
    log.info("classifier %s: robust (standard criterion) by budget 0..%d: %s", name, attack["max_edits"], robust)
    accuracy = accuracy_table(certified, robust)
    with atomic_outputs(certified_tsv, accuracy_tsv) as (cert_tmp, acc_tmp):
        write_tsv(certified, cert_tmp)
        write_tsv(accuracy, acc_tmp)
