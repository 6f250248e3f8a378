"""FIMBA, its ablations, spectral detection and VAE poisoning on gene-expression classifiers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import DEMO
from gfm_audit.errors import InputError
from gfm_audit.robustness.fimba import attack, data, detection, poisoning, sweep, vae

PBMC = DEMO / "pbmc68k_reduced" / "pbmc68k_reduced.h5ad"


def _outputs(paths) -> dict:
    """fimba_model_stage's output arguments for four paths: curve, detection, spectra, model."""
    return dict(zip(("curve_tsv", "detection_tsv", "spectra_npz", "model_file"), paths, strict=True))


def settings(**over) -> dict:
    base = dict(
        data=str(PBMC),
        test_data=None,
        label="bulk_labels",
        positive=["Dendritic"],
        layer="raw",
        test_fraction=0.33,
        seed=0,
        models=["random_forest"],
        top_m=[5, 25, 50],
        p=2,
        n_points=10,
        variants=["fp_fn", "tp_tn"],
        position=8,
        shap_samples=5,
        shap_background=8,
        vae={"latent": 8, "epochs": 30, "n_samples": 50},
    )
    base.update(over)
    return base


@pytest.mark.parametrize("p", [1, 2, 3, np.inf])
def test_kd_tree_endpoint_is_the_true_nearest_under_minkowski_p(p):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 6))
    y = rng.integers(0, 2, size=120)
    pred = np.where(rng.random(120) < 0.3, 1 - y, y)
    for variant in attack.VARIANTS:
        ends = attack.nearest_endpoints(X, pred, y, variant=variant, p=p)
        for i in range(len(X)):
            pool = attack.endpoint_pool(pred, y, target_class=1 - pred[i], variant=variant)
            if variant == "fp_fn":
                assert set(pool) == {j for j in range(120) if pred[j] == 1 - pred[i] and pred[j] != y[j]}
            else:
                assert set(pool) == {j for j in range(120) if pred[j] == 1 - pred[i] and pred[j] == y[j]}
            d = np.abs(X[pool] - X[i])
            dist = d.max(axis=1) if np.isinf(p) else (d**p).sum(axis=1) ** (1 / p)
            assert dist[list(pool).index(ends[i])] == pytest.approx(dist.min(), rel=1e-12)


def test_only_the_top_m_features_change_and_land_on_the_interpolation_point():
    rng = np.random.default_rng(2)
    X, E = rng.uniform(-1, 1, size=(30, 40)), rng.uniform(-1, 1, size=(30, 40))
    importance = rng.random(40)
    for m, n_points, position in ((1, 10, 8), (7, 10, 8), (12, 5, 2)):
        out = attack.perturb("fimba", X, E, importance=importance, m=m, n_points=n_points, position=position, rng=rng)
        top = set(np.argsort(-importance)[:m].tolist())
        changed = set(np.flatnonzero((out != X).any(axis=0)).tolist())
        assert changed == top
        t = position / (n_points - 1)
        cols = sorted(top)
        np.testing.assert_allclose(out[:, cols], (1 - t) * X[:, cols] + t * E[:, cols], rtol=0, atol=1e-12)
        # The point is on the segment: the same fraction t of the way to the endpoint, in every feature.
        np.testing.assert_allclose((out[:, cols] - X[:, cols]) / (E[:, cols] - X[:, cols]), t, atol=1e-9)
    rows = attack.perturb("brute_force", X, E, importance=importance, m=5, n_points=10, position=8, rng=rng)
    assert ((rows != X).any(axis=0)).sum() == 5 and np.abs(rows).max() <= 1


def test_shap_importance_matches_the_closed_form_for_an_additive_model():
    rng = np.random.default_rng(3)
    w = rng.normal(size=8)
    background = rng.normal(size=(6, 8))
    explain = rng.normal(size=(4, 8))

    def predict_proba(X):
        f = X @ w
        return np.stack([1 - f, f], axis=1)

    got = attack.shap_importance(predict_proba, explain, background, seed=0)
    expected = np.abs(w * (explain - background.mean(axis=0))).mean(axis=0)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


def _csv(path, X, y, genes):
    df = pd.DataFrame(X, columns=genes)
    df["label"] = y
    df.to_csv(path, index=False)
    return str(path)


def test_scaling_is_fitted_on_the_training_split_only(tmp_path):
    rng = np.random.default_rng(4)
    genes = [f"g{i}" for i in range(5)]
    X_tr, X_te = rng.normal(size=(40, 5)), rng.normal(size=(20, 5))
    y_tr, y_te = np.arange(40) % 2, np.arange(20) % 2
    X_tr[:, 4] = 3.0  # a constant gene maps to 0
    train = _csv(tmp_path / "train.csv", X_tr, y_tr, genes)
    split = data.make_split(
        settings(
            data=train, test_data=_csv(tmp_path / "t.csv", X_te, y_te, genes), label="label", positive=[], layer="X"
        )
    )
    X_te2 = X_te.copy()
    X_te2[0, 0] = 1e6  # an extreme test value must not move the training scale
    split2 = data.make_split(
        settings(
            data=train, test_data=_csv(tmp_path / "t2.csv", X_te2, y_te, genes), label="label", positive=[], layer="X"
        )
    )
    np.testing.assert_array_equal(split.X_train, split2.X_train)
    np.testing.assert_array_equal(split.low, X_tr.min(axis=0))
    np.testing.assert_array_equal(split.high, X_tr.max(axis=0))
    assert split.X_train[:, :4].min() == -1 and split.X_train[:, :4].max() == 1
    assert (split.X_train[:, 4] == 0).all()
    assert split2.X_test[0, 0] > 1000
    expected = 2 * (X_te[:, :4] - X_tr[:, :4].min(0)) / (X_tr[:, :4].max(0) - X_tr[:, :4].min(0)) - 1
    np.testing.assert_allclose(split.X_test[:, :4], expected, rtol=1e-12)


def test_the_demo_split_is_stratified_and_seeded():
    a, b = data.make_split(settings()), data.make_split(settings())
    np.testing.assert_array_equal(a.X_test, b.X_test)
    assert len(a.y_train) + len(a.y_test) == 700 and a.y_test.sum() == 79
    assert abs(a.y_train.mean() - a.y_test.mean()) < 0.01


def test_spectral_ssim_is_one_for_an_unchanged_matrix_and_falls_with_random_values():
    rng = np.random.default_rng(5)
    X = rng.uniform(-1, 1, size=(60, 80))
    assert detection.spectral_ssim(X, X.copy()) == pytest.approx(1.0)
    noisy = X.copy()
    noisy[:, :40] = rng.uniform(-1, 1, size=(60, 40))
    assert detection.spectral_ssim(X, noisy) < 0.9
    np.testing.assert_allclose(detection.power_spectrum(X)[30, 40], np.log1p(np.abs(X.sum()) ** 2))
    assert np.isnan(detection.spectral_ssim(X[:2], X[:2]))


def test_vae_similarity_of_a_copy_is_perfect_and_poisoning_interpolates():
    rng = np.random.default_rng(6)
    X = rng.uniform(-1, 1, size=(40, 30))
    sim = vae.similarity(X, X.copy())
    assert sim == pytest.approx({"mse": 0.0, "ssim": 1.0, "cosine": 1.0})
    model = vae.train_vae(X, latent=4, epochs=5, seed=0)
    a, _ = vae.poison(model, X[:5], X[5:10], alpha=0.0)
    b, _ = vae.poison(model, X[5:10], X[:5], alpha=1.0)
    np.testing.assert_allclose(a, b, atol=1e-6)  # alpha 0 from x == alpha 1 towards x


@pytest.fixture(scope="module")
def demo_rf(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fimba")
    out = {k: tmp / f"{k}" for k in ("curve.tsv", "det.tsv", "spectra.npz", "model.joblib")}
    sweep.fimba_model_stage("random_forest", settings(), threads=2, **_outputs(out.values()))
    return tmp, out


def test_fimba_lowers_accuracy_more_than_random_features_at_the_same_m_on_the_demo(demo_rf):
    _, out = demo_rf
    curve = pd.read_csv(out["curve.tsv"], sep="\t")
    assert list(curve.columns) == sweep.CURVE_COLUMNS
    main = curve[curve.variant == "fp_fn"].pivot(index="m", columns="method", values="accuracy")
    clean = curve[curve.method == "clean"].accuracy.iloc[0]
    assert clean > 0.85
    assert (main.fimba <= main.random_features).all()
    assert main.fimba.loc[50] < main.random_features.loc[50] - 0.1
    assert main.fimba.loc[50] < clean - 0.1
    assert (curve[curve.method != "clean"].queries > 0).all()


def test_the_same_seed_gives_byte_identical_fimba_tables(demo_rf, tmp_path):
    _, out = demo_rf
    again = {k: tmp_path / k for k in ("curve.tsv", "det.tsv", "spectra.npz", "model.joblib")}
    sweep.fimba_model_stage("random_forest", settings(), threads=2, **_outputs(again.values()))
    for key in ("curve.tsv", "det.tsv"):
        assert again[key].read_bytes() == out[key].read_bytes()
    det = pd.read_csv(again["det.tsv"], sep="\t")
    assert list(det.columns) == detection.DETECTION_COLUMNS
    assert set(det.subset) == {"all", "fp", "fn"} and set(det.method) == {"fimba", "brute_force"}


def test_vae_table_labels_poisoned_samples_with_every_model(demo_rf, tmp_path):
    _, out = demo_rf
    poisoning.vae_stage(settings(), {"random_forest": str(out["model.joblib"])}, tmp_path / "vae.tsv")
    table = pd.read_csv(tmp_path / "vae.tsv", sep="\t")
    assert list(table.columns) == poisoning.VAE_COLUMNS
    row = table.iloc[0]
    assert row.n_samples == 50 and row.ttg_seconds > 0 and 0 < row.cosine <= 1 and row.mse > 0


# --- bad inputs ---------------------------------------------------------------------------------------
def test_nan_or_inf_in_the_matrix_is_refused_naming_sample_and_gene(tmp_path):
    X = np.ones((6, 3))
    X[4, 1] = np.inf
    path = _csv(tmp_path / "m.csv", X, [0, 1] * 3, ["a", "b", "c"])
    with pytest.raises(InputError, match=r"m\.csv: 1 NaN/inf value\(s\), first at sample 5, gene b"):
        data.read_matrix(path, label="label")
    X[4, 1] = np.nan
    with pytest.raises(InputError, match="NaN/inf"):
        data.read_matrix(_csv(tmp_path / "n.csv", X, [0, 1] * 3, ["a", "b", "c"]), label="label")


def test_a_label_with_one_class_only_is_refused(tmp_path):
    with pytest.raises(InputError, match=r"label 'label': the label has one class only"):
        data.read_matrix(_csv(tmp_path / "m.csv", np.ones((6, 3)), [1] * 6, ["a", "b", "c"]), label="label")
    with pytest.raises(InputError, match="one class only"):
        data.read_matrix(
            str(PBMC),
            label="bulk_labels",
            positive=[
                "Dendritic",
                "CD14+ Monocyte",
                "CD19+ B",
                "CD4+/CD25 T Reg",
                "CD8+ Cytotoxic T",
                "CD8+/CD45RA+ Naive Cytotoxic",
                "CD56+ NK",
                "CD4+/CD45RO+ Memory",
                "CD34+",
                "CD4+/CD45RA+/CD25- Naive T",
            ],
        )


def test_a_matrix_in_which_no_gene_varies_stops_naming_the_file_before_any_output(tmp_path):
    import anndata

    y = np.arange(24) % 2
    labels = pd.Categorical(np.where(y == 1, "tumour", "normal"))
    obs = pd.DataFrame({"label": labels}, index=[f"cell{i}" for i in range(24)])
    path = tmp_path / "flat.h5ad"
    anndata.AnnData(np.full((24, 6), 2.5, dtype=np.float32), obs=obs).write_h5ad(path)
    out = [tmp_path / k for k in ("c.tsv", "d.tsv", "s.npz", "m.joblib")]
    cfg = settings(data=str(path), label="label", positive=["tumour"], layer="X", top_m=[1, 2], test_fraction=0.5)
    with pytest.raises(InputError) as err:
        sweep.fimba_model_stage("random_forest", cfg, threads=1, **_outputs(out))
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: no gene varies across the 12 training samples (all 6 genes are constant)")
    assert not any(p.exists() for p in out)
    # Some constant genes among varying ones are fine.
    X = np.random.default_rng(0).normal(size=(24, 6))
    X[:, 1:4] = 2.5
    anndata.AnnData(X.astype(np.float32), obs=obs).write_h5ad(path)
    split = data.make_split(cfg)
    assert (split.X_train[:, 1:4] == 0).all() and split.X_train[:, [0, 4, 5]].std(axis=0).min() > 0


def test_a_matrix_of_fewer_than_five_genes_runs_with_every_m_it_has(tmp_path):
    rng = np.random.default_rng(3)
    genes = ["g0", "g1", "g2", "g3"]
    files = {}
    for name, n in (("train", 30), ("test", 16)):
        y = np.arange(n) % 2
        X = rng.normal(size=(n, 4)) + 1.5 * y[:, None]
        files[name] = _csv(tmp_path / f"{name}.csv", X, y, genes)
    cfg = settings(
        data=files["train"],
        test_data=files["test"],
        label="label",
        positive=[],
        layer="X",
        top_m=[1, 4],
        shap_samples=4,
        shap_background=4,
    )
    out = [tmp_path / k for k in ("c.tsv", "d.tsv", "s.npz", "m.joblib")]
    sweep.fimba_model_stage("random_forest", cfg, threads=1, **_outputs(out))
    curve = pd.read_csv(out[0], sep="\t")
    assert set(curve.loc[curve.method == "fimba", "m"]) == {1, 4}


def test_m_larger_than_the_number_of_features_is_refused_before_any_work(tmp_path):
    out = [tmp_path / k for k in ("c.tsv", "d.tsv", "s.npz", "m.joblib")]
    with pytest.raises(InputError, match=r"top_m: m = 5000 is larger than the number of features \(765\)"):
        sweep.fimba_model_stage("mlp", settings(top_m=[5, 5000]), threads=1, **_outputs(out))
    assert not any(p.exists() for p in out)


def test_gene_names_differing_between_train_and_test_files_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    train = _csv(tmp_path / "train.csv", rng.normal(size=(8, 3)), [0, 1] * 4, ["TP53", "CD4", "MS4A1"])
    test = _csv(tmp_path / "test.csv", rng.normal(size=(8, 3)), [0, 1] * 4, ["TP53", "CD8A", "MS4A1"])
    with pytest.raises(InputError, match=r"gene names differ .*1 gene\(s\) only in .*train\.csv \(e\.g\. CD4\)"):
        data.make_split(settings(data=train, test_data=test, label="label", positive=[], layer="X"))


def test_an_h5ad_without_the_configured_obs_key_is_refused():
    with pytest.raises(InputError, match=r"obs has no key 'cell_type' .*obs keys are: bulk_labels"):
        data.read_matrix(str(PBMC), label="cell_type", positive=["Dendritic"], layer="raw")


# --- missing labels -----------------------------------------------------------------------------------
def _pbmc_with_unlabelled_cells(path, as_text: bool) -> tuple[str, list[str]]:
    """The demo with 60 cells' labels removed, 19 of them Dendritic (the positive class)."""
    import anndata

    adata = anndata.read_h5ad(PBMC)
    labels = adata.obs["bulk_labels"].astype(object)
    dendritic = np.flatnonzero(labels == "Dendritic")[:19]
    other = np.flatnonzero(labels != "Dendritic")[:41]
    gone = np.sort(np.concatenate([dendritic, other]))
    labels.iloc[gone] = np.nan
    # A column made text upstream carries the missing value as the string 'nan'.
    adata.obs["bulk_labels"] = labels.astype(str) if as_text else pd.Categorical(labels)
    adata.write_h5ad(path)
    return str(path), [str(adata.obs_names[i]) for i in gone]


@pytest.mark.parametrize("as_text", [False, True], ids=["nan", "text-nan"])
def test_unlabelled_cells_in_h5ad_obs_stop_the_run_instead_of_becoming_negatives(tmp_path, as_text):
    path, gone = _pbmc_with_unlabelled_cells(tmp_path / "pbmc.h5ad", as_text)
    with pytest.raises(InputError) as err:
        data.read_matrix(path, label="bulk_labels", positive=["Dendritic"], layer="raw")
    message = str(err.value)
    assert "\n" not in message and message.startswith(
        f"{path}: 60 of 700 sample(s) have no value in label 'bulk_labels'"
    )
    assert f"first obs name(s) {', '.join(gone[:5])}, ..." in message
    assert "robustness.fimba.missing_labels: drop" in message


def test_empty_label_cells_in_a_csv_stop_the_run_naming_the_data_rows(tmp_path):
    labels = ["tumour", "normal", "", "tumour", "normal", "", "tumour", "normal"]
    path = tmp_path / "m.csv"
    df = pd.DataFrame(np.arange(24.0).reshape(8, 3), columns=["a", "b", "c"])
    df["label"] = labels
    df.to_csv(path, index=False)
    expected = r"m\.csv: 2 of 8 sample\(s\) have no value in label 'label' \(empty cell, NaN or None\), first data "
    with pytest.raises(InputError, match=expected + r"row\(s\) 3, 6; .*robustness\.fimba\.missing_labels: drop"):
        data.read_matrix(str(path), label="label", positive=["tumour"])


def test_missing_labels_drop_leaves_the_unlabelled_samples_out_and_logs_how_many(tmp_path, caplog):
    path, gone = _pbmc_with_unlabelled_cells(tmp_path / "pbmc.h5ad", as_text=False)
    with caplog.at_level("WARNING"):
        m = data.read_matrix(path, label="bulk_labels", positive=["Dendritic"], layer="raw", missing_labels="drop")
    assert len(m.y) == 640 == m.X.shape[0] and m.y.sum() == 240 - 19
    assert not set(gone) & set(m.sample_ids)
    assert "dropped 60 of 700 sample(s) with no value in label 'bulk_labels'" in caplog.text
    split = data.make_split(settings(data=path, missing_labels="drop"))
    assert len(split.y_train) + len(split.y_test) == 640
    # 0/1 labels with empty cells are read as floats; once those rows are gone they are 0/1 again.
    path = _csv(tmp_path / "m.csv", np.arange(24.0).reshape(8, 3), [0, 1, None, 0, 1, 0, None, 1], ["a", "b", "c"])
    m = data.read_matrix(path, label="label", missing_labels="drop")
    assert m.y.tolist() == [0, 1, 0, 1, 0, 1] and m.sample_ids == ["1", "2", "4", "5", "6", "8"]


# --- fp_fn without endpoints ---------------------------------------------------------------------------
def _separable(tmp_path) -> dict:
    """Train and test CSVs that gene g0 separates with a wide margin: a random forest makes no test error."""
    rng = np.random.default_rng(7)
    genes = [f"g{i}" for i in range(6)]
    files = {}
    for name, n in (("train", 40), ("test", 20)):
        y = np.arange(n) % 2
        X = rng.normal(size=(n, 6))
        X[:, 0] = 4.0 * (2 * y - 1) + 0.1 * rng.normal(size=n)
        files[name] = _csv(tmp_path / f"{name}.csv", X, y, genes)
    return settings(
        data=files["train"],
        test_data=files["test"],
        label="label",
        positive=[],
        layer="X",
        top_m=[1, 3],
        shap_samples=4,
        shap_background=4,
    )


def _run_stage(tmp_path, cfg) -> dict:
    out = {k: tmp_path / k for k in ("curve.tsv", "det.tsv", "spectra.npz", "model.joblib")}
    sweep.fimba_model_stage("random_forest", cfg, threads=1, **_outputs(out.values()))
    return out


def test_fp_fn_without_endpoints_is_reported_as_not_tried_rather_than_as_a_failed_attack(tmp_path, caplog):
    from gfm_audit.robustness.fimba import plots, report

    cfg = _separable(tmp_path)
    with caplog.at_level("WARNING"):
        out = _run_stage(tmp_path, cfg)
    assert "random_forest: fp_fn has no endpoint for any of the 20 test samples (0 misclassified)" in caplog.text
    assert "no_endpoints: fall_back_to_tp_tn" in caplog.text
    curve = pd.read_csv(out["curve.tsv"], sep="\t")
    assert list(curve.columns) == sweep.CURVE_COLUMNS and sweep.CURVE_COLUMNS[-1] == "status"
    assert curve[curve.method == "clean"].accuracy.iloc[0] == 1.0
    fp_fn = curve[curve.variant == "fp_fn"].set_index(["method", "m"])
    not_tried = fp_fn.loc[["fimba", "random_features"]]
    assert (not_tried.status == "no_endpoints").all()
    assert not_tried[["accuracy", "fp", "fn", "flip_rate", "queries"]].isna().all().all()
    # The ablations that need no endpoint, and the other variant, are real measurements.
    assert (fp_fn.loc[["shap_uniform", "brute_force"]].status == "ok").all()
    assert (curve[curve.variant == "tp_tn"].status == "ok").all()
    assert curve[curve.variant == "tp_tn"].accuracy.notna().all()
    det = pd.read_csv(out["det.tsv"], sep="\t")
    assert list(det.columns) == detection.DETECTION_COLUMNS
    gone = det[(det.variant == "fp_fn") & (det.method == "fimba")]
    assert (gone.status == "no_endpoints").all() and gone.ssim.isna().all() and (gone.n_samples == 0).all()
    with np.load(out["spectra.npz"]) as spectra:
        assert "fimba" not in spectra and "brute_force" in spectra
    plots.curve_figure(curve, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"
    poisoning.vae_stage(cfg, {"random_forest": str(out["model.joblib"])}, tmp_path / "vae.tsv")
    vae_table = pd.read_csv(tmp_path / "vae.tsv", sep="\t")
    assert vae_table.n_samples.tolist() == [0] and vae_table.ssim.isna().all()
    detection.merge_detection_stage([str(out["det.tsv"])], tmp_path / "detection.tsv")
    section = report.fimba_section(
        ["random_forest"],
        curve_paths={"random_forest": str(out["curve.tsv"])},
        detection_path=str(tmp_path / "detection.tsv"),
        vae_path=str(tmp_path / "vae.tsv"),
        figures={},
    )
    assert "<b>Not tried:</b> random_forest" in section and "<td>no_endpoints</td>" in section
    assert "<td>not tried</td>" in section


def test_no_endpoints_fall_back_to_tp_tn_runs_fp_fn_towards_tp_tn_endpoints_and_says_so(tmp_path, caplog):
    cfg = _separable(tmp_path)
    with caplog.at_level("WARNING"):
        out = _run_stage(tmp_path, {**cfg, "no_endpoints": "fall_back_to_tp_tn"})
    assert "random_forest: fp_fn has no endpoint" in caplog.text and "tp_tn endpoints instead" in caplog.text
    curve = pd.read_csv(out["curve.tsv"], sep="\t")
    fp_fn = curve[curve.variant == "fp_fn"].set_index(["method", "m"])
    tp_tn = curve[curve.variant == "tp_tn"].set_index(["method", "m"])
    assert (fp_fn.loc[["fimba", "random_features"]].status == "fallback_tp_tn").all()
    assert (fp_fn.loc[["shap_uniform", "brute_force"]].status == "ok").all()
    # FIMBA's genes are the SHAP ones in both variants, so with the same endpoints the rows agree.
    pd.testing.assert_frame_equal(
        fp_fn.loc["fimba"].drop(columns=["variant", "status"]), tp_tn.loc["fimba"].drop(columns=["variant", "status"])
    )
    assert (fp_fn.loc["fimba"].accuracy < 1).any()
    det = pd.read_csv(out["det.tsv"], sep="\t")
    moved = det[(det.variant == "fp_fn") & (det.method == "fimba")]
    assert (moved.status == "fallback_tp_tn").all() and moved.ssim.notna().any()
    # Without the fallback, or with endpoints, the key changes nothing.
    assert (tp_tn.status == "ok").all()
