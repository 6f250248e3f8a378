"""Genotype (attribute) inference: hide an allele a person carries and ask the target which one it is."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ...sampling import sample_indices
from .scores import sequence_features

if TYPE_CHECKING:
    from ...models import ModelSpec

AF_BINS = (0.0, 0.01, 0.05, 0.2, 0.5, 1.0000001)
GENOTYPE_SUMMARY_COLUMNS = (
    "af_bin",
    "truth",
    "group",
    "queries",
    "accuracy_model",
    "accuracy_major_allele",
    "accuracy_af_sampling",
)
DECISION_COLUMNS = (
    "sample",
    "member",
    "window_id",
    "pos",
    "ref",
    "alts",
    "allele",
    "predicted",
    "site_af",
    "af_bin",
    "correct",
    "major_correct",
)


def genotype_queries(alleles: pd.DataFrame, membership: pd.DataFrame, *, per_person: int, seed: int) -> pd.DataFrame:
    """The (haplotype, site) pairs to ask about: per person up to ``per_person``, half where the haplotype
    carries a non-reference allele (all of them if fewer) and the rest where it carries the reference, seeded.
    """
    rng = np.random.default_rng(seed)
    picked = []
    for _, g in alleles.groupby("sample", sort=False):
        alt, ref = g[g.allele != g.ref], g[g.allele == g.ref]
        n_alt = min(len(alt), per_person // 2)
        n_ref = min(len(ref), per_person - n_alt)
        picked.append(alt.iloc[sample_indices(len(alt), n_alt, rng)])
        picked.append(ref.iloc[sample_indices(len(ref), n_ref, rng)])
    queries = pd.concat(picked, ignore_index=True) if picked else alleles.iloc[:0].copy()
    member = membership.set_index("sample").target_member
    queries["member"] = member.loc[queries["sample"]].to_numpy(int)
    return queries


def candidate_sequences(queries: pd.DataFrame, sequences: Mapping[str, str]) -> list[tuple[int, str, str]]:
    """(query row, candidate allele, sequence): the haplotype with each allele of the site put at the hidden offset."""
    out = []
    for i, q in enumerate(queries.itertuples(index=False)):
        seq = sequences[q.seq_id]
        for allele in [q.ref, *q.alts.split(",")]:
            out.append((i, allele, seq[: q.offset] + allele + seq[q.offset + 1 :]))
    return out


def decide_alleles(queries: pd.DataFrame, candidates: Sequence[tuple[int, str, str]], logprob: np.ndarray) -> list[str]:
    """The allele of each query whose candidate sequence the model scores highest (ties: the first, REF)."""
    best: dict[int, tuple[float, str]] = {}
    for (i, allele, _), lp in zip(candidates, logprob, strict=True):
        if i not in best or lp > best[i][0]:
            best[i] = (float(lp), allele)
    return [best[i][1] for i in range(len(queries))]


def allele_frequencies(ref: str, alts: str, alt_afs: str) -> dict[str, float]:
    """Each allele of a site with its population frequency: the ALTs' from ``alt_afs`` (comma-separated, in the
    order of ``alts``), REF's 1 - their sum (at least 0: frequencies from different sources may sum past 1)."""
    alt_list, freqs = alts.split(","), [float(f) for f in str(alt_afs).split(",")]
    if len(alt_list) != len(freqs):
        raise ValueError(f"alts {alts!r} and alt_afs {alt_afs!r} differ in length")
    return {ref: max(0.0, 1.0 - sum(freqs)), **dict(zip(alt_list, freqs, strict=True))}


def major_allele(frequencies: Mapping[str, float]) -> str:
    """The allele with the highest population frequency; on a tie the first (REF, then the ALTs in VCF order)."""
    return max(frequencies, key=lambda allele: frequencies[allele])


def af_bin_label(af: float) -> str:
    for lo, hi in zip(AF_BINS[:-1], AF_BINS[1:], strict=True):
        if lo <= af < hi:
            return f"[{lo:g}, {min(hi, 1):g}{']' if hi > 1 else ')'}"
    return "unknown"


def genotype_summary(decisions: pd.DataFrame) -> pd.DataFrame:
    """Accuracy by AF bin, members vs non-members, with the major-allele and AF-sampling baselines.

    ``accuracy_af_sampling`` is the expected accuracy of guessing each allele with its population
    frequency: the mean of the true allele's frequency.
    """
    rows = []
    for (af_bin, carries), g in decisions.groupby(["af_bin", "carries_alt"], sort=True):
        for group, part in (("member", g[g.member == 1]), ("non-member", g[g.member == 0])):
            if part.empty:
                continue
            rows.append(
                {
                    "af_bin": af_bin,
                    "truth": "alt" if carries else "ref",
                    "group": group,
                    "queries": len(part),
                    "accuracy_model": float(part.correct.mean()),
                    "accuracy_major_allele": float(part.major_correct.mean()),
                    "accuracy_af_sampling": float(part.truth_af.mean()),
                }
            )
    # The header is written even without queries, so that readers of summary.tsv get a table.
    return pd.DataFrame(rows, columns=list(GENOTYPE_SUMMARY_COLUMNS))


def infer_genotypes(
    spec: ModelSpec, queries: pd.DataFrame, sequences: Mapping[str, str], *, batch_size: int, seed: int
) -> pd.DataFrame:
    """The queries with the allele the target picks at each hidden site (``predicted``) and how it is graded.

    Causal models: log-likelihood of the whole sequence with each candidate allele. Masked models: the
    tokens covering the site are masked and scored (pseudo-log-likelihood of the site given the rest).
    """
    from dataclasses import replace

    from ..scoring import SeqRecord, score_sequences

    queries = queries.copy()
    candidates = candidate_sequences(queries, sequences)
    records = [SeqRecord(f"q{i}_{a}", f"q{i}_{a}", "candidate", None, None, s) for i, a, s in candidates]
    site = {f"q{i}_{a}": np.array([queries.offset.iat[i]]) for i, a, _ in candidates}
    if spec.kind == "masked":
        spec = replace(spec, masking="sampled", mask_fraction=0.0)
    table = score_sequences(spec, records, snp_offsets=site, batch_size=batch_size, seed=seed)
    feats = sequence_features(table.to_pandas(), site)
    logprob = feats.logprob.to_numpy() if spec.kind == "causal" else feats.alt_logprob.to_numpy()
    queries["predicted"] = decide_alleles(queries, candidates, logprob)
    queries["carries_alt"] = (queries.allele != queries.ref).astype(int)
    frequencies = [allele_frequencies(q.ref, q.alts, q.alt_afs) for q in queries.itertuples(index=False)]
    # The AF bin of a query: the frequency of the ALT carried, or of all the site's ALTs together where the
    # haplotype carries REF (at a bi-allelic site both are the ALT's frequency).
    queries["site_af"] = [
        f[q.allele] if q.carries_alt else sum(v for a, v in f.items() if a != q.ref)
        for q, f in zip(queries.itertuples(index=False), frequencies, strict=True)
    ]
    queries["truth_af"] = [f[a] for a, f in zip(queries.allele, frequencies, strict=True)]
    queries["correct"] = (queries.predicted == queries.allele).astype(int)
    queries["major_correct"] = [int(major_allele(f) == a) for a, f in zip(queries.allele, frequencies, strict=True)]
    queries["af_bin"] = [af_bin_label(a) for a in queries.site_af]
    return queries
