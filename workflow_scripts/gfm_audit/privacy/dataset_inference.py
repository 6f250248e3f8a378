"""Dataset inference: was this set of sequences used to train the model, and how much of it?

The test (Maini, Jia, Papernot & Dziedzic, "LLM Dataset Inference: Did you train on my dataset?", NeurIPS 2024;
their code: github.com/pratyushmaini/llm_dataset_inference, ``linear_di.py``). A single membership-inference score
rarely separates one member from one non-member; the mean of many scores over a whole set does. The owner brings a
suspect set S and a validation set V of the same distribution, known not to be in training. Each sequence has a
feature vector: its score under every configured attack. Per seeded split:

1. S and V are each cut at random into a fit half (S_A, V_A) and a test half (S_B, V_B);
2. on the fit halves every feature is winsorised at its ``clip`` and ``1 - clip`` quantiles (pooled S_A and V_A)
   and standardised, then a logistic regression learns y = 1 for S_A, y = 0 for V_A; its logit
   g(x) = w . x + b is the aggregated score, higher meaning "more like the suspect set";
3. the same transform and g score the test halves, and a one-sided Welch t-test asks whether
   mean g(S_B) > mean g(V_B):

       t = (mean_S - mean_V) / sqrt(s_S^2 / n_S + s_V^2 / n_V),  p = P[T_nu > t]  (Welch-Satterthwaite nu).

Under H0 (S drawn like V: not trained on, or the model has not learned it) g is a fixed function of the fit halves,
which are independent of the test halves, so g(S_B) and g(V_B) are i.i.d. and p is uniform (up to the t
approximation). Differences from the authors' code, each on purpose: they label S as 0 and test "less" (the same
test with the sign flipped); they fit an unregularised ``nn.Linear`` by 1000 Adam steps, here an L2-regularised
logistic regression (``C``; the attack scores are strongly collinear); they clip each set's outliers on that set
(both halves) and standardise with S's moments, here clip and moments come from the fit halves only, so that the
test halves see a fixed function; they use Student's t-test (scipy's default), here Welch's, which keeps its level
when S and V differ in size and spread.

Several seeded splits give several dependent p-values; their combination ``min(1, 2 median p)`` is a valid
p-value whatever the dependence (Meinshausen, Meier & Buehlmann, "P-values for high-dimensional regression", JASA
2009, quantile aggregation at gamma = 1/2): if the median is <= a/2, half the p-values are <= a/2, and by Markov's
inequality that happens with probability <= a under H0.

The fraction (DUCI: Tong, Ye, Zarifzadeh & Shokri, "How much of my dataset did you use? Quantitative data usage
inference in machine learning", ICLR 2025; Privacy Meter's ``modules/duci/module_duci.py``). One attack's score,
thresholded, gives each suspect sequence a guess m_i in {0, 1}; the guesses are biased (false positives, missed
members). With the attack's TPR = P[m = 1 | member] and FPR = P[m = 1 | non-member] measured on sequences of known
membership,

    p_i = (m_i - FPR) / (TPR - FPR),    fraction = mean_i p_i = (mean_i m_i - FPR) / (TPR - FPR),

unbiased because E[m_i] = FPR + (TPR - FPR) [i is a member]. Privacy Meter's threshold maximises TPR - FPR on the
calibration scores (Youden's J), which also makes the denominator largest; here the guess is score >= threshold,
the rule its TPR and FPR are measured for (Privacy Meter measures with >= and applies >). The fraction is reported
both as estimated (may leave [0, 1] by sampling error) and clipped to [0, 1].

Two departures from Privacy Meter, both about the TPR and FPR being estimates. (1) Measured on the scores that chose
the threshold, TPR - FPR is the largest of many and biased upwards (with separable calibration scores Youden's
threshold sits at the lowest calibration member, TPR is exactly 1 there and below 1 on any fresh member). Here the
calibration members and non-members are each cut into two seeded folds; the threshold is chosen on one fold and
its TPR and FPR are measured on the other, where they are unbiased for that threshold, each fold choosing once,
and the folds' guessed shares, TPRs and FPRs are averaged before the ratio is taken. (2) Their sampling error is
propagated into the standard error by the delta method (``duci_fraction``), with each binomial variance taken at
the Agresti-Coull proportion (x + 2) / (n + 4) (Agresti & Coull, "Approximate is better than exact for interval
estimation of binomial proportions", Am. Stat. 1998), so that a rate measured at exactly 0 or 1 still carries the
uncertainty of its sample size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import ttest_ind
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_curve

from ..errors import InputError, listed

# Each set is cut in two halves; the test half needs two sequences for a sample variance (the t-test), the fit half
# at least one of each class for the regression. Four per set is the least that gives both halves two.
MIN_SEQUENCES = 4

CURVE_COLUMNS = ("n_suspect", "n_validation", "repeats", "p_mean", "p_median", "rejected_share", "alpha")


@dataclass(frozen=True)
class SplitTest:
    """One seeded split: the t-test of the test halves' aggregated scores, and the regression's weights."""

    p_value: float
    t_statistic: float
    mean_difference: float  # mean g(S_B) - mean g(V_B), in logit units
    cohens_d: float  # the mean difference over the pooled standard deviation of g on the test halves
    n_fit: tuple[int, int]  # (suspect, validation) sequences the regression learned from
    n_test: tuple[int, int]  # (suspect, validation) sequences tested
    weights: np.ndarray  # one per standardised feature


@dataclass(frozen=True)
class DatasetInference:
    """Every split's test and their combination."""

    splits: list[SplitTest]

    @property
    def p_values(self) -> np.ndarray:
        return np.array([s.p_value for s in self.splits])

    @property
    def p_value(self) -> float:
        """min(1, 2 median p): valid under any dependence between the splits (module docstring)."""
        return combined_p_value(self.p_values)

    def row(self) -> dict[str, float | int]:
        """The summary that result.tsv holds: medians over the splits."""
        s0 = self.splits[0]
        return {
            "p_value": self.p_value,
            "p_median": float(np.median(self.p_values)),
            "p_min": float(self.p_values.min()),
            "p_max": float(self.p_values.max()),
            "t_statistic": float(np.median([s.t_statistic for s in self.splits])),
            "mean_difference": float(np.median([s.mean_difference for s in self.splits])),
            "cohens_d": float(np.median([s.cohens_d for s in self.splits])),
            "splits": len(self.splits),
            "n_fit_suspect": s0.n_fit[0],
            "n_fit_validation": s0.n_fit[1],
            "n_test_suspect": s0.n_test[0],
            "n_test_validation": s0.n_test[1],
        }


def combined_p_value(p_values: np.ndarray) -> float:
    """min(1, 2 median p) of dependent p-values (Meinshausen, Meier & Buehlmann 2009, gamma = 1/2)."""
    # With an even count numpy averages the two middle values, which is at least the lower one: the argument in
    # the module docstring holds for it.
    return float(min(1.0, 2.0 * np.median(p_values)))


def check_size(n: int, name: str, where: str) -> None:
    """Stop when a set is smaller than the test needs (MIN_SEQUENCES)."""
    if n < MIN_SEQUENCES:
        raise InputError(
            f"{where}: the {name} set has {n} sequences; dataset inference needs at least {MIN_SEQUENCES} "
            "(two in each half: one half fits the aggregation, the other needs two for the t-test's variance); "
            "give a larger set"
        )


def _halves(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(n)
    return order[: n // 2], order[n // 2 :]


def split_test(
    suspect: np.ndarray,
    validation: np.ndarray,
    *,
    rng: np.random.Generator,
    clip: float = 0.025,
    C: float = 1.0,
) -> SplitTest:
    """One split of Maini et al.'s test: fit the aggregation on halves A, Welch-test halves B (module docstring).

    ``suspect`` and ``validation`` are (n, features) matrices without missing values, columns in the same order.
    """
    s_fit, s_test = _halves(len(suspect), rng)
    v_fit, v_test = _halves(len(validation), rng)
    fit = np.vstack([suspect[s_fit], validation[v_fit]])
    y = np.r_[np.ones(len(s_fit)), np.zeros(len(v_fit))]
    lo, hi = np.quantile(fit, [clip, 1 - clip], axis=0)
    mean = np.clip(fit, lo, hi).mean(axis=0)
    std = np.clip(fit, lo, hi).std(axis=0)
    std[std == 0] = 1.0  # a constant feature carries nothing; left at 0 after centring

    def transform(x: np.ndarray) -> np.ndarray:
        return (np.clip(x, lo, hi) - mean) / std

    # Newton steps on a few dozen features: exact to the tolerance in a handful of iterations, and fast.
    model = LogisticRegression(C=C, solver="newton-cholesky", max_iter=1000).fit(transform(fit), y)
    g_s = model.decision_function(transform(suspect[s_test]))
    g_v = model.decision_function(transform(validation[v_test]))
    t, p = ttest_ind(g_s, g_v, equal_var=False, alternative="greater")
    n_s, n_v = len(g_s), len(g_v)
    pooled = np.sqrt(((n_s - 1) * g_s.var(ddof=1) + (n_v - 1) * g_v.var(ddof=1)) / (n_s + n_v - 2))
    diff = float(g_s.mean() - g_v.mean())
    return SplitTest(
        p_value=float(p),
        t_statistic=float(t),
        mean_difference=diff,
        cohens_d=diff / pooled if pooled > 0 else float("nan"),
        n_fit=(len(s_fit), len(v_fit)),
        n_test=(n_s, n_v),
        weights=model.coef_[0].copy(),
    )


def dataset_inference(
    suspect: np.ndarray,
    validation: np.ndarray,
    *,
    splits: int = 20,
    seed: int = 0,
    clip: float = 0.025,
    C: float = 1.0,
    where: str = "dataset inference",
) -> DatasetInference:
    """Maini et al.'s test over ``splits`` seeded splits of the (n, features) matrices; see the module docstring.

    ``where`` names the input in the error raised when a set has fewer than MIN_SEQUENCES sequences.
    """
    suspect, validation = np.asarray(suspect, float), np.asarray(validation, float)
    check_size(len(suspect), "suspect", where)
    check_size(len(validation), "validation", where)
    if suspect.ndim != 2 or validation.ndim != 2 or suspect.shape[1] != validation.shape[1]:
        raise ValueError(
            f"need two (n, features) matrices of the same features, got {suspect.shape}, {validation.shape}"
        )
    rngs = [np.random.default_rng([seed, i]) for i in range(splits)]
    return DatasetInference([split_test(suspect, validation, rng=r, clip=clip, C=C) for r in rngs])


def curve_sizes(n_suspect: int) -> list[int]:
    """Suspect-set sizes of the p-value curve: MIN_SEQUENCES, doubling, up to and including ``n_suspect``."""
    sizes, n = [], MIN_SEQUENCES
    while n < n_suspect:
        sizes.append(n)
        n *= 2
    return [*sizes, n_suspect] if n_suspect >= MIN_SEQUENCES else []


def p_value_curve(
    suspect: np.ndarray,
    validation: np.ndarray,
    *,
    sizes: list[int] | None = None,
    repeats: int = 20,
    seed: int = 0,
    alpha: float = 0.01,
    clip: float = 0.025,
    C: float = 1.0,
) -> pd.DataFrame:
    """How the p-value falls with the number of suspect sequences the owner brings (Maini et al., Fig. 5).

    For each size n, ``repeats`` times: draw n suspect sequences and min(n, |V|) validation sequences without
    replacement (seeded), and run one split of the test on them (n counts both halves: the owner's whole set).
    Reports the mean and median p and the share of repeats with p < ``alpha``, the power at that size. Sizes
    below MIN_SEQUENCES or above the suspect set are left out.
    """
    suspect, validation = np.asarray(suspect, float), np.asarray(validation, float)
    sizes = curve_sizes(len(suspect)) if sizes is None else sizes
    rows = []
    for n in sorted({int(s) for s in sizes if MIN_SEQUENCES <= s <= len(suspect)}):
        m = min(n, len(validation))
        ps = []
        for r in range(repeats):
            rng = np.random.default_rng([seed, n, r])
            s = suspect[rng.choice(len(suspect), n, replace=False)]
            v = validation[rng.choice(len(validation), m, replace=False)]
            ps.append(split_test(s, v, rng=rng, clip=clip, C=C).p_value)
        ps = np.array(ps)
        rows.append(
            {
                "n_suspect": n,
                "n_validation": m,
                "repeats": repeats,
                "p_mean": float(ps.mean()),
                "p_median": float(np.median(ps)),
                "rejected_share": float((ps < alpha).mean()),
                "alpha": alpha,
            }
        )
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


@dataclass(frozen=True)
class Duci:
    """DUCI's estimate of the share of the suspect set that was trained on, and what it rests on."""

    fraction: float  # clipped to [0, 1]
    fraction_raw: float  # (mean guess - FPR) / (TPR - FPR), unbiased, may leave [0, 1]
    standard_error: float  # delta-method, from the guesses' and the held-out TPR's and FPR's binomial variances
    guessed_share: float  # mean guess on the suspect set: the fraction before debiasing
    tpr: float
    fpr: float
    threshold: float
    n_suspect: int
    n_members: int  # calibration
    n_nonmembers: int


def _youden(pos: np.ndarray, neg: np.ndarray) -> float:
    """The threshold maximising TPR - FPR of the rule score >= threshold on these scores."""
    fpr, tpr, thresholds = roc_curve(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg])
    return float(thresholds[int(np.argmax(tpr - fpr))])


def _ac_variance(p: float, n: int) -> float:
    """Binomial variance of a proportion p of n, at the Agresti-Coull proportion (x + 2) / (n + 4)."""
    a = (p * n + 2) / (n + 4)
    return a * (1 - a) / n


# Each calibration class is cut in two folds, one choosing the threshold and one measuring it.
MIN_CALIBRATION = 2


def duci_fraction(
    suspect_scores: np.ndarray, member_scores: np.ndarray, nonmember_scores: np.ndarray, *, seed: int = 0
) -> Duci:
    """DUCI's debiased fraction (module docstring) from one attack's scores, higher meaning "member".

    The calibration members and non-members (at least MIN_CALIBRATION of each; the suspect sequences must not be
    among them) are each cut into two seeded folds. For each fold k: the threshold t_k maximises TPR - FPR on fold
    k (Youden's J), TPR_k and FPR_k are measured at t_k on the other fold, and q_k is the suspect share at or above
    t_k. Since E[q_k] = FPR(t_k) + f (TPR(t_k) - FPR(t_k)) for each k, the folds' means q, TPR and FPR satisfy the
    same relation, and

        f = (q - FPR) / (TPR - FPR),
        se^2 = [Var(q) + (1 - f)^2 Var(FPR) + f^2 Var(TPR)] / (TPR - FPR)^2

    (the delta method; the means rather than each fold's ratio, so that one fold whose threshold happens not to
    separate the other does not void the estimate). TPR_0 and TPR_1 come from disjoint folds: Var(TPR) is the mean
    of their binomial variances over 2, likewise FPR's. q_0 and q_1 share the suspect guesses: Var(q) is bounded by
    the square of the mean of their standard errors (Cauchy-Schwarz, whatever their correlation). Each binomial
    variance is taken at the Agresti-Coull proportion. NaN when TPR <= FPR: at the thresholds the calibration
    chose, the attack does not tell held-out members from non-members.
    """
    s = np.asarray(suspect_scores, float)
    pos, neg = np.asarray(member_scores, float), np.asarray(nonmember_scores, float)
    if not len(s) or len(pos) < MIN_CALIBRATION or len(neg) < MIN_CALIBRATION:
        raise ValueError(
            f"DUCI needs suspect scores and at least {MIN_CALIBRATION} calibration scores of members and of "
            f"non-members (have {len(s)}, {len(pos)}, {len(neg)})"
        )
    rng = np.random.default_rng([seed, 2])
    pos_folds, neg_folds = _halves(len(pos), rng), _halves(len(neg), rng)
    qs, tprs, fprs, ts, var_q, var_tpr, var_fpr = [], [], [], [], [], [], []
    for k in (0, 1):
        t = _youden(pos[pos_folds[k]], neg[neg_folds[k]])
        held_pos, held_neg = pos[pos_folds[1 - k]], neg[neg_folds[1 - k]]
        qs.append(float((s >= t).mean()))
        tprs.append(float((held_pos >= t).mean()))
        fprs.append(float((held_neg >= t).mean()))
        ts.append(t)
        var_q.append(_ac_variance(qs[-1], len(s)))
        var_tpr.append(_ac_variance(tprs[-1], len(held_pos)))
        var_fpr.append(_ac_variance(fprs[-1], len(held_neg)))
    q, a, b = float(np.mean(qs)), float(np.mean(tprs)), float(np.mean(fprs))
    gap = a - b
    if gap > 0:
        f = (q - b) / gap
        var = np.mean(np.sqrt(var_q)) ** 2 + (1 - f) ** 2 * sum(var_fpr) / 4 + f**2 * sum(var_tpr) / 4
        se = float(np.sqrt(var) / gap)
    else:
        f = se = float("nan")
    return Duci(
        fraction=float(np.clip(f, 0.0, 1.0)),
        fraction_raw=f,
        standard_error=se,
        guessed_share=q,
        tpr=a,
        fpr=b,
        threshold=float(np.mean(ts)),
        n_suspect=len(s),
        n_members=len(pos),
        n_nonmembers=len(neg),
    )


def cross_fitted_duci(scores: np.ndarray, member: np.ndarray, suspect: np.ndarray, *, seed: int = 0) -> Duci:
    """DUCI on the suspect rows of a labelled table, calibrated on the other rows, two folds.

    ``scores`` one attack's score per row, ``member`` the rows' ground truth (1/0), ``suspect`` a boolean mask. The
    suspect rows are cut into two seeded halves; each half is estimated with the threshold, TPR and FPR of every
    labelled row outside it (the other half included, with its true labels), so that no sequence calibrates its
    own guess even when the suspect set is every member. The fraction is the size-weighted mean of the halves'
    (their debiased guesses averaged over the whole suspect set); TPR, FPR, threshold and the standard error are
    the halves' (size-weighted, the error as of independent halves).
    """
    scores, member, suspect = np.asarray(scores, float), np.asarray(member, int), np.asarray(suspect, bool)
    rows = np.flatnonzero(suspect)
    halves = _halves(len(rows), np.random.default_rng(seed))
    parts = []
    for half in halves:
        inside = np.zeros(len(scores), bool)
        inside[rows[half]] = True
        rest = ~inside
        parts.append(
            duci_fraction(scores[inside], scores[rest & (member == 1)], scores[rest & (member == 0)], seed=seed)
        )
    w = np.array([p.n_suspect for p in parts], float) / len(rows)

    def mean(attr: str) -> float:
        return float(np.dot(w, [getattr(p, attr) for p in parts]))

    raw = mean("fraction_raw")
    return Duci(
        fraction=float(np.clip(raw, 0.0, 1.0)),
        fraction_raw=raw,
        standard_error=float(np.sqrt(np.dot(w**2, [p.standard_error**2 for p in parts]))),
        guessed_share=mean("guessed_share"),
        tpr=mean("tpr"),
        fpr=mean("fpr"),
        threshold=mean("threshold"),
        n_suspect=len(rows),
        n_members=int(min(p.n_members for p in parts)),
        n_nonmembers=int(min(p.n_nonmembers for p in parts)),
    )


def disjoint_sets(suspect_ids: list[str], validation_ids: list[str], *, suspect_key: str, validation_key: str) -> None:
    """Stop when a sequence is in both sets: the validation set must be known not to be in training."""
    shared = set(suspect_ids) & set(validation_ids)
    if shared:
        raise InputError(
            f"{suspect_key} and {validation_key} share {len(shared)} sequences ({listed(shared)}); the validation set "
            "must be sequences known not to be in training, apart from the suspect set: give disjoint sets"
        )


def complete_features(
    suspect: pd.DataFrame, validation: pd.DataFrame, *, max_missing: float = 0.5
) -> tuple[list[str], pd.DataFrame, pd.DataFrame]:
    """The feature columns to use and the rows complete on them.

    A column missing on more than ``max_missing`` of either set is left out (a sparse feature would otherwise
    empty the sets); then rows missing any kept column are left out. Rows are dropped rather than filled: a
    missing value can itself tell the sets apart (RMIA leaves its population of non-members unscored), and a
    filled value or a missingness flag would hand that to the regression. Under H0 the two sets miss alike, so
    dropping keeps them exchangeable.
    """
    keep = [
        c
        for c in suspect.columns
        if suspect[c].isna().mean() <= max_missing and validation[c].isna().mean() <= max_missing
    ]
    return keep, suspect[keep].dropna(), validation[keep].dropna()


# --- the workflow's tables ------------------------------------------------------------------------------------
SET_KEYWORDS = {"members": 1, "non_members": 0}
RESULT_COLUMNS = (
    "test",
    "suspect",
    "validation",
    "n_suspect",
    "n_validation",
    "n_features",
    "p_value",
    "p_median",
    "p_min",
    "p_max",
    "alpha",
    "rejected",
    "t_statistic",
    "mean_difference",
    "cohens_d",
    "splits",
    "n_fit_suspect",
    "n_fit_validation",
    "n_test_suspect",
    "n_test_validation",
    "duci_attack",
    "duci_fraction",
    "duci_fraction_raw",
    "duci_standard_error",
    "duci_guessed_share",
    "duci_tpr",
    "duci_fpr",
    "duci_threshold",
    "duci_n_members",
    "duci_n_nonmembers",
    "features",
)


def window_set(value: str, member: np.ndarray, in_regions: np.ndarray | None = None) -> np.ndarray:
    """Rows of the score table in a set: ``members``/``non_members`` by the target's label, else a BED's overlap
    (``in_regions``, computed by the caller from the windows' coordinates)."""
    if value in SET_KEYWORDS:
        return np.asarray(member) == SET_KEYWORDS[value]
    if in_regions is None:
        raise ValueError(f"set {value} is a BED file: pass the windows that overlap its regions")
    return np.asarray(in_regions, bool)


def window_sets(
    table: pd.DataFrame, suspect: str, validation: str, *, windows_path: str, contigs_path: str
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks of the score table's rows in the suspect and validation sets (config values: ``members``,
    ``non_members`` or a BED file, whose regions a window must overlap, as membership.member_bed's)."""
    masks = []
    for value in (suspect, validation):
        in_regions = None
        if value not in SET_KEYWORDS:
            # The windows stage's BED reader and the membership's overlap: a set is drawn as the labels are.
            from .membership import _overlaps
            from .reference import read_contigs
            from .windows import read_bed

            windows = pd.read_csv(windows_path, sep="\t", dtype={"window_id": str, "chrom": str})
            hit = _overlaps(windows, read_bed(value, read_contigs(contigs_path)))
            in_regions = table.window_id.astype(str).isin(set(windows.window_id[hit])).to_numpy()
        masks.append(window_set(value, table.member.to_numpy(), in_regions))
    return masks[0], masks[1]


def score_table_inference(
    table: pd.DataFrame,
    suspect: np.ndarray,
    validation: np.ndarray,
    *,
    names: tuple[str, str],
    keys: tuple[str, str] = ("dataset_inference.suspect", "dataset_inference.validation"),
    splits: int = 20,
    seed: int = 0,
    alpha: float = 0.01,
    clip: float = 0.025,
    C: float = 1.0,
    curve_sizes: list[int] | None = None,
    curve_repeats: int = 20,
    duci_attack: str = "loss",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """result.tsv and p_curve.tsv of one model from its ``scores.tsv`` table (``window_id``, ``member``, one column
    per attack variant, higher meaning "member"), and boolean row masks of the two sets.

    Two rows: ``suspect``, the test of the suspect set against the validation set; ``control``, the validation set
    cut into two seeded halves tested the same way (Maini et al.'s false-positive check): nothing differs, so it
    should not reject. DUCI's fraction of each row's suspect side comes from ``duci_attack``'s score, calibrated
    on the table's labels (``cross_fitted_duci``). The curve is the suspect test's.
    """
    if duci_attack not in table.columns.drop(["window_id", "member"]):
        raise InputError(
            f"dataset_inference.duci_attack {duci_attack} is not a column of the attack scores (have: "
            f"{listed(table.columns.drop(['window_id', 'member']), 6)}); name one of them, or run that attack"
        )
    suspect, validation = np.asarray(suspect, bool), np.asarray(validation, bool)
    ids = table.window_id.astype(str)
    disjoint_sets(ids[suspect].tolist(), ids[validation].tolist(), suspect_key=keys[0], validation_key=keys[1])
    if validation.sum() < 2 * MIN_SEQUENCES:
        # The control row cuts the validation set in two sets of the test's own minimum.
        raise InputError(
            f"{keys[1]} ({names[1]}): the validation set has {validation.sum()} sequences; dataset inference needs "
            f"at least {2 * MIN_SEQUENCES} ({MIN_SEQUENCES} for each half of its control test); give a larger set"
        )
    features = table.drop(columns=["window_id", "member"])
    rng = np.random.default_rng([seed, 1])
    v_rows = np.flatnonzero(validation)
    v_rows = v_rows[rng.permutation(len(v_rows))]
    control = np.zeros(len(table), bool)
    control[v_rows[: len(v_rows) // 2]] = True
    rest = validation & ~control
    rows, curve = [], None
    for test, s_mask, v_mask, s_name, v_name, where in (
        ("suspect", suspect, validation, names[0], names[1], f"{keys[0]} ({names[0]})"),
        ("control", control, rest, f"half of {names[1]}", f"other half of {names[1]}", f"the control ({keys[1]})"),
    ):
        cols, s, v = complete_features(features[s_mask], features[v_mask])
        result = dataset_inference(s.to_numpy(), v.to_numpy(), splits=splits, seed=seed, clip=clip, C=C, where=where)
        scored = table[duci_attack].notna().to_numpy()
        duci = cross_fitted_duci(
            table[duci_attack].to_numpy(float)[scored],
            table.member.to_numpy(int)[scored],
            s_mask[scored],
            seed=seed,
        )
        summary = result.row()
        rows.append(
            {
                "test": test,
                "suspect": s_name,
                "validation": v_name,
                "n_suspect": len(s),
                "n_validation": len(v),
                "n_features": len(cols),
                **summary,
                "alpha": alpha,
                "rejected": bool(summary["p_value"] < alpha),
                "duci_attack": duci_attack,
                "duci_fraction": duci.fraction,
                "duci_fraction_raw": duci.fraction_raw,
                "duci_standard_error": duci.standard_error,
                "duci_guessed_share": duci.guessed_share,
                "duci_tpr": duci.tpr,
                "duci_fpr": duci.fpr,
                "duci_threshold": duci.threshold,
                "duci_n_members": duci.n_members,
                "duci_n_nonmembers": duci.n_nonmembers,
                "features": ",".join(cols),
            }
        )
        if curve is None:
            curve = p_value_curve(
                s.to_numpy(),
                v.to_numpy(),
                sizes=curve_sizes or None,
                repeats=curve_repeats,
                seed=seed,
                alpha=alpha,
                clip=clip,
                C=C,
            )
    return pd.DataFrame(rows, columns=RESULT_COLUMNS), curve
