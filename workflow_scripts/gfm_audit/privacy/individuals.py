"""Membership mode ``individuals``: was this person's genome in the training set, and what does the model reveal?

The unit of membership is a person (both haplotypes of every window), not a window. The target trains on
the haplotype windows of a seeded share of the individuals (members); each reference model on those of
its own seeded random half. Per-sequence scores are then aggregated into one score per person, and the
target is asked which allele a person carries at a hidden site (genotype / attribute inference).

Person-level statistics (higher = member), over the person's sequences x (two haplotypes per window):

* ``lira_online``: sum_x log N(s_T(x); mu_in(x), sd_in) - log N(s_T(x); mu_out(x), sd_out), the per-window
  likelihood ratios of LiRA (Carlini et al. 2022, attacks/lira.py) summed as for independent windows;
  s(x) = -mean token NLL, centred per window and model (minus its mean over all people's haplotypes of that
  window: how well a model fits a window as a whole varies between independently trained models and would
  otherwise drown the person's own signal); IN / OUT = the reference models that did / did not train on the
  person.
* ``lira_offline``: Stouffer's sum_x z(x) / sqrt(n), z(x) = (s_T(x) - mu_out(x)) / sd_out: the offline
  LiRA statistic per window, combined as a sum of z-scores (its per-window log Phi is not additive).
* ``loss_difference``: mean_x s_T(x) - s_ref(x) = L_ref(x) - L_T(x) (centred as above), L_ref the mean over
  the references OUT for the person (all references if none is OUT): the negated mean loss difference
  target - reference (Carlini et al. 2021).
* ``alt_alleles``: mean over the tokens covering the person's non-reference alleles of
  log p_T - log p_ref (same references): where a person differs from the reference genome, and from most
  other people. Persons without alt alleles in the windows get no score.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ..outputs import atomic_outputs, write_tsv
from ..sampling import sample_indices, sample_labels
from .attacks.lira import lira_scores
from .haplotypes import MIN_INDIVIDUALS
from .membership import reference_names

log = logging.getLogger(__name__)

PERSON_ATTACKS = ("lira_online", "lira_offline", "loss_difference", "alt_alleles")
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


def read_table(path: str | os.PathLike, **kwargs: Any) -> pd.DataFrame:
    """A TSV this mode wrote; a file without even a header stops with one line naming it, not a pandas error."""
    try:
        return pd.read_csv(path, sep="\t", **kwargs)
    except pd.errors.EmptyDataError:
        raise InputError(
            f"{path} is empty (not even a header line), so it holds no table; delete it and run the workflow "
            "again to rebuild it"
        ) from None


# --- membership ------------------------------------------------------------------------------------------------


def individuals_split(samples: Sequence[str], *, member_fraction: float, n_references: int, seed: int) -> pd.DataFrame:
    """``sample, target_member, ref_0_member, ..``: 1 = the model trained on this person's haplotypes.

    The target takes round(n * member_fraction) people; each reference model a random half, each from
    its own child of the seed (as in finetune mode), so the same seed gives the same split.
    """
    n = len(samples)
    if n < MIN_INDIVIDUALS:
        raise InputError(f"{n} individuals: the individuals mode needs at least {MIN_INDIVIDUALS}")
    n_members = int(round(n * member_fraction))
    if n_members in (0, n):
        raise InputError(
            f"membership.member_fraction={member_fraction} of {n} individuals leaves no members or no "
            "non-members; select more individuals or a fraction nearer 0.5"
        )
    streams = np.random.SeedSequence(seed).spawn(1 + n_references)
    table: dict[str, Any] = {"sample": list(samples)}
    table["target_member"] = sample_labels(n, n_members, streams[0])
    for name, stream in zip(reference_names(n_references), streams[1:], strict=True):
        table[f"{name}_member"] = sample_labels(n, n // 2, stream)
    return pd.DataFrame(table)


def read_individual_membership(path: str | os.PathLike) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"sample": str})


def member_haplotypes(index: pd.DataFrame, membership: pd.DataFrame, column: str) -> list[str]:
    """seq_ids of the haplotype windows of the people labelled 1 in ``column``, in index order."""
    members = set(membership["sample"][membership[column] == 1])
    return index.seq_id[index["sample"].isin(members)].tolist()


# --- reading scores: the one adapter to the scoring stage's tables ------------------------------------------------


def sequence_features(scores: pd.DataFrame, offsets: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Per sequence: mean NLL ``loss`` and the summed / counted log p of tokens covering ``offsets[seq_id]``.

    The only place that reads the scoring stage's per-token columns (``token_logprob``, ``token_start``,
    ``token_end``); a token covers offset o when start <= o < end.
    """
    rows = []
    empty = np.zeros(0, dtype=np.int64)
    for r in scores.itertuples(index=False):
        where = offsets.get(r.sequence_id, empty)
        logp = np.asarray(r.token_logprob, dtype=np.float64)
        if len(where):
            start, end = np.asarray(r.token_start), np.asarray(r.token_end)
            cover = ((start[:, None] <= where[None, :]) & (where[None, :] < end[:, None])).any(axis=1)
        else:
            cover = np.zeros(len(logp), dtype=bool)
        rows.append((r.sequence_id, float(r.loss), float(logp[cover].sum()), int(cover.sum()), float(logp.sum())))
    return pd.DataFrame(rows, columns=["seq_id", "loss", "alt_logprob", "alt_tokens", "logprob"]).set_index("seq_id")


def alt_offsets(alleles: pd.DataFrame) -> dict[str, np.ndarray]:
    """{seq_id: offsets of the non-reference alleles that haplotype carries}."""
    alt = alleles[alleles.allele != alleles.ref]
    return {sid: g.offset.to_numpy(np.int64) for sid, g in alt.groupby("seq_id", sort=False)}


# --- person-level attacks --------------------------------------------------------------------------------------


def person_scores(
    features: Mapping[str, pd.DataFrame],
    index: pd.DataFrame,
    membership: pd.DataFrame,
    *,
    target: str,
    windows: Sequence[str] | None = None,
    fixed_variance: Any = "auto",
    centre: bool = True,
) -> pd.DataFrame:
    """One row per person: ``sample, member`` and every statistic of :data:`PERSON_ATTACKS`.

    ``features``: :func:`sequence_features` of the target (key ``target``) and of each reference model
    ``ref_i``; ``windows``: only these windows count (all when None).
    """
    refs = [c.removesuffix("_member") for c in membership.columns if c.startswith("ref_")]
    if not refs:
        raise InputError("person-level attacks need reference models (membership.reference_models >= 1)")
    seqs = index if windows is None else index[index.window_id.isin(set(windows))]
    seqs = seqs.reset_index(drop=True)
    m = membership.set_index("sample")
    ref_in = np.stack([m.loc[seqs["sample"], f"{r}_member"].to_numpy(bool) for r in refs])
    stat_t = _statistic(features[target], seqs, centre=centre)
    stat_r = np.stack([_statistic(features[r], seqs, centre=centre) for r in refs])
    lira = lira_scores(stat_t, stat_r, ref_in, fixed_variance=fixed_variance)
    # The offline z-score per sequence, from the same Gaussian fit lira_scores made (log Phi is its logcdf).
    mu_out, sd_out = _out_fit(stat_r, ref_in)
    z = (stat_t - mu_out) / sd_out
    # The references that did not train on the person; all of them when every one did.
    use = np.where(ref_in.all(axis=0)[None, :], np.ones_like(ref_in, dtype=float), (~ref_in).astype(float))
    ref_loss = (-stat_r * use).sum(axis=0) / use.sum(axis=0)
    ref_alt = np.stack([features[r].loc[seqs.seq_id, "alt_logprob"].to_numpy(float) for r in refs])
    ref_alt = (ref_alt * use).sum(axis=0) / use.sum(axis=0)
    per_seq = pd.DataFrame(
        {
            "sample": seqs["sample"].to_numpy(),
            "lira_online": lira.get("lira_online", np.full(len(seqs), np.nan)),
            "z": z,
            "loss_difference": ref_loss + stat_t,
            "alt_diff": features[target].loc[seqs.seq_id, "alt_logprob"].to_numpy(float) - ref_alt,
            "alt_tokens": features[target].loc[seqs.seq_id, "alt_tokens"].to_numpy(float),
        }
    )
    g = per_seq.groupby("sample", sort=False)
    table = pd.DataFrame(
        {
            "lira_online": g.lira_online.sum(min_count=1),
            "lira_offline": g.z.sum() / np.sqrt(g.z.count()),
            "loss_difference": g.loss_difference.mean(),
            "alt_alleles": g.alt_diff.sum() / g.alt_tokens.sum().replace(0, np.nan),
            "n_sequences": g.size(),
            "alt_tokens": g.alt_tokens.sum().astype(int),
        }
    )
    table = table.reindex(membership["sample"]).reset_index(names="sample")
    table.insert(1, "member", membership.target_member.to_numpy(int))
    return table


def _statistic(features: pd.DataFrame, seqs: pd.DataFrame, *, centre: bool) -> np.ndarray:
    """s(x) = -loss(x); centred: minus the mean of s over every haplotype of x's window under the same model.

    Independently trained models fit a window better or worse as a whole (seed, convergence); every person
    has every window, so subtracting the window's mean over all people cancels that and keeps what is
    particular to the person. It adds the same constant to every person under the target, so the target's
    ranking of people is unchanged.
    """
    stat = -features.loc[seqs.seq_id, "loss"].to_numpy(float)
    if centre:
        stat = stat - pd.Series(stat).groupby(seqs.window_id.to_numpy()).transform("mean").to_numpy()
    return stat


def _out_fit(stat_r: np.ndarray, ref_in: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """mu_out per sequence and the pooled sd_out, as lira_scores fits them with fixed variance.

    A sequence with no OUT reference takes mu_in minus the mean IN-OUT shift of the others.
    """
    out = ~ref_in
    counts = out.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu_out = np.where(counts > 0, (stat_r * out).sum(axis=0) / counts, np.nan)
    inside = ref_in.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu_in = np.where(inside > 0, (stat_r * ref_in).sum(axis=0) / inside, np.nan)
    both = ~np.isnan(mu_in) & ~np.isnan(mu_out)
    shift = float(np.mean(mu_in[both] - mu_out[both])) if both.any() else 0.0
    mu_out = np.where(np.isnan(mu_out), mu_in - shift, mu_out)
    resid = np.where(out, stat_r - mu_out, 0.0)
    dof = max(int(counts.sum()) - int((counts > 0).sum()), 1)
    sd = max(float(np.sqrt((resid**2).sum() / dof)), 1e-6)
    return mu_out, np.full(stat_r.shape[1], sd)


def evaluate_persons(table: pd.DataFrame, *, params: Mapping[str, Any]) -> pd.DataFrame:
    """privacy/metrics.py's metrics (AUC with bootstrap CI, TPR at low FPR, epsilon bound) per person-level attack."""
    from .metrics import evaluate

    shaped = table[["sample", "member", *PERSON_ATTACKS]].rename(columns={"sample": "window_id"})
    metrics = evaluate(
        shaped, n_boot=params["bootstrap"], seed=params["seed"], delta=params["delta"], level=params["confidence"]
    )
    return metrics.drop(columns="rmia_population")


def window_counts(n_windows: int) -> list[int]:
    """1, 4, 16, ... below ``n_windows``, then ``n_windows`` itself."""
    counts, k = [], 1
    while k < n_windows:
        counts.append(k)
        k *= 4
    return [*counts, n_windows]


def windows_curve(
    features: Mapping[str, pd.DataFrame],
    index: pd.DataFrame,
    membership: pd.DataFrame,
    *,
    target: str,
    repeats: int,
    seed: int,
    centre: bool = True,
) -> pd.DataFrame:
    """AUC of each person-level attack using k windows per person (k = 1, 4, 16, .., all).

    Each repeat draws k windows at random (seeded), the same for every person; rows give the mean
    and standard deviation of the AUC over the repeats (one draw only for k = all).
    """
    from sklearn.metrics import roc_auc_score

    window_ids = list(dict.fromkeys(index.window_id))
    rng = np.random.default_rng(seed)
    rows = []
    for k in window_counts(len(window_ids)):
        aucs: dict[str, list[float]] = {a: [] for a in PERSON_ATTACKS}
        for _ in range(1 if k == len(window_ids) else repeats):
            subset = [window_ids[i] for i in sample_indices(len(window_ids), k, rng)]
            table = person_scores(features, index, membership, target=target, windows=subset, centre=centre)
            for attack in PERSON_ATTACKS:
                ok = table[attack].notna()
                if table.member[ok].nunique() == 2:
                    aucs[attack].append(float(roc_auc_score(table.member[ok], table[attack][ok])))
        for attack, values in aucs.items():
            rows.append(
                {
                    "attack": attack,
                    "windows": k,
                    "auc_mean": float(np.mean(values)) if values else np.nan,
                    "auc_sd": float(np.std(values)) if values else np.nan,
                    "draws": len(values),
                }
            )
    return pd.DataFrame(rows)


def person_attack_stage(
    score_paths: Mapping[str, str],
    *,
    index_path: str,
    alleles_path: str,
    membership_path: str,
    target: str,
    params: Mapping[str, Any],
    out: Mapping[str, str | os.PathLike],
) -> pd.DataFrame:
    """Write ``person_scores.tsv``, ``person_metrics.tsv`` and ``windows_curve.tsv``; return the metrics."""
    from .haplotypes import read_alleles, read_haplotype_index

    index = read_haplotype_index(index_path)
    offsets = alt_offsets(read_alleles(alleles_path))
    membership = read_individual_membership(membership_path)
    features = {m: sequence_features(pd.read_parquet(p), offsets) for m, p in score_paths.items()}
    features[target] = features.pop("target", features.get(target))
    table = person_scores(features, index, membership, target=target)
    metrics = evaluate_persons(table, params=params["metrics"])
    curve = windows_curve(
        features, index, membership, target=target, repeats=params["curve_repeats"], seed=params["seed"]
    )
    with atomic_outputs(out["scores"], out["metrics"], out["curve"]) as (s, m, c):
        write_tsv(table, s)
        write_tsv(metrics, m)
        write_tsv(curve, c)
    return metrics


# --- genotype inference ------------------------------------------------------------------------------------------


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


def major_allele(q) -> str:
    """The allele with the highest population frequency (REF when the ALTs together are rarer than it)."""
    alts = q.alts.split(",")
    return alts[0] if len(alts) == 1 and q.site_af > 0.5 else q.ref


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


def genotype_inference_stage(
    spec,
    *,
    fasta_path: str,
    alleles_path: str,
    membership_path: str,
    params: Mapping[str, Any],
    batch_size: int,
    out: Mapping[str, str | os.PathLike],
) -> pd.DataFrame:
    """Ask the target which allele each queried haplotype carries; write the decisions and the summary.

    Causal models: log-likelihood of the whole sequence with each candidate allele. Masked models: the
    tokens covering the site are masked and scored (pseudo-log-likelihood of the site given the rest).
    """
    from dataclasses import replace

    from ..fasta import read_fasta
    from .haplotypes import read_alleles
    from .scoring import SeqRecord, score_sequences

    alleles = read_alleles(alleles_path)
    membership = read_individual_membership(membership_path)
    queries = genotype_queries(alleles, membership, per_person=params["sites_per_person"], seed=params["seed"])
    sequences = read_fasta(fasta_path, keep=set(queries.seq_id))
    candidates = candidate_sequences(queries, sequences)
    records = [SeqRecord(f"q{i}_{a}", f"q{i}_{a}", "candidate", None, None, s) for i, a, s in candidates]
    site = {f"q{i}_{a}": np.array([queries.offset.iat[i]]) for i, a, _ in candidates}
    if spec.kind == "masked":
        spec = replace(spec, masking="sampled", mask_fraction=0.0)
    table = score_sequences(spec, records, snp_offsets=site, batch_size=batch_size, seed=params["seed"])
    feats = sequence_features(table.to_pandas(), site)
    logprob = feats.logprob.to_numpy() if spec.kind == "causal" else feats.alt_logprob.to_numpy()
    queries["predicted"] = decide_alleles(queries, candidates, logprob)
    queries["carries_alt"] = (queries.allele != queries.ref).astype(int)
    # af: the frequency of the ALT carried, or of the first ALT where the haplotype carries REF.
    queries["site_af"] = queries.af.astype(float)
    queries["truth_af"] = np.where(queries.carries_alt == 1, queries.site_af, 1 - queries.site_af)
    queries["correct"] = (queries.predicted == queries.allele).astype(int)
    queries["major_correct"] = [int(major_allele(q) == q.allele) for q in queries.itertuples(index=False)]
    queries["af_bin"] = [af_bin_label(a) for a in queries.site_af]
    summary = genotype_summary(queries)
    keep = ["sample", "member", "window_id", "pos", "ref", "alts", "allele", "predicted", "site_af", "af_bin"]
    with atomic_outputs(out["decisions"], out["summary"]) as (d, s):
        write_tsv(queries[keep + ["correct", "major_correct"]], d)
        write_tsv(summary, s)
    return summary


# --- scoring the haplotypes and the report section ------------------------------------------------------------------


def score_haplotypes(
    spec,
    *,
    fasta_path: str,
    alleles_path: str,
    batch_size: int,
    seed: int,
    out_path: str | os.PathLike,
) -> int:
    """Score every haplotype window with one model (scoring.score_sequences); the alt alleles are its SNP sites.

    Masked models in ``sampled`` mode thus always score the tokens over the haplotype's own alt alleles.
    """
    from ..fasta import read_fasta
    from .haplotypes import read_alleles
    from .scoring import SeqRecord, score_sequences, write_table

    sequences = read_fasta(fasta_path)
    records = [SeqRecord(sid, sid, "haplotype", None, None, seq) for sid, seq in sequences.items()]
    offsets = alt_offsets(read_alleles(alleles_path))
    table = score_sequences(spec, records, snp_offsets=offsets, batch_size=batch_size, seed=seed)
    write_table(table, out_path)
    return table.num_rows


def report_section(
    model: str,
    *,
    config: Mapping[str, Any],
    counts_path: str,
    membership_path: str,
    metrics_path: str,
    curve_path: str,
    genotype_path: str,
    figures: Sequence[tuple[str, str]],
) -> str:
    """HTML of the individuals section: data, person-level metrics and verdict, windows curve, genotype inference."""
    import html

    from ..report.elements import html_image, html_table
    from .metrics import TOO_FEW

    def table(df: pd.DataFrame) -> str:
        return html_table(df, 3, labels={TOO_FEW: "too few non-members"})

    ind = config.get("individuals", {})
    counts = read_table(counts_path)
    membership = read_individual_membership(membership_path)
    metrics = read_table(metrics_path)
    curve = read_table(curve_path)
    genotypes = read_table(genotype_path)
    parts = [f"<h2>Personal genomes: individuals membership of {html.escape(model)}</h2>"]
    n_members = int(membership.target_member.sum())
    parts.append(
        f"<p>{len(membership)} individuals from <code>{html.escape(str(ind.get('vcf')))}</code>: {n_members} "
        f"members (the target trained on both haplotypes of each of their windows), {len(membership) - n_members} "
        f"non-members; {sum(c.startswith('ref_') for c in membership.columns)} reference models, each trained on "
        "a seeded random half of the individuals. SNVs only; the counts of skipped records are below.</p>"
    )
    if ind.get("phasing") == "random":
        parts.append(
            "<p><b>Phasing: random.</b> Unphased heterozygous genotypes were assigned to the two haplotypes at "
            "random (seeded); haplotype sequences are then not the person's true haplotypes.</p>"
        )
    parts.append(table(counts))
    if not metrics.empty:
        best = metrics.sort_values("auc", ascending=False).iloc[0]
        leaks = float(best.auc_low) > 0.5
        parts.append(
            f"<div class='verdict {'leaks' if leaks else 'clean'}'><b>{html.escape(model)} "
            f"{'reveals which people were in its training set' if leaks else 'shows no clear person-level leakage'}"
            f".</b> Strongest person-level attack: <b>{html.escape(str(best.attack))}</b>, AUC {best.auc:.3f} "
            f"(95% CI {best.auc_low:.3f}–{best.auc_high:.3f}), empirical ε ≥ {float(best.eps_lower_bound):.2f}, "
            f"over {int(best.n_members)} members and {int(best.n_nonmembers)} non-members.</div>"
        )
    parts.append("<h3>Person-level attacks</h3>" + table(metrics))
    wide = curve.pivot(index="windows", columns="attack", values="auc_mean").reset_index()
    parts.append("<h3>Person-level AUC against windows per person (mean over draws)</h3>" + table(wide))
    parts.append("<h3>Genotype inference by allele-frequency bin</h3>" + table(genotypes))
    for path, caption in figures:
        parts.append(f"<h3>{html.escape(caption)}</h3>" + html_image(path, caption))
    return "\n".join(parts)
