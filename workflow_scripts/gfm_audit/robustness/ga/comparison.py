"""The attacks the GA is compared with, under the GA's own hard constraints, success rule and query counting.

- ``greedy`` (TextFooler-style; Jin et al., AAAI 2020): score every valid single
  substitution of every allowed position (3 per position), rank positions by the
  importance I(i) = p_true(x) - min_b p_true(x with x_i := b), then walk the
  ranking: at each position try its proposed bases in the current context and
  keep the best one when it lowers p_true, until success, ``max_edits``
  substitutions, or the ranking is exhausted.
- ``lm_proposal`` (BERT-Attack-style; Li et al., EMNLP 2020): the same ranked
  walk, but the bases tried at position i are only the ``top_k`` alternatives a
  DNA language model finds most likely there: p(x_i = b | x_-i) for a masked LM
  (position i masked), p(x_i = b | x_<i) for a causal LM (its next-base
  distribution; named so, it sees no right context). The language model must
  read one token per base (character level).
- ``pgd`` (Madry et al., ICLR 2018, on the relaxed one-hot input): for a
  classifier that takes one-hot input (the CNN), x in the product of simplices
  (L positions x 4 bases), x <- Proj_simplex(x - alpha * sign(grad_x log p_true(x))),
  protected positions frozen. Every step the relaxed x is projected back to
  bases (arg max per position), the at most ``max_edits`` changed positions with
  the largest margin x[new] - x[original] are kept, and the candidate is
  repaired by reverting its lowest-margin edits until it satisfies the
  constraints. That candidate is scored (one query); the gradient pass counts
  one query too.

Every scored candidate passes :func:`.constraints.is_valid`; success is
:func:`.search.successful`; successful candidates are pruned by
:func:`.search.prune_edits`, exactly as the GA's and the random baseline's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ...errors import InputError
from ...outputs import atomic_outputs, write_tsv
from .attack import sample_rows, settings_from_config
from .classifiers import load_classifier
from .constraints import Constraints, is_valid
from .data import read_labelled_csv
from .search import AttackResult, Predict, _record_best, _record_winners, _Scorer
from .splits import check_fits

log = logging.getLogger(__name__)

ATTACKS = ("greedy", "lm_proposal", "pgd")
COMPARISON_COLUMNS = ["attack", "budget", "asr", "mean_edits", "mean_queries", "n_attacked"]

Proposer = Callable[[np.ndarray], np.ndarray]
"""(N, L) uint8 codes -> (N, L, 4) probability of each base at each position under a language model."""


@dataclass(frozen=True)
class ComparisonParams:
    attacks: tuple[str, ...] = ATTACKS
    n_sequences: int = 200
    top_k: int = 1
    pgd_steps: int = 20
    pgd_step_size: float = 0.2


def comparison_params(block: Mapping[str, Any]) -> ComparisonParams:
    """The ``robustness.ga.comparison`` block."""
    return ComparisonParams(
        attacks=tuple(block["attacks"]),
        n_sequences=block["n_sequences"],
        top_k=block["top_k"],
        pgd_steps=block["pgd_steps"],
        pgd_step_size=block["pgd_step_size"],
    )


def _new_result(originals: np.ndarray, p_true_before: np.ndarray, queries: np.ndarray) -> AttackResult:
    n = len(originals)
    return AttackResult(originals.copy(), p_true_before.copy(), p_true_before.copy(), np.zeros(n, bool), queries)


def all_alternatives(originals: np.ndarray) -> np.ndarray:
    """(S, L, 4) proposals of the greedy attack: every base but the original's."""
    return np.arange(4)[None, None, :] != originals[..., None]


def top_alternatives(probs: np.ndarray, originals: np.ndarray, k: int) -> np.ndarray:
    """(S, L, 4) proposals of the language-model attack: the ``k`` most likely bases other than the original."""
    scores = np.where(all_alternatives(originals), probs, -np.inf)
    rank = np.argsort(np.argsort(-scores, axis=-1, kind="stable"), axis=-1, kind="stable")
    return (rank < k) & np.isfinite(scores)


def rank_positions(
    predict: Predict,
    originals: np.ndarray,
    labels: np.ndarray,
    *,
    protected: np.ndarray,
    proposals: np.ndarray,
    constraints: Constraints,
    scorer: _Scorer | None = None,
    chunk: int = 32,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Score every valid proposed single substitution; returns (order, p_single, pred_single).

    ``p_single`` (S, L, 4) is p_true of x with x_i := b (inf where not proposed, protected or invalid);
    ``order`` (S, L) lists positions by importance I(i) = p_true(x) - min_b p_single[i, b], most important first,
    positions with no scored substitution last.
    """
    s_count, length = originals.shape
    scorer = scorer or _Scorer(predict, labels, s_count)
    p_single = np.full((s_count, length, 4), np.inf)
    pred_single = np.full((s_count, length, 4), -1, dtype=np.int64)
    rows = np.arange(s_count)
    for start in range(0, length, chunk):
        pos = np.arange(start, min(length, start + chunk))
        cand = np.repeat(originals[:, None, :], pos.size * 4, axis=1)
        flat_pos, flat_base = np.repeat(pos, 4), np.tile(np.arange(4, dtype=np.uint8), pos.size)
        cand[:, np.arange(pos.size * 4), flat_pos] = flat_base
        mask = proposals[:, pos, :].reshape(s_count, -1) & ~protected[:, flat_pos]
        mask &= is_valid(cand, originals, protected, constraints=constraints)
        p_true, pred = scorer(rows, cand, mask)
        p_single[:, pos, :] = p_true.reshape(s_count, pos.size, 4)
        pred_single[:, pos, :] = pred.reshape(s_count, pos.size, 4)
    best = p_single.min(axis=-1)
    order = np.argsort(best, axis=1, kind="stable")  # lowest p_true first = largest drop first
    return order, p_single, pred_single


def ranked_substitution_attack(
    predict: Predict,
    originals: np.ndarray,
    labels: np.ndarray,
    *,
    p_true_before: np.ndarray,
    protected: np.ndarray,
    proposals: np.ndarray,
    constraints: Constraints,
    delta: float,
) -> AttackResult:
    """The ranked walk shared by ``greedy`` (every alternative base) and ``lm_proposal`` (the LM's top k)."""
    s_count, length = originals.shape
    scorer = _Scorer(predict, labels, s_count)
    scorer.queries += 1  # the original's own prediction
    order, p_single, _ = rank_positions(
        predict, originals, labels, protected=protected, proposals=proposals, constraints=constraints, scorer=scorer
    )
    result = _new_result(originals, p_true_before, scorer.queries)
    n_ranked = np.isfinite(p_single.min(axis=-1)).sum(axis=1)
    current, current_p = originals.copy(), p_true_before.copy()
    best = np.full(s_count, np.inf)
    edits = np.zeros(s_count, dtype=np.int64)
    step = np.zeros(s_count, dtype=np.int64)
    active = (n_ranked > 0) & (constraints.max_edits > 0)
    while active.any():
        rows = np.flatnonzero(active)
        pos = order[rows, step[rows]]
        cand = np.repeat(current[rows][:, None, :], 4, axis=1)
        cand[np.arange(rows.size)[:, None], np.arange(4)[None, :], pos[:, None]] = np.arange(4, dtype=np.uint8)
        # Each position is visited once, so its current base is the original, never a proposal.
        mask = proposals[rows, pos, :].copy()
        mask &= is_valid(cand, originals[rows], protected[rows], constraints=constraints)
        p_true, pred = scorer(rows, cand, mask)
        choice = p_true.argmin(axis=1)
        top = p_true[np.arange(rows.size), choice]
        accept = top < current_p[rows]
        take = rows[accept]
        current[take] = cand[accept, choice[accept]]
        current_p[take] = top[accept]
        edits[take] += 1
        _record_best(result, best, rows, cand, p_true, p_true)
        n_edits = (cand != originals[rows][:, None, :]).sum(-1)
        won = _record_winners(result, rows, cand, p_true, pred, n_edits, labels, delta)
        step[rows] += 1
        active[won] = False
        active &= (step < n_ranked) & (edits < constraints.max_edits)
    return result


def greedy_attack(
    predict: Predict,
    originals: np.ndarray,
    labels: np.ndarray,
    *,
    p_true_before: np.ndarray,
    protected: np.ndarray,
    constraints: Constraints,
    delta: float,
) -> AttackResult:
    """TextFooler-style greedy attack: every alternative base of every allowed position is a proposal."""
    return ranked_substitution_attack(
        predict,
        originals,
        labels,
        p_true_before=p_true_before,
        protected=protected,
        proposals=all_alternatives(originals),
        constraints=constraints,
        delta=delta,
    )


def lm_proposal_attack(
    predict: Predict,
    originals: np.ndarray,
    labels: np.ndarray,
    *,
    p_true_before: np.ndarray,
    protected: np.ndarray,
    constraints: Constraints,
    delta: float,
    proposer: Proposer,
    top_k: int,
) -> AttackResult:
    """BERT-Attack-style: only the language model's ``top_k`` alternative bases per position are tried."""
    proposals = top_alternatives(proposer(originals), originals, top_k)
    return ranked_substitution_attack(
        predict,
        originals,
        labels,
        p_true_before=p_true_before,
        protected=protected,
        proposals=proposals,
        constraints=constraints,
        delta=delta,
    )


# --- the language model's per-base distribution -------------------------------------------------------------
class LMProposer:
    """p(x_i = b | context) for b in ACGT from a character-level DNA LM (one token per base).

    Masked: one forward pass per position with that position masked (bidirectional context).
    Causal: one forward pass per sequence; position i reads the logits of the token before it (left context only).
    """

    def __init__(self, name: str, model, tokenizer, *, kind: str, batch_size: int = 64):
        self.name, self.model, self.tokenizer, self.kind, self.batch_size = name, model, tokenizer, kind, batch_size
        vocab = tokenizer.get_vocab()
        missing = [b for b in "ACGT" if b not in vocab]
        if missing:
            raise InputError(
                f"robustness.ga.comparison.proposal_model '{name}': its tokenizer has no single-base token for "
                f"{', '.join(missing)}; the lm_proposal attack needs a character-level DNA LM (one token per base)"
            )
        self.base_ids = [vocab[b] for b in "ACGT"]
        if kind == "masked" and tokenizer.mask_token_id is None:
            raise InputError(f"robustness.ga.comparison.proposal_model '{name}': masked LM without a mask token")

    def _encode(self, codes: np.ndarray):
        import torch

        from .data import decode

        batch = self.tokenizer(decode(codes), return_tensors="pt", return_offsets_mapping=True)
        offsets = batch.pop("offset_mapping")[0]
        single = (offsets[:, 1] - offsets[:, 0]) == 1
        first = int(torch.nonzero(single)[0]) if single.any() else -1
        if int(single.sum()) != codes.shape[1] or not bool(single[first : first + codes.shape[1]].all()):
            raise InputError(
                f"robustness.ga.comparison.proposal_model '{self.name}': it does not read one token per base; "
                "the lm_proposal attack needs a character-level DNA LM"
            )
        return batch, first

    def __call__(self, codes: np.ndarray) -> np.ndarray:
        import torch

        from ...determinism import single_cpu_thread

        s_count, length = codes.shape
        out = np.zeros((s_count, length, 4))
        device = next(self.model.parameters()).device
        with single_cpu_thread(), torch.inference_mode():
            for start in range(0, s_count, self.batch_size):
                part = codes[start : start + self.batch_size]
                batch, first = self._encode(part)
                ids = batch["input_ids"].to(device)
                if self.kind == "causal":
                    if first == 0:
                        raise InputError(
                            f"robustness.ga.comparison.proposal_model '{self.name}': a causal LM needs a start "
                            "token before the first base to predict it"
                        )
                    logits = self.model(input_ids=ids).logits[:, first - 1 : first - 1 + length]
                    out[start : start + len(part)] = self._bases(logits)
                else:
                    for i in range(length):
                        masked = ids.clone()
                        masked[:, first + i] = self.tokenizer.mask_token_id
                        logits = self.model(input_ids=masked).logits[:, first + i]
                        out[start : start + len(part), i] = self._bases(logits)
        return out

    def _bases(self, logits) -> np.ndarray:
        import torch

        return torch.softmax(logits.float()[..., self.base_ids], dim=-1).cpu().numpy()


def load_proposer(name: str, block: Mapping[str, Any], folder: str) -> LMProposer:
    """The language model ``name`` of the ``models`` block, read from ``folder``."""
    from ...models import ModelSpec, load_model, load_tokenizer

    spec = ModelSpec.from_config(name, {**block, "path": folder, "init": "pretrained"})
    model = load_model(spec)
    from .classifiers import _device

    return LMProposer(name, model.to(_device()), load_tokenizer(spec), kind=spec.kind)


# --- PGD on the relaxed one-hot input -----------------------------------------------------------------------
def project_simplex(x):
    """Euclidean projection of each row of the last axis onto the probability simplex (Duchi et al., ICML 2008)."""
    import torch

    u, _ = torch.sort(x, dim=-1, descending=True)
    css = u.cumsum(dim=-1) - 1
    k = torch.arange(1, x.shape[-1] + 1, device=x.device, dtype=x.dtype)
    rho = ((u - css / k) > 0).to(x.dtype).cumsum(dim=-1).argmax(dim=-1, keepdim=True)
    theta = css.gather(-1, rho) / (rho + 1).to(x.dtype)
    return torch.clamp(x - theta, min=0)


def discretize(
    relaxed: np.ndarray, originals: np.ndarray, *, protected: np.ndarray, constraints: Constraints
) -> np.ndarray:
    """Bases from a relaxed (S, L, 4) input: arg max per position, at most ``max_edits`` changes (largest margin
    x[new] - x[original] first), then the lowest-margin edits reverted until the candidate is valid."""
    s_count, length = originals.shape
    new = relaxed.argmax(axis=-1).astype(np.uint8)
    rows = np.arange(s_count)[:, None]
    margin = relaxed[rows, np.arange(length)[None, :], new] - relaxed[rows, np.arange(length)[None, :], originals]
    changed = (new != originals) & ~protected
    keys = np.where(changed, -margin, np.inf)
    by_margin = np.argsort(keys, axis=1, kind="stable")
    n_changed = np.minimum(changed.sum(axis=1), constraints.max_edits)
    k = constraints.max_edits
    # Candidate j keeps the j largest-margin edits; j = 0 is the original, always valid.
    cand = np.repeat(originals[:, None, :], k + 1, axis=1)
    for j in range(1, k + 1):
        keep = by_margin[:, :j]
        use = np.arange(j)[None, :] < np.minimum(n_changed, j)[:, None]
        pos = np.where(use, keep, 0)
        rows_j = np.repeat(np.arange(s_count)[:, None], j, axis=1)
        cand[rows_j[use], j, pos[use]] = new[rows_j[use], pos[use]]
    ok = is_valid(cand, originals, protected, constraints=constraints)
    best_j = np.where(ok, np.arange(k + 1)[None, :], -1).max(axis=1)
    return cand[np.arange(s_count), best_j]


def pgd_attack(
    clf,
    originals: np.ndarray,
    labels: np.ndarray,
    *,
    p_true_before: np.ndarray,
    protected: np.ndarray,
    constraints: Constraints,
    delta: float,
    steps: int,
    step_size: float,
) -> AttackResult:
    """PGD on the relaxed one-hot input of ``clf`` (needs ``clf.logits_from_one_hot``); see the module docstring."""
    import torch

    from ...determinism import single_cpu_thread

    s_count, length = originals.shape
    scorer = _Scorer(clf.predict_proba, labels, s_count)
    scorer.queries += 1
    result = _new_result(originals, p_true_before, scorer.queries)
    best = np.full(s_count, np.inf)
    device = next(clf.model.parameters()).device
    x = torch.nn.functional.one_hot(torch.as_tensor(originals, dtype=torch.long), 4).float().to(device)
    frozen = torch.as_tensor(protected, device=device)[..., None]
    target = torch.as_tensor(labels, dtype=torch.long, device=device)
    active = np.ones(s_count, dtype=bool)
    clf.model.eval()
    with single_cpu_thread():
        for _ in range(steps):
            rows = np.flatnonzero(active)
            if rows.size == 0:
                break
            idx = torch.as_tensor(rows, device=device)
            xr = x[idx].clone().requires_grad_(True)
            log_p = torch.log_softmax(clf.logits_from_one_hot(xr.transpose(1, 2)).float(), dim=-1)
            log_p.gather(1, target[idx, None]).sum().backward()
            scorer.queries[rows] += 1
            with torch.no_grad():
                step = torch.where(frozen[idx], 0.0, -step_size * xr.grad.sign())
                x[idx] = project_simplex(xr + step)
            relaxed = x[idx].detach().cpu().numpy()
            cand = discretize(relaxed, originals[rows], protected=protected[rows], constraints=constraints)[:, None]
            p_true, pred = scorer(rows, cand)
            _record_best(result, best, rows, cand, p_true, p_true)
            edits = (cand != originals[rows][:, None, :]).sum(-1)
            active[_record_winners(result, rows, cand, p_true, pred, edits, labels, delta)] = False
    return result


# --- the comparison table ---------------------------------------------------------------------------------
def comparison_rows(name: str, res: AttackResult, *, originals: np.ndarray, max_edits: int) -> list[dict[str, Any]]:
    """One row per budget j = 1..max_edits: ASR = successes within j edits / attacked, as in ``summary.tsv``."""
    edits = (res.adversarial != originals).sum(axis=1)
    n = len(originals)
    rows = []
    for budget in range(1, max_edits + 1):
        hit = res.success & (edits <= budget)
        rows.append(
            {
                "attack": name,
                "budget": budget,
                "asr": hit.sum() / n if n else np.nan,
                "mean_edits": edits[hit].mean() if hit.any() else np.nan,
                "mean_queries": res.queries.mean() if n else np.nan,
                "n_attacked": n,
            }
        )
    return rows


@dataclass
class Comparison:
    """Each attack's merged result over the attacked sequences, and why an attack did not run."""

    targets: Any  # attack.Targets
    results: dict[str, AttackResult]
    skipped: dict[str, str]


def compare_attacks(
    clf,
    data,
    *,
    constraints: Constraints,
    ga_params,
    params: ComparisonParams,
    seed: int,
    proposer: Proposer | None = None,
    rerun_ga: bool = True,
) -> Comparison:
    """The GA and the random baseline (as ``ga_attack`` runs them: same settings, same seed; not with
    ``rerun_ga=False``, when their rows come from ``summary.tsv`` of the same sample), then each configured
    comparison attack, on the sequences of ``data`` that ``clf`` classifies correctly, each pruned like the GA;
    attacks that cannot run are skipped with the reason."""
    from .attack import _empty, _merge, attack_sequences, attack_targets
    from .search import prune_edits

    delta = ga_params.delta
    if rerun_ga:
        run = attack_sequences(clf, data, constraints=constraints, params=ga_params, seed=seed)
        t, results = run.targets, {"ga": run.ga, "random": run.random}
    else:
        t, results = attack_targets(clf, data, constraints), {}
    rows = np.flatnonzero(t.possible)
    chosen = dict(originals=t.originals[rows], labels=t.labels[rows], protected=t.protected[rows])
    skipped = {}
    for name in params.attacks:
        if name == "lm_proposal" and proposer is None:
            skipped[name] = "no proposal_model configured (robustness.ga.comparison.proposal_model)"
        elif name == "pgd" and not hasattr(clf, "logits_from_one_hot"):
            skipped[name] = f"classifier '{clf.name}' does not take one-hot input (PGD needs the CNN)"
        if name in skipped:
            log.warning("comparison: %s not run: %s", name, skipped[name])
            continue
        merged = _empty(t.originals, t.p_before)
        if rows.size:
            common = dict(**chosen, p_true_before=t.p_before[rows], constraints=constraints, delta=delta)
            if name == "greedy":
                part = greedy_attack(clf.predict_proba, **common)
            elif name == "lm_proposal":
                part = lm_proposal_attack(clf.predict_proba, **common, proposer=proposer, top_k=params.top_k)
            else:
                part = pgd_attack(clf, **common, steps=params.pgd_steps, step_size=params.pgd_step_size)
            part = prune_edits(clf.predict_proba, part, **chosen, constraints=constraints, delta=delta)
            _merge(merged, part, rows)
        log.info("comparison: %s flipped %d of %d", name, merged.success.sum(), len(t.originals))
        results[name] = merged
    return Comparison(t, results, skipped)


def summary_budget_rows(summary: pd.DataFrame, name: str) -> list[dict[str, Any]]:
    """The ``<name>_k<j>`` rows of ``summary.tsv`` (the GA's or the random baseline's) as comparison rows."""
    rows = []
    for row in summary.itertuples():
        prefix, _, budget = str(row.attack).rpartition("_k")
        if prefix == name and budget.isdigit():
            rows.append(
                {
                    "attack": name,
                    "budget": int(budget),
                    "asr": row.asr,
                    "mean_edits": row.mean_edits,
                    "mean_queries": row.mean_queries,
                    "n_attacked": row.n_attacked,
                }
            )
    return rows


def comparison_table(comparison: Comparison, *, max_edits: int, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every attack's rows (GA, random, then the comparison attacks), per budget; the GA's and the random
    baseline's from ``summary`` when the GA was not run again."""
    rows = []
    if summary is not None:
        rows += summary_budget_rows(summary, "ga") + summary_budget_rows(summary, "random")
    for name, res in comparison.results.items():
        rows += comparison_rows(name, res, originals=comparison.targets.originals, max_edits=max_edits)
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def compare_attacks_stage(
    name: str,
    spec: Mapping[str, Any],
    *,
    folder: str,
    test_csv: str,
    non_acgt: str,
    attack: Mapping[str, Any],
    comparison: Mapping[str, Any],
    proposal: tuple[str, Mapping[str, Any], str] | None,
    comparison_tsv: str,
    summary_tsv: str | None = None,
) -> None:
    """GA, random, greedy, LM-proposal and PGD on one seeded sample of the test split (``comparison.n_sequences``
    rows drawn with the attack's seed). When that is the GA's own sample (the same n_sequences) and ``summary_tsv``
    is given, the GA's and the random baseline's rows are read from it instead of running them again."""
    test = read_labelled_csv(test_csv, non_acgt)
    clf = load_classifier(name, folder, spec)
    check_fits(clf, test)
    constraints, params = settings_from_config(attack)
    settings = comparison_params(comparison)
    proposer = None
    if proposal is not None and "lm_proposal" in settings.attacks:
        proposer = load_proposer(*proposal)
    chosen = test.subset(sample_rows(len(test), settings.n_sequences, attack["seed"]))
    reuse = summary_tsv is not None and settings.n_sequences == attack["n_sequences"]
    result = compare_attacks(
        clf,
        chosen,
        constraints=constraints,
        ga_params=params,
        params=settings,
        seed=attack["seed"],
        proposer=proposer,
        rerun_ga=not reuse,
    )
    summary = pd.read_csv(summary_tsv, sep="\t") if reuse else None
    with atomic_outputs(comparison_tsv) as (tmp,):
        write_tsv(comparison_table(result, max_edits=constraints.max_edits, summary=summary), tmp)
