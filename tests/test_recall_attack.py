"""ReCaLL: the score against an independent port of mimir's formula, the prefix draw, and the refusals."""

import re

import numpy as np
import pandas as pd
import pytest
from attack_inputs import save_causal_lm, token_logprobs, write_shard
from gfm_audit.config import validate_config
from gfm_audit.errors import InputError
from gfm_audit.models import ModelSpec, load_model, load_tokenizer
from gfm_audit.privacy.attacks import AttackData, registry, required_features
from gfm_audit.privacy.attacks.recall import prefix_windows, write_prefix
from gfm_audit.privacy.features import recall_feature, window_table
from gfm_audit.privacy.metrics import evaluate
from gfm_audit.privacy.scoring import score_shard


def mimir_recall(logprobs: np.ndarray, conditional_logprobs: np.ndarray) -> float:
    """mimir's ReCaLL score (mimir/attacks/recall.py), ported: ``ll_nonmember / lls``, where its get_ll is
    -mean(token log-probs) and its get_conditional_ll is minus the mean loss of the text's tokens after the
    prefix. mimir reads a lower score as member."""
    lls = -np.mean(logprobs)
    ll_nonmember = np.mean(conditional_logprobs)
    return ll_nonmember / lls


def _data(table: pd.DataFrame, member, params) -> AttackData:
    return AttackData(
        target="t",
        window_ids=list(table.index),
        member=np.asarray(member),
        features={"t": table},
        params=params,
    )


def test_recall_orders_windows_as_mimirs_score_negated_on_hand_made_log_probs():
    rng = np.random.default_rng(3)
    ids = [f"w{i}" for i in range(8)]
    member = np.array([1, 0, 1, 0, 1, 0, 0, 1])
    plain = [rng.uniform(-2.0, -0.1, 20) for _ in ids]
    conditional = [lp + rng.normal(0, 0.3, 20) for lp in plain]
    feature = recall_feature(2, 5)
    table = pd.DataFrame(
        {"loss": [-lp.mean() for lp in plain], feature: [-lp.mean() for lp in conditional]},
        index=pd.Index(ids, name="window_id"),
    )
    params = {"recall": {"prefix_windows": 2, "seed": 5}}
    score = registry()["recall"].run(_data(table, member, params))["recall"]
    expected = np.array([-mimir_recall(p, c) for p, c in zip(plain, conditional, strict=True)])
    prefix = prefix_windows(ids, member, 2, seed=5)
    scored = ~np.isin(ids, prefix)
    np.testing.assert_allclose(score[scored], expected[scored], rtol=1e-12)
    assert np.isnan(score[~scored]).all() and (~scored).sum() == 2


def test_prefix_is_a_seeded_draw_of_non_members_and_those_windows_leave_the_metrics():
    ids = [f"w{i}" for i in range(40)]
    member = np.array([i % 2 for i in range(40)])
    drawn = prefix_windows(ids, member, 3, seed=7)
    assert drawn == prefix_windows(ids, member, 3, seed=7)
    assert len(set(drawn)) == 3 and all(member[ids.index(w)] == 0 for w in drawn)
    assert {tuple(prefix_windows(ids, member, 3, seed=s)) for s in range(5)} != {tuple(drawn)}  # the seed matters
    with pytest.raises(InputError, match="prefix_windows is 20, but the membership has 20 non-member windows"):
        prefix_windows(ids, member, 20, seed=0)

    feature = recall_feature(3, 7)
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"loss": rng.uniform(1, 2, 40), feature: rng.uniform(1, 2, 40)}, index=ids)
    out = registry()["recall"].run(_data(table, member, {"recall": {"prefix_windows": 3, "seed": 7}}))
    scores = pd.DataFrame({"window_id": ids, "member": member, "recall": out["recall"]})
    metrics = evaluate(scores, n_boot=0, seed=0, delta=1e-5, level=0.95).set_index("attack")
    assert metrics.loc["recall", "n_nonmembers"] == 17 and metrics.loc["recall", "n_members"] == 20


def test_only_a_configured_recall_asks_the_scoring_jobs_for_its_feature():
    others = ["loss", "zlib", "min_k", "min_k_plus_plus", "neighborhood", "reference", "rmia", "lira"]
    params = {"recall": {"prefix_windows": 2, "seed": 1}}
    assert required_features(others, params) == required_features(others, {})
    assert required_features(["recall"], params) == ["recall_loss_n2_seed1"]
    assert required_features(["recall"], {}) == ["recall_loss_n1_seed0"]


def _membership(folder, windows, member):
    table = pd.DataFrame({"window_id": list(windows), "target_member": member})
    table.to_csv(folder / "membership.tsv", sep="\t", index=False)
    return folder / "membership.tsv"


def _score(spec, folder, features, **kwargs):
    return score_shard(
        spec,
        windows_fasta=str(folder / "windows.fa"),
        neighbors_fasta=str(folder / "neighbors.fa"),
        neighbors_tsv=str(folder / "neighbors.tsv"),
        snps_path=str(folder / "snps.tsv.gz"),
        features=features,
        batch_size=3,
        seed=0,
        features_path=folder / "features.parquet",
        progress=False,
        **kwargs,
    )


@pytest.mark.parametrize("add_bos", [False, True])
def test_scoring_job_recall_feature_equals_mimirs_conditional_loss_from_direct_forward_passes(tmp_path, add_bos):
    # Without a BOS token the port is mimir's to the token: the text's tokens all scored after the prefix, the
    # first one from the prefix's last. With one, the window's BOS (no base) is not scored, nor the prefix's.
    windows = write_shard(tmp_path / "shard")
    member = [1, 0, 1, 0, 0, 1]
    membership = _membership(tmp_path, windows, member)
    write_prefix(membership, tmp_path / "shard" / "windows.fa", tmp_path / "prefix.fa", n=2, seed=4)
    model_dir = save_causal_lm(tmp_path / "m", add_bos=add_bos)
    spec = ModelSpec("tiny", str(model_dir), "causal")
    feature = recall_feature(2, 4)
    _score(spec, tmp_path / "shard", [feature], recall_prefix=tmp_path / "prefix.fa")
    rows = pd.read_parquet(tmp_path / "shard" / "features.parquet")

    model, tok = load_model(spec), load_tokenizer(spec)
    prefix = prefix_windows(list(windows), np.array(member), 2, seed=4)
    prefix_ids = tok("".join(windows[w] for w in prefix))["input_ids"]
    for row in rows.itertuples():
        if row.kind != "window" or row.window_id in prefix:
            assert pd.isna(getattr(row, feature))  # neighbors and the prefix's windows get no value
            continue
        text_ids = tok(windows[row.window_id])["input_ids"]
        plain = token_logprobs(model, text_ids)
        joined = token_logprobs(model, prefix_ids + text_ids)[len(prefix_ids) - 1 :]
        conditional = joined[1:] if add_bos else joined  # the text's BOS, predicted from the prefix, is no base
        assert row.loss == pytest.approx(-plain.mean(), rel=1e-5)
        assert getattr(row, feature) == pytest.approx(-conditional.mean(), rel=1e-5)
        assert getattr(row, feature) / row.loss == pytest.approx(-mimir_recall(plain, conditional), rel=1e-5)
    # Window-only: the per-window table holds no neighbor aggregates of it.
    assert not [c for c in window_table(rows).columns if c.startswith("nbr_") and "recall" in c]


def test_a_context_too_short_for_prefix_and_window_stops_the_job_naming_model_and_both_lengths(tmp_path):
    windows = write_shard(tmp_path / "shard", length=40)
    membership = _membership(tmp_path, windows, [1, 0, 1, 0, 0, 1])
    write_prefix(membership, tmp_path / "shard" / "windows.fa", tmp_path / "prefix.fa", n=2, seed=0)
    spec = ModelSpec("short", str(save_causal_lm(tmp_path / "m", max_positions=100)), "causal")
    # Prefix: BOS + 80 bases; window: BOS + 40 bases: 122 tokens, above 100.
    message = "model 'short' takes 100 tokens, fewer than ReCaLL's prefix of 81 tokens (2 windows) plus a window of 41"
    with pytest.raises(InputError, match=re.escape(message)) as err:
        _score(spec, tmp_path / "shard", [recall_feature(2, 0)], recall_prefix=tmp_path / "prefix.fa")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "shard" / "features.parquet").exists()


@pytest.mark.parametrize("attack", ["recall", "gradnorm"])
def test_recall_and_gradnorm_on_a_masked_model_are_refused_at_config_validation_naming_both(attack):
    config = {
        "reference": {"fasta": "a.fa", "vcf": "b.vcf.gz"},
        "models": {"c": {"path": "x", "kind": "causal"}, "bert": {"path": "y", "kind": "masked"}},
        "target": "c",
        "membership": {"mode": "finetune"},
        "attacks": {"names": ["loss", attack]},
    }
    with pytest.raises(InputError, match=f"attack {attack} needs a causal model, but models.bert is masked") as err:
        validate_config(config)
    assert "\n" not in str(err.value)
    config["models"].pop("bert")
    validate_config(config)  # causal models only: accepted


def test_the_masked_refusal_also_holds_in_the_scoring_job(tmp_path, tiny_masked):
    write_shard(tmp_path / "shard")
    spec = ModelSpec("bert", str(tiny_masked), "masked")
    with pytest.raises(InputError, match="needs a causal model; model 'bert' is masked"):
        _score(spec, tmp_path / "shard", ["gradnorm_embeddings"])
