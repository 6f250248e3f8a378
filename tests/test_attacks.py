"""Attacks against hand-computed examples, and cases whose answer is known."""

import math
import zlib

import numpy as np
import pandas as pd
import pytest
from gfm_audit.errors import InputError
from gfm_audit.privacy.attacks import AttackData, registry, required_features
from gfm_audit.privacy.attacks.lira import lira_scores
from gfm_audit.privacy.attacks.rmia import population_mask, rmia_scores, tune_a
from gfm_audit.privacy.attacks.runner import run_attacks
from gfm_audit.privacy.features import min_k_feature, min_k_pp_feature, sequence_features, window_table
from gfm_audit.privacy.metrics import tpr_at_fpr
from scipy.stats import norm
from sklearn.metrics import roc_curve


def _table(rows):
    """A scoring table from (sequence_id, window_id, kind, prob, loss, snp_loss, logprobs, means, stds)."""
    cols = ["sequence_id", "window_id", "kind", "prob", "loss", "snp_loss", "token_logprob", "token_mean", "token_std"]
    return pd.DataFrame(rows, columns=cols)


def _window(wid, loss, lp=(-1.0,), mu=(-1.0,), sd=(1.0,), snp_loss=None):
    return (wid, wid, "window", None, loss, snp_loss, list(lp), list(mu), list(sd))


KS = (0.1, 0.2)  # the min-k fractions the tests' feature tables hold
FEATURES = ["n_tokens", "loss", "snp_loss", "zlib_bytes"] + [
    f(k) for k in KS for f in (min_k_feature, min_k_pp_feature)
]


def _window_features(table: pd.DataFrame, seqs) -> pd.DataFrame:
    """The per-window table the workflow would build from these sequences: the map, then the reduce.

    Loss and SNP-site loss are given (as the scoring job measures them); the min-k features come from the
    token arrays through the scoring job's own reduction.
    """
    rows = []
    for r in table.itertuples(index=False):
        lp = np.asarray(r.token_logprob, np.float32)
        stats = np.stack(
            [lp, *(np.broadcast_to(np.asarray(v, np.float32), lp.shape) for v in (r.token_mean, r.token_std))]
        )
        minks = [f for f in FEATURES if f.startswith("min_k")]
        values = sequence_features(stats, np.zeros(stats.shape[1], bool), minks)
        rows.append(
            {
                "sequence_id": r.sequence_id,
                "window_id": r.window_id,
                "kind": r.kind,
                "prob": r.prob,
                "replicate": 0,
                "n_tokens": stats.shape[1],
                "loss": r.loss,
                "snp_loss": r.snp_loss,
                "zlib_bytes": len(zlib.compress(seqs[r.window_id].encode(), 9)) if r.kind == "window" else None,
                **values,
            }
        )
    return window_table(pd.DataFrame(rows)).set_index("window_id").loc[["a", "b"]]


def _data(scores, member=(1, 0), references=(), ref_member=None, params=None, seqs=None):
    seqs = seqs or {"a": "ACGT" * 10, "b": "AAAA" * 10}
    return AttackData(
        target="t",
        window_ids=["a", "b"],
        member=np.array(member),
        features={name: _window_features(table, seqs) for name, table in scores.items()},
        references=list(references),
        ref_member=ref_member or {},
        params=params or {},
    )


def test_each_attack_declares_the_features_it_reads_and_unused_parameters_ask_for_none():
    every = list(registry())
    assert required_features(every, {}) == [
        "dc_pdd_a0.01",
        "gradnorm_parameters",
        "loss",
        "min_k_k0.2",
        "min_k_pp_k0.2",
        "recall_loss_n1_seed0",
        "snp_loss",
        "zlib_bytes",
    ]
    assert required_features(every, {"min_k": {"k": [0.1, 0.5]}}) == [
        "dc_pdd_a0.01",
        "gradnorm_parameters",
        "loss",
        "min_k_k0.1",
        "min_k_k0.5",
        "min_k_pp_k0.1",
        "min_k_pp_k0.5",
        "recall_loss_n1_seed0",
        "snp_loss",
        "zlib_bytes",
    ]
    # min_k.k configured but no min-k attack run: no min-k feature, the scoring jobs are unchanged.
    assert required_features(["loss", "rmia"], {"min_k": {"k": 0.7}}) == required_features(["loss", "rmia"], {})


def test_several_min_k_fractions_give_one_column_each():
    lp = [-0.1, -2.0, -0.5, -3.0, -0.2, -0.4, -0.3, -1.0, -0.6, -0.7]
    t = _table([_window("a", 0.9, lp=lp, mu=[0.0] * 10, sd=[2.0] * 10), _window("b", 1.5, lp=[-1.5] * 10)])
    data = _data({"t": t}, params={"min_k": {"k": [0.1, 0.2]}})
    out = registry()["min_k"].run(data)
    np.testing.assert_allclose(out["min_k_k0.1"], [-3.0, -1.5])
    np.testing.assert_allclose(out["min_k_k0.2"], [-2.5, -1.5])
    assert set(registry()["min_k_plus_plus"].run(data)) == {"min_k_plus_plus_k0.1", "min_k_plus_plus_k0.2"}


def test_registry_has_every_attack_of_the_config_schema():
    assert set(registry()) == {
        "loss",
        "zlib",
        "min_k",
        "min_k_plus_plus",
        "neighborhood",
        "reference",
        "rmia",
        "lira",
        "dc_pdd",
        "recall",
        "gradnorm",
        "ramia",
    }


def test_loss_zlib_and_min_k_by_hand():
    lp_a = [-0.1, -2.0, -0.5, -3.0, -0.2, -0.4, -0.3, -1.0, -0.6, -0.7]  # lowest 20% = -3.0, -2.0
    t = _table([_window("a", 0.88, lp=lp_a, mu=[0.0] * 10, sd=[2.0] * 10), _window("b", 1.5, lp=[-1.5] * 10)])
    data = _data({"t": t})
    attacks = registry()
    assert attacks["loss"].run(data)["loss"].tolist() == [-0.88, -1.5]
    za, zb = len(zlib.compress(b"ACGT" * 10, 9)), len(zlib.compress(b"AAAA" * 10, 9))
    np.testing.assert_allclose(attacks["zlib"].run(data)["zlib"], [-0.88 / za, -1.5 / zb])
    np.testing.assert_allclose(attacks["min_k"].run(data)["min_k"], [-2.5, -1.5])
    data.params = {"min_k": {"k": 0.1}}
    np.testing.assert_allclose(attacks["min_k"].run(data)["min_k"], [-3.0, -1.5])
    # min-k%++: z = (lp - 0) / 2 for a; for b (mu -1, sd 1): z = -0.5; lowest 10%
    np.testing.assert_allclose(attacks["min_k_plus_plus"].run(data)["min_k_plus_plus"], [-1.5, -0.5])


def test_neighborhood_is_mean_neighbor_loss_minus_own_loss_per_kind_and_probability():
    rows = [_window("a", 1.0, snp_loss=2.0), _window("b", 1.0, snp_loss=1.0)]
    for wid, kind, p, loss, snp in [
        ("a", "snp", 0.1, 1.2, 2.5),
        ("a", "snp", 0.1, 1.4, 2.1),
        ("a", "snp", 0.3, 2.0, 3.0),
        ("a", "control", 0.1, 1.1, 2.0),
        ("b", "snp", 0.1, 0.9, 1.0),
        ("b", "snp", 0.3, 0.7, 0.4),
        ("b", "control", 0.1, 1.0, 1.0),
    ]:
        rows.append((f"{wid}{kind}{p}{loss}", wid, kind, p, loss, snp, [], [], []))
    out = registry()["neighborhood"].run(_data({"t": _table(rows)}))
    np.testing.assert_allclose(out["neighborhood_snp_p0.1"], [0.3, -0.1])
    np.testing.assert_allclose(out["neighborhood_snp_p0.3"], [1.0, -0.3])
    np.testing.assert_allclose(out["neighborhood_snp"], [(1.2 + 1.4 + 2.0) / 3 - 1.0, 0.8 - 1.0])
    np.testing.assert_allclose(out["neighborhood_snp_p0.1_snpsites"], [0.3, 0.0])
    np.testing.assert_allclose(out["neighborhood_control"], [0.1, 0.0])


def test_reference_attack_subtracts_target_loss_from_each_reference():
    t = _table([_window("a", 1.0), _window("b", 2.0)])
    base = _table([_window("a", 1.5), _window("b", 2.1)])
    refs = {f"ref_{i}": _table([_window("a", 1.2 + i), _window("b", 2.4)]) for i in range(2)}
    data = _data({"t": t, "base": base, **refs}, references=list(refs), ref_member={r: np.array([0, 1]) for r in refs})
    out = registry()["reference"].run(data)
    np.testing.assert_allclose(out["reference_base"], [0.5, 0.1])
    np.testing.assert_allclose(out["reference_refs"], [0.7, 0.4])
    data.params = {"reference": {"models": ["ref_1"]}}
    assert set(registry()["reference"].run(data)) == {"reference_ref_1", "reference_refs"}


def test_lira_matches_gaussian_likelihood_ratio_by_hand():
    # One window, four references: two IN (stats -1.0, -1.2), two OUT (-2.0, -2.4); per-window variances.
    ref_stat = np.array([[-1.0], [-1.2], [-2.0], [-2.4]])
    ref_in = np.array([[True], [True], [False], [False]])
    out = lira_scores(np.array([-1.1]), ref_stat, ref_in, fixed_variance=False)
    sd_in, sd_out = np.std([-1.0, -1.2], ddof=1), np.std([-2.0, -2.4], ddof=1)
    online = norm.logpdf(-1.1, -1.1, sd_in) - norm.logpdf(-1.1, -2.2, sd_out)
    assert out["lira_online"][0] == pytest.approx(online)
    assert out["lira_offline"][0] == pytest.approx(norm.logcdf((-1.1 + 2.2) / sd_out))


def test_lira_separates_members_when_in_and_out_models_differ():
    rng = np.random.default_rng(0)
    n, k = 200, 8
    ease = rng.normal(0, 1, n)  # how easy each window is, shared by all models
    ref_in = rng.random((k, n)) < 0.5
    ref_stat = ease + 0.5 * ref_in + rng.normal(0, 0.1, (k, n))
    member = rng.random(n) < 0.5
    target = ease + 0.5 * member + rng.normal(0, 0.1, n)
    out = lira_scores(target, ref_stat, ref_in, fixed_variance="auto")
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(member, out["lira_online"]) > 0.97
    assert roc_auc_score(member, out["lira_offline"]) > 0.95
    assert roc_auc_score(member, target) < 0.75  # without calibration the easy windows drown the signal


def _sigmoid(x):
    return 1 / (1 + math.exp(-x))


def test_rmia_score_is_the_share_of_population_beaten_plus_a_tie_break_below_one_step():
    target = np.array([0.5, 0.2, 0.3, 0.1, 0.4])
    refs = np.array([[0.25, 0.2, 0.3, 0.1, 0.2]])
    ref_in = np.zeros_like(refs, dtype=bool)
    population = np.array([False, False, True, True, True])
    # a = 1: P(x) = P_OUT(x); ratios 2, 1, 1, 1, 2; population ratios {1, 1, 2}, mean log ratio ln2 / 3.
    # Ratio 2 beats all three z, mean ln LR = 2 ln2 / 3; ratio 1 beats two, mean ln LR = -ln2 / 3.
    high, low = 1 + _sigmoid(2 * math.log(2) / 3) / 3, 2 / 3 + _sigmoid(-math.log(2) / 3) / 3
    scores = rmia_scores(target, refs, ref_in, population=population, a=1.0, gamma=1.0)
    np.testing.assert_allclose(scores, [high, low, low, low, high])
    # gamma 2: x must beat z by a factor 2, and ln gamma comes off the mean log ratio
    high, low = 2 / 3 + _sigmoid(-math.log(2) / 3) / 3, _sigmoid(-4 * math.log(2) / 3) / 3
    np.testing.assert_allclose(
        rmia_scores(target, refs, ref_in, population=population, a=1.0, gamma=2.0), [high, low, low, low, high]
    )


def test_rmia_ties_at_the_top_are_broken_by_the_likelihood_ratio():
    # One OUT reference with p = 0.1 everywhere and a = 1, so the ratio is p(x|target) / 0.1.
    # Population: 5 windows of ratio 1. Evaluated: 20 members of ratio 3-5, 3 non-members of ratio 2
    # (they too beat every z), 197 non-members of ratio 0.5.
    target = np.r_[[0.1] * 5, np.linspace(0.3, 0.5, 20), [0.2] * 3, [0.05] * 197]
    member = np.r_[np.zeros(5), np.ones(20), np.zeros(200)].astype(int)
    population = np.r_[np.ones(5), np.zeros(220)].astype(bool)
    refs = np.full((1, len(target)), 0.1)
    scores = rmia_scores(target, refs, np.zeros_like(refs, dtype=bool), population=population, a=1.0, gamma=1.0)
    fractions = np.floor(scores * 5) / 5
    assert (fractions[5:28] == 1.0).all() and (fractions[28:] == 0.0).all()  # 23 windows beat all of Z: a tie
    assert ((scores - fractions) < 1 / 5).all()
    fpr, tpr, _ = roc_curve(member[~population], scores[~population])
    # Without the tie-break every threshold that calls a member also calls the 3 non-members (FPR 1.5%):
    # TPR 0 at 1% FPR.
    assert tpr_at_fpr(fpr, tpr, 0.01, n_nonmembers=200) == 1.0
    assert (np.argsort(scores[5:], kind="stable") == np.argsort(target[5:], kind="stable")).all()


def test_rmia_population_is_a_seeded_share_of_non_members_and_gets_no_score():
    nonmember = np.array([i % 2 == 0 for i in range(40)])
    mask = population_mask(nonmember, 0.25, 3)
    assert mask.sum() == 5 and not (mask & ~nonmember).any()
    assert (mask == population_mask(nonmember, 0.25, 3)).all()


def test_attacks_needing_references_are_skipped_with_a_reason_and_the_others_run():
    t = _table([_window("a", 1.0), _window("b", 2.0)])
    table, skipped = run_attacks(_data({"t": t}), ["loss", "rmia", "lira", "reference"])
    assert list(table.columns) == ["window_id", "member", "loss"]
    assert [name for name, _ in skipped] == ["rmia", "lira", "reference"]
    assert all("reference" in reason for _, reason in skipped)


def test_unknown_attack_name_is_refused():
    t = _table([_window("a", 1.0), _window("b", 2.0)])
    with pytest.raises(InputError, match="unknown attack gradient_ascent"):
        run_attacks(_data({"t": t}), ["loss", "gradient_ascent"])


def test_rmia_tuning_skips_windows_without_a_loss_instead_of_failing():
    # A masked model in sampled mode with mask_fraction 0 scores no token of a window without SNP sites: its
    # loss, and so its likelihood under every model, is NaN. Tuning a on the references must leave it out.
    rng = np.random.default_rng(0)
    ref_in = np.stack([rng.random(40) < 0.5 for _ in range(3)])
    ref_lik = np.exp(-rng.normal(1.3, 0.1, size=(3, 40)) + 0.2 * ref_in)
    ref_lik[:, 5] = np.nan
    grid = [0.2, 0.5, 1.0]
    a = tune_a(ref_lik, ref_in, grid=grid, gamma=1.0, fraction=0.5, seed=0)
    clean = tune_a(
        np.delete(ref_lik, 5, axis=1), np.delete(ref_in, 5, axis=1), grid=grid, gamma=1.0, fraction=0.5, seed=0
    )
    assert a in grid and np.isfinite(a)
    assert clean in grid
