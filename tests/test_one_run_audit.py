"""The one-run canary audit: canaries inserted by a fair coin, the guesses, the bound, and the settings it refuses."""

import math

import numpy as np
import pandas as pd
import pytest
from gfm_audit.config import validate_config
from gfm_audit.errors import InputError
from gfm_audit.privacy.memorisation.canaries import random_canaries, training_copies
from gfm_audit.privacy.memorisation.one_run import (
    COLUMNS,
    ceiling,
    check_canaries,
    guess_counts,
    needed_canaries,
    one_run_audit,
)
from gfm_audit.privacy.one_run_bound import one_run_epsilon
from gfm_audit.privacy.one_run_fdp import gaussian_one_run_mu, gdp_to_epsilon


def _closed_form_all_correct(r: int, alpha: float) -> float:
    """delta = 0, r guesses all right: P[Binomial(r, q) >= r] = q^r = alpha, so q = alpha^(1/r), eps = logit(q)."""
    q = alpha ** (1 / r)
    return math.log(q / (1 - q))


def test_default_guess_counts_are_a_tenth_a_quarter_a_half_and_all_of_the_canaries():
    assert guess_counts(1000) == [100, 250, 500, 1000]
    assert guess_counts(14) == [2, 4, 8, 14]  # 1.4 -> at least 2; 3.5 -> 4; 7 -> 8 (even)
    assert guess_counts(1) == [1]
    assert guess_counts(1000, [300, 50]) == [50, 300]


def test_guess_counts_beyond_the_canaries_are_refused_naming_the_setting():
    with pytest.raises(InputError, match=r"memorisation\.canaries\.guesses \[2000\] must lie within 1 \.\. n \(1000\)"):
        guess_counts(1000, [2000])


def test_the_ceiling_is_the_closed_form_of_all_correct_guesses_at_the_bonferroni_level():
    counts = guess_counts(200)
    alpha = 0.05 / len(counts)  # four counts tried: each at 1 - 0.05/4
    expected = max(_closed_form_all_correct(r, alpha) for r in counts)
    assert ceiling(200, delta=0.0, level=0.95, counts=counts) == pytest.approx(expected, abs=1e-8)
    # More guesses, all right, can only help: the largest count gives the ceiling.
    assert expected == pytest.approx(_closed_form_all_correct(200, alpha))


def test_needed_canaries_is_the_first_count_whose_ceiling_reaches_the_target():
    # By hand at delta = 0: q = e/(1+e) = 0.7311; 14 canaries (counts 2, 4, 8, 14: alpha/4 = 0.0125) give
    # q^14 = 0.01245 < 0.0125, so eps 1 is reachable; 13 give q^13 = 0.0170, not.
    assert needed_canaries(1.0, delta=0.0, level=0.95) == 14
    for target, delta in [(1.0, 1e-5), (3.0, 1e-5), (0.5, 1e-3)]:
        m = needed_canaries(target, delta=delta, level=0.95)
        assert ceiling(m, delta=delta, level=0.95, counts=guess_counts(m)) >= target
        assert ceiling(m - 1, delta=delta, level=0.95, counts=guess_counts(m - 1)) < target


def test_too_few_canaries_are_refused_in_one_line_saying_how_many_are_needed():
    with pytest.raises(InputError) as err:
        check_canaries(10, target=1.0, delta=1e-5, level=0.95, guesses=None)
    message = str(err.value)
    assert "\n" not in message and "memorisation.canaries.n = 10" in message
    assert f"at least {needed_canaries(1.0, delta=1e-5, level=0.95)}" in message
    check_canaries(1000, target=1.0, delta=1e-5, level=0.95, guesses=None)  # enough: no error


def test_perfectly_separated_canaries_give_every_guess_right_and_stay_below_the_ceiling():
    included = np.random.default_rng(0).random(200) < 0.5
    table = one_run_audit(np.where(included, 1.0, -1.0), included, delta=1e-5, level=0.95)
    row = table.iloc[0]
    assert list(table.columns) == list(COLUMNS) and table.bound.tolist() == ["one_run", "one_run_gdp"]
    assert row.included == included.sum() != 100
    # Half the guesses are "in": with other than 100 of 200 included, all 200 cannot be right, 100 can.
    assert row.correct == row.guesses == 100
    assert row.eps_lower_bound == pytest.approx(one_run_epsilon(200, 100, 100, delta=1e-5, level=1 - 0.05 / 4))
    assert row.eps_lower_bound < row.ceiling
    gaussian = table.iloc[1]
    mu = gaussian_one_run_mu(200, 100, 100, level=1 - 0.05 / 4)
    assert (gaussian.guesses, gaussian.correct) == (100, 100) and gaussian.mu_lower_bound == pytest.approx(mu)
    assert gaussian.eps_lower_bound == pytest.approx(gdp_to_epsilon(mu, 1e-5))
    # Ruling out only Gaussian curves, it goes further than the bound for every (eps, delta)-DP training.
    assert row.eps_lower_bound < gaussian.eps_lower_bound <= gaussian.ceiling


def test_scores_that_ignore_inclusion_give_no_evidence():
    rng = np.random.default_rng(1)
    included = rng.random(1000) < 0.5
    tables = [one_run_audit(rng.normal(size=1000), included, delta=1e-5, level=0.95) for _ in range(20)]
    # At 95% (Bonferroni over 4 counts), a chance score rules out eps > 0 in at most 5% of draws, for each of the
    # two bounds: about 1 of 20 (more than 3 has probability below 2% under the bounds' own guarantee).
    for i in (0, 1):
        assert sum(t.eps_lower_bound.iloc[i] > 0 for t in tables) <= 3


def test_the_reported_bound_is_the_best_count_at_the_corrected_level_by_hand():
    # 8 canaries; lowest loss = highest score first. Counts 2, 4 (given): the 1 + 1 extremes right, then
    # the 2 + 2 extremes with one wrong.
    included = np.array([True, True, False, True, False, False, True, False])
    scores = np.array([8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0])
    table = one_run_audit(scores, included, delta=0.0, level=0.9, guesses=[2, 4])
    by_count = {2: one_run_epsilon(8, 2, 2, delta=0.0, level=0.95), 4: one_run_epsilon(8, 4, 3, delta=0.0, level=0.95)}
    best = max(by_count, key=by_count.get)
    row = table.iloc[0]
    assert (row.guesses, row.correct) == (best, 2 if best == 2 else 3)
    assert row.eps_lower_bound == pytest.approx(by_count[best])
    assert row.guess_counts == "2,4"


def test_bernoulli_canaries_are_n_in_all_each_in_by_a_seeded_coin():
    canaries = random_canaries(400, 16, repeats=[1], seed=3, inclusion="bernoulli")
    again = random_canaries(400, 16, repeats=[1], seed=3, inclusion="bernoulli")
    other = random_canaries(400, 16, repeats=[1], seed=4, inclusion="bernoulli")
    assert canaries == again and canaries != other
    inserted = [c for c in canaries if c.group == "inserted"]
    assert len(canaries) == 400 and {c.repeats for c in inserted} == {1}
    # A fair coin: 400 draws give 200 +- 2 sd (10) in 95% of seeds; this seed's count is fixed.
    assert 170 <= len(inserted) <= 230
    assert {c.repeats for c in canaries if c.group == "reference"} == {0}
    # The target trains on exactly the inserted ones, once each.
    assert training_copies(canaries) == [c.sequence for c in inserted]
    # 'all' is unchanged: n per repeat count inserted, as many not.
    plain = random_canaries(2, 16, repeats=[1, 4], seed=3)
    assert [c.repeats for c in plain] == [1, 1, 4, 4, 0, 0, 0, 0]


def _bernoulli_config(**canaries) -> dict:
    return {
        "reference": {"fasta": "x.fa", "vcf": "x.vcf.gz"},
        "models": {"m": {"path": "m", "kind": "causal", "init": "scratch"}},
        "target": "m",
        "membership": {"mode": "finetune"},
        "memorisation": {"canaries": {"n": 1000, "inclusion": "bernoulli", "repeats": [1], **canaries}},
    }


@pytest.mark.parametrize(
    "canaries, dp, expected",
    [
        ({"repeats": [1, 4, 16]}, None, r"inclusion bernoulli takes one repeat count, got repeats \[1, 4, 16\]"),
        ({"repeats": [2]}, {"epsilon": 1, "delta": 1e-5}, r"a canary inserted 2 times is 2 of them"),
        ({"n": 10}, None, r"memorisation\.canaries\.n = 10 canaries cannot give a one-run bound above .* at least 15"),
        ({"n": 6}, {"epsilon": 0.5, "delta": 1e-5}, r"below epsilon 0\.5: set memorisation\.canaries\.n to at least"),
    ],
)
def test_bad_one_run_settings_stop_at_start_up_in_one_line(canaries, dp, expected):
    config = _bernoulli_config(**canaries)
    if dp:
        config["membership"]["training"] = {"dp": dp}
    with pytest.raises(InputError, match=expected) as err:
        validate_config(config)
    assert "\n" not in str(err.value)


def test_a_one_run_audit_with_enough_canaries_passes_start_up():
    config = validate_config(_bernoulli_config())
    assert config["memorisation"]["canaries"]["guesses"] is None
    assert validate_config(_bernoulli_config(repeats=[4]))  # without DP a repeat count above 1 is a choice


@pytest.mark.workflow
def test_a_dp_trained_target_gets_its_one_run_bound_and_a_dp_audit_section_in_the_report(tmp_path):
    """The whole chain with DP-SGD and 48 canaries each in by a fair coin: the rule's table, the report's sections."""
    from gfm_audit.privacy.dp_training import read_dp_record
    from test_workflow import snakemake, tiny_model_config

    config = tiny_model_config(tmp_path, shards=1)
    config["membership"]["training"] |= {"dp": {"epsilon": 2.0, "delta": 1e-3}}
    config["attacks"] = {"metrics": {"bootstrap": 20}}
    config["memorisation"] = {"canaries": {"n": 48, "length": 24, "repeats": [1], "inclusion": "bernoulli"}}
    result = snakemake(tmp_path, config=config, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(tmp_path / "results/memorisation/tiny/one_run.tsv", sep="\t")
    canaries = pd.read_csv(tmp_path / "results/memorisation/canaries.tsv", sep="\t")
    row = table.iloc[0]
    assert list(table.columns) == list(COLUMNS) and len(canaries) == row.canaries == 48 and len(table) == 2
    assert row.included == (canaries.group == "inserted").sum() and row.delta == 1e-3 and row.level == 0.95
    assert row.guess_counts == "4,12,24,48" and 0 <= row.eps_lower_bound <= row.ceiling
    # Sound at 95%: a two-epoch model trained at eps 2 leaves no room for a bound above its claim.
    assert row.eps_lower_bound <= read_dp_record(tmp_path / "results/models/tiny")["epsilon"]
    assert not (tmp_path / "results/memorisation/tiny/exposure.tsv").exists()
    log = (tmp_path / "results/logs/train_model/tiny.log").read_text()
    assert f"{row.included} canaries inserted" in log
    page = (tmp_path / "results/report/report.html").read_text()
    assert "DP audit" in page and "one-run canary bound" in page and "One-run canary bound on ε" in page
    assert "no: assumes a Gaussian privacy curve" in page
