"""recall, dc_pdd and gradnorm on demo data: windows of the demo genome (resources/demo/z.fa) scored by a tiny causal
model fitted to half of them, through the scoring job and the attack registry, against independent ports of mimir's
formulas (iamgroot42/mimir, mimir/attacks/recall.py, dc_pdd.py, gradnorm.py) computed here from direct forward and
backward passes. The hand-made-input and tiny-model checks of each attack are in their own test files; this one runs
all three together on the demo's data with a model that has members, and states mimir's sign conventions.

mimir's conventions, which every port below keeps: an attack returns a score for which LOWER means member (its
get_roc_metrics negates scores before the ROC); ``get_ll`` is the mean negative log-likelihood of the text's tokens
(a loss, positive), ``get_conditional_ll`` minus the mean negative log-likelihood of the text after the prefix (a
log-likelihood, negative). Our attacks return scores for which HIGHER means member."""

import math
from collections import Counter

import numpy as np
import pandas as pd
import pysam
import pytest
import torch
from attack_inputs import save_causal_lm, token_logprobs
from conftest import DEMO_FASTA, demo_sequence
from gfm_audit.models import ModelSpec, load_model, load_tokenizer
from gfm_audit.privacy.attacks import AttackData, registry
from gfm_audit.privacy.attacks.recall import prefix_windows, write_prefix
from gfm_audit.privacy.features import dc_pdd_feature, gradnorm_feature, recall_feature, window_table
from gfm_audit.privacy.scoring import score_shard
from gfm_audit.privacy.token_frequencies import count_token_frequencies, write_token_frequencies
from sklearn.metrics import roc_auc_score
from tolerances import float32_atol, network_terms

N_WINDOWS, LENGTH = 16, 64
PREFIX_N, PREFIX_SEED = 1, 0
A = 1.0  # DC-PDD's clip bound for a character model (config/demo_inference.yaml says why)


# --- independent ports of mimir's formulas -------------------------------------------------------------------------


def mimir_recall(logprobs: np.ndarray, conditional_logprobs: np.ndarray) -> float:
    """ReCaLL: ``ll_nonmember / lls`` with lls = get_ll (a loss, > 0) and ll_nonmember = get_conditional_ll (a
    log-likelihood, < 0); lower = member. The ratio is negative; a member, whose likelihood the non-member prefix
    lowers more, has a ratio further below zero."""
    lls = -float(np.mean(logprobs))
    ll_nonmember = float(np.mean(conditional_logprobs))
    return ll_nonmember / lls


def mimir_dc_pdd(logprobs, ids, frequency, a: float) -> float:
    """DC-PDD (Zhang et al., EMNLP 2024): alpha = p * log(1/f) at the first occurrence of each token id, clipped at
    a; mimir returns beta = -mean(alpha), lower = member. f: Laplace-smoothed counts (count + 1) / (N + |V|)."""
    seen, alphas = set(), []
    for lp, token in zip(logprobs, ids, strict=True):
        if token in seen:
            continue
        seen.add(token)
        alphas.append(min(math.exp(lp) * math.log(1.0 / frequency[token]), a))
    return -sum(alphas) / len(alphas)


def mimir_gradient_norm(model, ids) -> float:
    """mimir's GradNormAttack._attack's backward pass: zero the gradients, loss = -mean of the text's token
    log-probs, backward. The norm is ours as documented (gfm_audit.privacy.attacks.gradnorm): the L2 norm of all
    parameters' gradients together, where mimir averages each parameter tensor's own p-norm (p = inf by default)."""
    model.zero_grad()
    x = torch.tensor([ids])
    logits = model(x).logits[0]
    logp = torch.log_softmax(logits[:-1], -1).gather(-1, x[0, 1:, None])[:, 0]
    (-logp.mean()).backward()
    norm = float(torch.sqrt(sum(p.grad.double().square().sum() for p in model.parameters() if p.grad is not None)))
    model.zero_grad()
    return norm


def fasta_token_frequencies(tokenizer) -> np.ndarray:
    """The demo FASTA's token frequencies for a one-token-per-base tokenizer, counted naively: every base of every
    contig, upper-cased, Laplace-smoothed over the whole vocabulary (special tokens included, count 0)."""
    counts = Counter()
    with pysam.FastaFile(str(DEMO_FASTA)) as fasta:
        for contig in fasta.references:
            counts.update(fasta.fetch(contig).upper())
    vocab = tokenizer.get_vocab()
    table = np.zeros(len(vocab))
    for base, n in counts.items():
        table[vocab[base]] = n
    return (table + 1) / (table.sum() + len(table))


# --- the demo windows, a model fitted to half of them, the scoring job ---------------------------------------------


def _write_inputs(folder):
    """N_WINDOWS demo windows (every 5 kb along z) with one SNP neighbor each, as the scoring job reads them."""
    import gzip

    folder.mkdir(parents=True, exist_ok=True)
    windows = {f"w{i}": demo_sequence(5000 * (i + 1), 5000 * (i + 1) + LENGTH) for i in range(N_WINDOWS)}
    (folder / "windows.fa").write_text("".join(f">{w}\n{s}\n" for w, s in windows.items()))
    swap = {"A": "C", "C": "G", "G": "T", "T": "A"}
    (folder / "neighbors.fa").write_text("".join(f">{w}_n\n{swap[s[0]]}{s[1:]}\n" for w, s in windows.items()))
    (folder / "neighbors.tsv").write_text(
        "neighbor_id\twindow_id\tkind\tprob\treplicate\n" + "".join(f"{w}_n\t{w}\tsnp\t0.5\t0\n" for w in windows)
    )
    with gzip.open(folder / "snps.tsv.gz", "wt") as fh:
        fh.write("window_id\toffset\n" + "".join(f"{w}\t0\n" for w in windows))
    return windows


def _fit_members(path, windows, member, steps=60):
    """A tiny character GPT-2 (tests/attack_inputs.py) trained on the member windows, saved back to ``path``."""
    spec = ModelSpec("tiny", str(save_causal_lm(path, max_positions=256)), "causal")
    model, tok = load_model(spec), load_tokenizer(spec)
    x = torch.tensor([tok(s)["input_ids"] for s, m in zip(windows.values(), member, strict=True) if m])
    torch.manual_seed(0)
    model.train()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        optimiser.zero_grad()
        model(x, labels=x).loss.backward()
        optimiser.step()
    model.save_pretrained(path)
    return spec


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mimir_demo")
    windows = _write_inputs(tmp / "shard")
    member = np.array([1, 0] * (N_WINDOWS // 2))
    pd.DataFrame({"window_id": list(windows), "target_member": member}).to_csv(
        tmp / "membership.tsv", sep="\t", index=False
    )
    write_prefix(tmp / "membership.tsv", tmp / "shard/windows.fa", tmp / "prefix.fa", n=PREFIX_N, seed=PREFIX_SEED)
    spec = _fit_members(tmp / "model", windows, member)
    tokenizer = load_tokenizer(spec)
    write_token_frequencies(
        count_token_frequencies(DEMO_FASTA, tokenizer, piece_length=LENGTH), tokenizer, tmp / "f.tsv"
    )
    features = [recall_feature(PREFIX_N, PREFIX_SEED), dc_pdd_feature(A), gradnorm_feature("parameters")]
    score_shard(
        spec,
        windows_fasta=str(tmp / "shard/windows.fa"),
        neighbors_fasta=str(tmp / "shard/neighbors.fa"),
        neighbors_tsv=str(tmp / "shard/neighbors.tsv"),
        snps_path=str(tmp / "shard/snps.tsv.gz"),
        features=features,
        batch_size=4,
        seed=0,
        features_path=tmp / "features.parquet",
        progress=False,
        token_frequencies=tmp / "f.tsv",
        recall_prefix=tmp / "prefix.fa",
    )
    table = window_table(pd.read_parquet(tmp / "features.parquet")).set_index("window_id").loc[list(windows)]
    params = {"recall": {"prefix_windows": PREFIX_N, "seed": PREFIX_SEED}, "dc_pdd": {"a": A}}
    data = AttackData(target="tiny", window_ids=list(windows), member=member, features={"tiny": table}, params=params)
    ours = {name: registry()[name].run(data)[name] for name in ("recall", "dc_pdd", "gradnorm")}
    return windows, member, spec, ours


def _tolerance(model, ids, scale: float = 1.0) -> float:
    """Rounding of one float32 forward pass of the 2-layer, 32-wide model (tests/tolerances.py), times ``scale``."""
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].numpy()
    return float32_atol(logits, network_terms(2, 32, len(ids))) * scale


def test_recall_on_demo_windows_is_mimirs_score_negated(scored):
    windows, member, spec, ours = scored
    model, tok = load_model(spec), load_tokenizer(spec)
    prefix = prefix_windows(list(windows), member, PREFIX_N, seed=PREFIX_SEED)
    prefix_ids = tok("".join(windows[w] for w in prefix))["input_ids"]
    mimir = {}
    for i, (name, text) in enumerate(windows.items()):
        if name in prefix:
            assert np.isnan(ours["recall"][i])  # the prefix's windows are not scored, as in mimir
            continue
        ids = tok(text)["input_ids"]  # [BOS] + one token per base
        plain = token_logprobs(model, ids)
        # The text after the prefix: its bases are the scored tokens; its BOS stays in the input, unscored (mimir
        # would score it: its tokenizers for text add no BOS; ours does, and a BOS is no base).
        conditional = token_logprobs(model, prefix_ids + ids)[len(prefix_ids) :]
        mimir[name] = mimir_recall(plain, conditional)
        # The ratio of two means of float32 log-probs: their rounding, relative to the score's size.
        atol = _tolerance(model, prefix_ids + ids, scale=abs(mimir[name]) + 1)
        assert ours["recall"][i] == pytest.approx(-mimir[name], abs=atol)
    # Orderings agree: our AUC (higher = member) is mimir's (lower = member) on the same windows.
    scored_ids = [w for w in windows if w in mimir]
    labels = member[[list(windows).index(w) for w in scored_ids]]
    ours_auc = roc_auc_score(labels, [ours["recall"][list(windows).index(w)] for w in scored_ids])
    assert ours_auc == pytest.approx(roc_auc_score(labels, [-mimir[w] for w in scored_ids]), abs=1e-12)


def test_dc_pdd_on_demo_windows_is_mimirs_beta_negated_with_the_fastas_token_frequencies(scored):
    windows, member, spec, ours = scored
    model, tok = load_model(spec), load_tokenizer(spec)
    frequency = fasta_token_frequencies(tok)
    mimir = []
    for i, text in enumerate(windows.values()):
        ids = tok(text)["input_ids"]
        # mimir prepends an EOS token so that the first token has a probability; our tokenizer's BOS does that here.
        beta = mimir_dc_pdd(token_logprobs(model, ids), ids[1:], frequency, A)
        mimir.append(beta)
        # float32 rounding of the log-probs, times the largest log(1/f) that multiplies a probability.
        atol = _tolerance(model, ids, scale=float(np.max(-np.log(frequency))))
        assert ours["dc_pdd"][i] == pytest.approx(-beta, abs=atol)
    # Not every window at the clip bound: the scores tell windows apart on this model.
    assert len(np.unique(np.round(ours["dc_pdd"], 6))) > N_WINDOWS // 2
    assert roc_auc_score(member, ours["dc_pdd"]) == pytest.approx(roc_auc_score(member, -np.array(mimir)), abs=1e-12)


def test_gradnorm_on_demo_windows_is_minus_the_l2_norm_of_mimirs_backward_pass_and_mimirs_opposite_order(scored):
    windows, member, spec, ours = scored
    model, tok = load_model(spec), load_tokenizer(spec)
    norms = np.array([mimir_gradient_norm(model, tok(text)["input_ids"]) for text in windows.values()])
    # Documented sign: score = -||grad||_2, higher = member. Gradients are sums over float32 backward passes; 1e-4
    # relative is the same bound the per-feature test (tests/test_gradnorm_attack.py) allows.
    np.testing.assert_allclose(ours["gradnorm"], -norms, rtol=1e-4)
    # On a model fitted to its members, members have the smaller gradients: our order finds them; mimir's
    # convention (its score -norm read lower = member) ranks the same windows the opposite way.
    auc = roc_auc_score(member, ours["gradnorm"])
    assert auc > 0.5
    mimir_score = -norms  # lower = member: mimir's AUC is that of its score negated
    assert roc_auc_score(member, -mimir_score) == pytest.approx(1 - auc, abs=1e-12)
