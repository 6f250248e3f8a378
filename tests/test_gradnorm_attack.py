"""Gradient-norm attack: the scoring job's norms against a port of mimir's backward pass, and its sign on a model
fitted to half its sequences."""

import numpy as np
import pandas as pd
import pytest
import torch
from attack_inputs import save_causal_lm, write_shard
from gfm_audit.models import ModelSpec, load_model, load_tokenizer
from gfm_audit.privacy.attacks import AttackData, registry, required_features
from gfm_audit.privacy.features import gradnorm_feature
from gfm_audit.privacy.scoring import gradient_norms, score_shard, scored_positions_many
from gfm_audit.tokens import encode_many
from sklearn.metrics import roc_auc_score


def mimir_gradient(model, ids, wrt):
    """mimir's GradNormAttack._attack (mimir/attacks/gradnorm.py), ported: zero the gradients, loss = -mean of the
    text's token log-probs, backward, then the gradients. Its norm is taken here as the L2 norm of all of them
    together (mimir averages each parameter tensor's own p-norm) and, for ``embeddings``, the gradient is that of
    the input embeddings, fed through ``inputs_embeds``."""
    model.zero_grad()
    x = torch.tensor([ids])
    if wrt == "embeddings":
        embeds = model.get_input_embeddings()(x).detach().requires_grad_(True)
        logits = model(inputs_embeds=embeds).logits[0]
    else:
        logits = model(x).logits[0]
    logp = torch.log_softmax(logits[:-1], -1).gather(-1, x[0, 1:, None])[:, 0]
    (-logp.mean()).backward()
    grads = [embeds.grad] if wrt == "embeddings" else [p.grad for p in model.parameters() if p.grad is not None]
    norm = float(torch.sqrt(sum(g.double().square().sum() for g in grads)))
    model.zero_grad()
    return norm


@pytest.mark.parametrize("wrt", ["parameters", "embeddings"])
def test_scoring_job_gradient_norm_equals_mimirs_backward_pass_by_hand(tmp_path, wrt):
    windows = write_shard(tmp_path / "shard")
    spec = ModelSpec("tiny", str(save_causal_lm(tmp_path / "m")), "causal")
    feature = gradnorm_feature(wrt)
    score_shard(
        spec,
        windows_fasta=str(tmp_path / "shard" / "windows.fa"),
        neighbors_fasta=str(tmp_path / "shard" / "neighbors.fa"),
        neighbors_tsv=str(tmp_path / "shard" / "neighbors.tsv"),
        snps_path=str(tmp_path / "shard" / "snps.tsv.gz"),
        features=[feature],
        batch_size=4,
        seed=0,
        features_path=tmp_path / "features.parquet",
        progress=False,
    )
    rows = pd.read_parquet(tmp_path / "features.parquet")
    model, tok = load_model(spec), load_tokenizer(spec)
    for row in rows.itertuples():
        if row.kind != "window":
            assert pd.isna(getattr(row, feature))
            continue
        expected = mimir_gradient(model, tok(windows[row.window_id])["input_ids"], wrt)
        assert getattr(row, feature) == pytest.approx(expected, rel=1e-4)
    # The scoring left the model as it found it: no parameter asks for gradients it did not ask for before.
    assert all(p.grad is None for p in model.parameters())


def _fit_half(seed=0, n=16, length=32, steps=300):
    """A tiny GPT-2 trained on the first half of ``n`` random DNA sequences until it has nearly memorised them."""
    from gfm_audit.char_lm import char_tokenizer
    from transformers import GPT2Config, GPT2LMHeadModel

    rng = np.random.default_rng(seed)
    texts = ["".join(rng.choice(list("ACGT"), length)) for _ in range(n)]
    member = np.r_[np.ones(n // 2), np.zeros(n - n // 2)].astype(int)
    tok = char_tokenizer()
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=len(tok),
            n_positions=64,
            n_embd=32,
            n_layer=2,
            n_head=2,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )
    )
    x = torch.tensor([tok(t)["input_ids"] for t, m in zip(texts, member, strict=True) if m])
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        optimiser.zero_grad()
        model(x, labels=x).loss.backward()
        optimiser.step()
    model.eval()
    return model, tok, texts, member


@pytest.mark.parametrize("wrt", ["parameters", "embeddings"])
def test_smaller_gradient_norm_scores_as_member_on_a_model_fitted_to_half_its_sequences(wrt):
    model, tok, texts, member = _fit_half()
    batch = encode_many(tok, texts, seq_ids=[f"s{i}" for i in range(len(texts))])
    positions = scored_positions_many(batch, "causal", masking="exact")
    norms = gradient_norms(model, batch, positions, wrt=wrt, device="cpu")
    feature = gradnorm_feature(wrt)
    data = AttackData(
        target="t",
        window_ids=[f"s{i}" for i in range(len(texts))],
        member=member,
        features={"t": pd.DataFrame({feature: norms})},
        params={"gradnorm": {"wrt": wrt}},
    )
    scores = registry()["gradnorm"].run(data)["gradnorm"]
    np.testing.assert_array_equal(scores, -norms)
    assert roc_auc_score(member, scores) > 0.5
    # mimir's ordering (a larger norm is a member) is the opposite: worse than chance on the same model.
    assert roc_auc_score(member, norms) < 0.5


def test_only_a_configured_gradnorm_asks_the_scoring_jobs_for_its_feature():
    others = ["loss", "zlib", "min_k", "min_k_plus_plus", "neighborhood", "reference", "rmia", "lira"]
    params = {"gradnorm": {"wrt": "embeddings"}}
    assert required_features(others, params) == required_features(others, {})
    assert required_features(["gradnorm"], params) == ["gradnorm_embeddings"]
    assert required_features(["gradnorm"], {}) == ["gradnorm_parameters"]
