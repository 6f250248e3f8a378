"""FIMBA beside ART's ZOO, HopSkipJump, FGSM and Auto-PGD at FIMBA's L2 budgets (robustness/fimba/comparison.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from gfm_audit.robustness.fimba import comparison
from gfm_audit.robustness.fimba.classifiers import CNN1D, GeneViT, ResNet1D, TorchTabular

N_FEATURES = 12
SETTINGS = {
    "variants": ["fp_fn", "tp_tn"],
    "p": 2,
    "n_points": 10,
    "position": 8,
    "top_m": [1, 3],
    "comparison": {
        "attacks": list(comparison.ATTACKS),
        "samples": 20,
        "zoo": {"max_iter": 20, "learning_rate": 0.1, "initial_const": 10.0, "nb_parallel": 12},
        "hopskipjump": {"max_iter": 5, "max_eval": 200, "init_eval": 20},
        "auto_pgd": {"max_iter": 20},
    },
}


class Threshold(TorchTabular):
    """A torch network whose decision is known in closed form: class 1 iff feature 0 > 0, logits ±3 x_0 (not
    saturated: ZOO estimates gradients by finite differences of probabilities).

    The L2 distance from x to the decision boundary is |x_0|, so no perturbation smaller than |x_0| can flip x,
    and a step of |x_0| + a little along -sign(x_0) e_0 always does.
    """

    def __init__(self):
        import torch

        super().__init__(seed=0)
        self.net = torch.nn.Linear(N_FEATURES, 2)
        with torch.no_grad():
            self.net.weight.zero_()
            self.net.bias.zero_()
            self.net.weight[0, 0], self.net.weight[1, 0] = -3.0, 3.0
        self.net.eval()


@pytest.fixture(scope="module")
def toy():
    """Samples with |x_0| in [0.5, 1] (a margin of 0.5) and the other features uniform in [-1, 1]."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(40, N_FEATURES))
    X[:, 0] = rng.choice([-1.0, 1.0], size=40) * rng.uniform(0.5, 1.0, size=40)
    y = (X[:, 0] > 0).astype(int)
    return Threshold(), X, y


def test_projection_pulls_rows_onto_the_l2_ball_and_leaves_rows_inside_it_alone():
    X = np.zeros((2, 2))
    adv = np.array([[3.0, 4.0], [0.3, 0.4]])
    out = comparison.project_l2(X, adv, 2.5)
    np.testing.assert_allclose(out, [[1.5, 2.0], [0.3, 0.4]])
    d = comparison.distances(X, out)
    np.testing.assert_allclose(d["l2"], [2.5, 0.5])
    np.testing.assert_allclose(d["linf"], [2.0, 0.4])
    assert d["n_changed"].tolist() == [2, 2]


@pytest.mark.parametrize("attack", comparison.ATTACKS)
def test_no_attack_flips_a_sample_when_the_budget_is_below_the_margin(toy, attack):
    clf, X, _ = toy
    X = X[:15]
    clean = clf.predict_proba(X).argmax(axis=1)
    if attack in comparison.WHITE_BOX:
        adv, _ = comparison.white_box(attack, clf, X, budget=0.45, settings=SETTINGS["comparison"], seed=0)
    else:
        adv, _ = comparison.unbounded_black_box(attack, clf, X, settings=SETTINGS["comparison"], seed=0)
        adv = comparison.project_l2(X, adv, 0.45)
    assert comparison.distances(X, adv)["l2"].max() <= 0.45 + 1e-9
    assert (clf.predict_proba(adv).argmax(axis=1) == clean).all()


@pytest.mark.parametrize("attack", comparison.WHITE_BOX)
def test_white_box_attacks_flip_every_sample_when_the_budget_exceeds_every_distance_to_the_boundary(toy, attack):
    clf, X, _ = toy
    adv, queries = comparison.white_box(attack, clf, X, budget=1.2, settings=SETTINGS["comparison"], seed=0)
    assert (clf.predict_proba(adv).argmax(axis=1) != clf.predict_proba(X).argmax(axis=1)).all()
    assert comparison.distances(X, adv)["l2"].max() <= 1.2 + 1e-9
    assert queries >= len(X)  # at least one forward pass per sample, counted through the network


@pytest.mark.parametrize("attack", ["zoo", "hopskipjump"])
def test_black_box_attacks_find_flips_within_a_budget_that_allows_them_and_count_their_queries(toy, attack):
    clf, X, _ = toy
    adv, queries = comparison.unbounded_black_box(attack, clf, X, settings=SETTINGS["comparison"], seed=0)
    adv = comparison.project_l2(X, adv, 1.2)
    flips = clf.predict_proba(adv).argmax(axis=1) != clf.predict_proba(X).argmax(axis=1)
    assert flips.mean() >= 0.5
    assert queries > len(X)


def test_every_row_stays_within_its_budget_and_fimba_spends_exactly_its_own(toy):
    clf, X, y = toy
    rows = pd.DataFrame(
        comparison.comparison_rows(
            "threshold",
            clf,
            X=X[:20],
            y=y[:20],
            pool_pred=clf.predict_proba(X).argmax(axis=1),
            pool_X=X,
            pool_y=y,
            importance=np.r_[1.0, np.zeros(N_FEATURES - 1)],
            shap_queries=100,
            settings=SETTINGS,
            attacks=comparison.ATTACKS,
            seed=0,
        ),
        columns=comparison.COLUMNS,
    )
    assert set(rows.attack) == {"clean", "fimba", *comparison.ATTACKS}
    assert (rows.l2_max <= rows.budget * (1 + 1e-9)).all()
    fimba = rows[rows.attack == "fimba"]
    np.testing.assert_allclose(fimba.l2_max, fimba.budget)
    # The classifier makes no error, so FIMBA moves towards tp_tn endpoints: at m=1 only feature 0 changes.
    assert fimba[fimba.m == 1].n_features_changed.iloc[0] <= 1.0
    assert (fimba.queries == 100 + len(X) + 20).all()


def test_white_box_attacks_are_skipped_on_a_classifier_without_gradients(toy):
    from sklearn.linear_model import LogisticRegression

    _, X, y = toy
    clf = LogisticRegression().fit(X, y)
    rows = comparison.comparison_rows(
        "logistic",
        clf,
        X=X[:10],
        y=y[:10],
        pool_pred=clf.predict(X),
        pool_X=X,
        pool_y=y,
        importance=np.r_[1.0, np.zeros(N_FEATURES - 1)],
        shap_queries=0,
        settings={**SETTINGS, "comparison": {**SETTINGS["comparison"], "attacks": ["fgsm", "auto_pgd"]}},
        attacks=["fgsm", "auto_pgd"],
        seed=0,
    )
    assert {r["attack"] for r in rows} == {"clean", "fimba"}


def test_the_same_seed_gives_identical_rows(toy):
    clf, X, _ = toy
    a = comparison.unbounded_black_box("hopskipjump", clf, X[:8], settings=SETTINGS["comparison"], seed=3)
    b = comparison.unbounded_black_box("hopskipjump", clf, X[:8], settings=SETTINGS["comparison"], seed=3)
    assert a[1] == b[1]
    np.testing.assert_array_equal(a[0], b[0])


@pytest.mark.parametrize("cls", [CNN1D, ResNet1D, GeneViT])
def test_torch_classifiers_learn_a_separable_task_and_give_probabilities(toy, cls):
    _, X, y = toy
    clf = cls(seed=0, epochs=30).fit(X.repeat(5, axis=0), y.repeat(5))
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert (proba.argmax(axis=1) == y).mean() >= 0.9


@pytest.mark.parametrize("cls", [CNN1D, ResNet1D, GeneViT])
def test_trained_torch_classifiers_pickle_and_predict_the_same_after_loading(toy, cls, tmp_path):
    import joblib

    _, X, y = toy
    clf = cls(seed=0, epochs=1).fit(X, y)
    joblib.dump({"model": clf}, tmp_path / "model.joblib")
    import torch

    before = torch.random.get_rng_state()
    again = joblib.load(tmp_path / "model.joblib")["model"]
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    # Loading a model leaves the process's random stream where it was.
    assert torch.equal(torch.random.get_rng_state(), before)


@pytest.mark.parametrize("cls", [CNN1D, ResNet1D, GeneViT])
def test_the_same_trained_torch_classifier_pickles_to_the_same_bytes(toy, cls):
    import io

    import joblib

    _, X, y = toy

    def dumped() -> bytes:
        # Two trainings from the same seed: the same weights in two different tensors (other memory addresses).
        buffer = io.BytesIO()
        joblib.dump({"model": cls(seed=0, epochs=1).fit(X, y)}, buffer)
        return buffer.getvalue()

    assert dumped() == dumped()
