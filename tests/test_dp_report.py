"""The report's DP audit section: a hand-made dp.json and metrics.tsv (and one-run table), consistent and violating,
the numbers of the verdict sentence checked by hand; and no section at all for a model trained without DP."""

import html
import json

import pandas as pd
import pytest
from gfm_audit.errors import InputError
from gfm_audit.privacy.dp_report import dp_audit_section
from gfm_audit.report import layout as report_layout
from gfm_audit.report.build import _dp_audit

CONFIG = {"attacks": {"metrics": {"delta": 1e-5, "confidence": 0.95}}}
RECORD = {
    "epsilon": 1.0,
    "delta": 1e-5,
    "requested_epsilon": 1.0,
    "accountant": "rdp",
    "noise_multiplier": 2.3125,
    "noise_multiplier_used": 2.3125,
    "max_grad_norm": 1.0,
    "sample_rate": 0.25,
    "steps": 160,
    "epochs": 40,
    "n_sequences": 16,
}


def _inputs(tmp_path, eps_by_attack, *, record=RECORD, one_run=None):
    folder = tmp_path / "models" / "target"
    folder.mkdir(parents=True)
    (folder / "dp.json").write_text(json.dumps(record))
    metrics = tmp_path / "metrics.tsv"
    pd.DataFrame({"attack": list(eps_by_attack), "auc": 0.5, "eps_lower_bound": list(eps_by_attack.values())}).to_csv(
        metrics, sep="\t", index=False
    )
    paths = {"folder": folder, "metrics_path": metrics}
    if one_run is not None:
        paths["one_run_path"] = tmp_path / "one_run.tsv"
        pd.DataFrame([one_run]).to_csv(paths["one_run_path"], sep="\t", index=False)
    return paths


def test_bounds_below_the_claim_are_consistent_with_it(tmp_path):
    page, verdict = dp_audit_section("target", config=CONFIG, **_inputs(tmp_path, {"loss": 0.4213, "zlib": 0.1}))
    assert verdict.violated == ()
    sentence = (
        "Claimed (eps = 1.00, delta = 1e-05); empirical lower bounds at 95% confidence: Clopper-Pearson bound of loss "
        "0.42, Clopper-Pearson bound of zlib 0.10. Consistent with the claimed guarantee."
    )
    assert f"<div class='verdict clean'><b>target:</b> {sentence}</div>" in page
    assert "<h2>DP audit of target</h2>" in page
    # The claim: epsilon, delta, accountant, sigma; each bound with its delta and confidence.
    for row in ("epsilon (achieved, as the accountant computed it)</td><td>1", "delta</td><td>1e-05", "rdp", "2.312"):
        assert row in page
    assert (
        "<td>Clopper-Pearson bound of loss</td><td>1e-05</td><td>95%</td><td>0.42</td><td>at or below it</td>" in page
    )
    assert "No one-run canary bound was computed for this model." in page


def test_a_clopper_pearson_bound_above_the_claim_is_a_violation(tmp_path):
    page, verdict = dp_audit_section("target", config=CONFIG, **_inputs(tmp_path, {"loss": 1.49, "zlib": 0.7}))
    assert verdict.violated == ("Clopper-Pearson bound of loss",)
    sentence = (
        "Claimed (eps = 1.00, delta = 1e-05); empirical lower bounds at 95% confidence: Clopper-Pearson bound of loss "
        "1.49, Clopper-Pearson bound of zlib 0.70. The Clopper-Pearson bound of loss exceeds the claim: it is "
        "violated, the DP implementation or accounting is wrong."
    )
    assert f"<div class='verdict leaks'><b>target:</b> {sentence}</div>" in page
    assert "<td>1.49</td><td>above it</td>" in page and "<td>0.70</td><td>at or below it</td>" in page


def test_the_one_run_canary_bound_is_taken_from_its_table_when_given(tmp_path):
    # The injected-fault run of test_dp_audit: 38 of 40 guesses right among 200 canaries, bound 1.74 > eps = 1.
    one_run = {
        "bound": "one_run",
        "canaries": 200,
        "guesses": 40,
        "correct": 38,
        "delta": 1e-5,
        "level": 0.95,
        "eps_lower_bound": 1.7412,
    }
    page, verdict = dp_audit_section("target", config=CONFIG, **_inputs(tmp_path, {"loss": 0.2}, one_run=one_run))
    assert verdict.violated == ("one_run",)
    sentence = (
        "Claimed (eps = 1.00, delta = 1e-05); empirical lower bounds at 95% confidence: one-run canary bound 1.74, "
        "Clopper-Pearson bound of loss 0.20. The one-run canary bound exceeds the claim: it is violated, the DP "
        "implementation or accounting is wrong."
    )
    assert sentence in page
    assert (
        "<td>one-run canary bound (38 of 40 guesses right, m = 200)</td><td>1e-05</td><td>95%</td><td>1.74</td>" in page
    )
    assert "No one-run canary bound" not in page


def test_many_attack_bounds_are_summed_up_in_the_sentence_by_their_largest(tmp_path):
    bounds = {"loss": 0.1, "zlib": 0.3, "rmia": 0.3, "lira_offline": 1.2}
    page, verdict = dp_audit_section("target", config=CONFIG, **_inputs(tmp_path, bounds))
    assert verdict.violated == ("Clopper-Pearson bound of lira_offline",)
    sentence = (
        "Claimed (eps = 1.00, delta = 1e-05); empirical lower bounds at 95% confidence: the largest of 4 "
        "Clopper-Pearson bounds of the membership attacks (lira_offline) 1.20. The Clopper-Pearson bound of "
        "lira_offline exceeds the claim"
    )
    assert sentence in page
    # Every bound is still in the table below it.
    assert all(f"<td>Clopper-Pearson bound of {a}</td>" in page for a in bounds)


def test_the_gaussian_dp_bound_is_shown_but_never_held_against_the_claim(tmp_path):
    # A Gaussian-DP bound above the claim (eps 1): it rules out only Gaussian privacy curves, not the claim.
    rows = pd.DataFrame(
        [
            {
                "bound": "one_run",
                "canaries": 1000,
                "guesses": 100,
                "correct": 60,
                "delta": 1e-5,
                "level": 0.95,
                "eps_lower_bound": 0.05,
            },
            {
                "bound": "one_run_gdp",
                "canaries": 1000,
                "guesses": 100,
                "correct": 90,
                "delta": 1e-5,
                "level": 0.95,
                "eps_lower_bound": 2.46,
            },
        ]
    )
    paths = _inputs(tmp_path, {"loss": 0.2})
    paths["one_run_path"] = tmp_path / "one_run.tsv"
    rows.to_csv(paths["one_run_path"], sep="\t", index=False)
    page, verdict = dp_audit_section("target", config=CONFIG, **paths)
    assert verdict.violated == () and set(verdict.bounds) == {"one_run", "Clopper-Pearson bound of loss"}
    assert "Consistent with the claimed guarantee" in page
    assert (
        "<td>one-run Gaussian-DP bound (90 of 100 guesses right, m = 1000)</td><td>1e-05</td><td>95%</td><td>2.46</td>"
        "<td>no: assumes a Gaussian privacy curve</td>" in page
    )


def test_a_bound_at_a_delta_below_the_claims_is_shown_but_not_compared(tmp_path):
    # At delta = 1e-7 < 1e-5 a bound may exceed a true claim: 2.0 > 1 is no violation.
    config = {"attacks": {"metrics": {"delta": 1e-7, "confidence": 0.95}}}
    page, verdict = dp_audit_section("target", config=config, **_inputs(tmp_path, {"loss": 2.0}))
    assert verdict is None
    assert "the DP claim is not checked" in page and "violated" not in page
    assert f"<td>2.00</td><td>{html.escape('no: δ below the claim' + chr(39) + 's')}</td>" in page


def test_an_unbounded_claim_is_shown_as_infinite_and_never_violated(tmp_path):
    record = {**RECORD, "epsilon": None}
    page, verdict = dp_audit_section("target", config=CONFIG, **_inputs(tmp_path, {"loss": 5.0}, record=record))
    assert verdict.violated == () and "eps = inf" in page
    assert html.escape("∞ (the accountant found no finite ε)") in page


def test_a_folder_without_dp_json_stops_with_one_line(tmp_path):
    paths = _inputs(tmp_path, {"loss": 0.1})
    (paths["folder"] / "dp.json").unlink()
    with pytest.raises(InputError, match="no dp.json in .* trained with membership.training.dp"):
        dp_audit_section("target", config=CONFIG, **paths)


def test_the_report_has_a_dp_section_only_for_the_models_whose_folder_the_rule_asks_for(tmp_path):
    paths = _inputs(tmp_path, {"loss": 0.1})
    key = report_layout.input_key
    inputs = {key("metrics", "target"): str(paths["metrics_path"]), key("metrics", "m"): str(paths["metrics_path"])}
    assert _dp_audit(inputs, CONFIG) == []
    sections = _dp_audit({**inputs, key("dp_model", "target"): str(paths["folder"])}, CONFIG)
    assert len(sections) == 1 and sections[0].startswith("<h2>DP audit of target</h2>")
    # The rule's keys: the folder of each DP-trained model, and the one-run table where one is written.
    wanted = report_layout.report_inputs({"dp_audit": ["target"], "one_run": []})
    assert wanted == {"dp_model__target": "results/models/target"}
    assert report_layout.report_inputs({"dp_audit": [], "one_run": []}) == {}
    assert report_layout.names_in({**inputs, "dp_model__target": "x", "membership": "y"}, "dp_model") == ["target"]
