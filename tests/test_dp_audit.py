"""The DP audit's verdict: a claimed epsilon against the empirical lower bounds, and a DP-SGD whose noise was
switched off (while its record still claims epsilon = 1) caught by the canary audit."""

import numpy as np
import pytest
from gfm_audit.models import ModelSpec
from gfm_audit.privacy.dp_audit import audit_canaries, check_claim
from gfm_audit.privacy.dp_training import read_dp_record
from gfm_audit.privacy.scoring import SeqRecord, score_sequences
from gfm_audit.privacy.training import train_model


def test_a_bound_above_the_claim_is_a_violation_and_bounds_at_or_below_it_are_consistent():
    verdict = check_claim(1.0, {"one_run": 1.7, "clopper_pearson": 0.4}, delta=1e-5)
    assert verdict.violated == ("one_run",)
    assert "one-run canary bound exceeds the claim: it is violated" in verdict.sentence()
    consistent = check_claim(1.0, {"one_run": 1.0, "clopper_pearson": 0.0}, delta=1e-5)
    assert consistent.violated == () and consistent.sentence().endswith("Consistent with the claimed guarantee.")


def test_an_unbounded_claim_is_never_violated():
    scores, included = np.arange(10.0), np.arange(10) >= 5  # perfectly separated
    verdict = audit_canaries({"epsilon": None, "delta": 1e-5}, scores, included, k=5)
    assert verdict.violated == () and verdict.bounds["one_run"] > 0


# 200 random 24-base canaries, each in the training set with probability 1/2 (seeded); a GPT-2 char LM of width 128
# trained from scratch for 40 epochs with DP-SGD at a requested eps = 1 (delta = 1e-5). Guesses: the 20 lowest-loss
# canaries in, the 20 highest out.
M, LENGTH, K = 200, 24, 20


def _canary_audit(tmp_path, *, noise_multiplier):
    from gfm_audit.char_lm import save_char_causal_lm

    base = save_char_causal_lm(tmp_path / "base", hidden=128, layers=2, heads=2, max_positions=300, weights_seed=0)
    rng = np.random.default_rng(0)
    canaries = ["".join(rng.choice(list("ACGT"), LENGTH)) for _ in range(M)]
    included = rng.random(M) < 0.5
    params = {
        "epochs": 40,
        "learning_rate": 1e-3,
        "batch_size": 8,
        "weight_decay": 0.0,
        "dp": {"epsilon": 1.0, "delta": 1e-5, "max_grad_norm": 1.0, "accountant": "rdp"},
    }
    if noise_multiplier is not None:
        params["force_noise_multiplier"] = noise_multiplier
    trained = tmp_path / "target"
    train_model(
        ModelSpec("target", str(base), "causal", init="scratch"),
        [c for c, kept in zip(canaries, included, strict=True) if kept],
        params=params,
        seed=0,
        out_dir=trained,
        device="cpu",
    )
    records = [SeqRecord(f"c{i}", f"c{i}", "window", None, None, s) for i, s in enumerate(canaries)]
    table = score_sequences(ModelSpec("target", str(trained), "causal"), records, snp_offsets={}, batch_size=64, seed=0)
    record = read_dp_record(trained)
    return record, audit_canaries(record, -table.to_pandas().loss.to_numpy(), included, k=K)


def test_dp_sgd_with_its_noise_switched_off_is_flagged_by_the_canary_audit(tmp_path):
    record, verdict = _canary_audit(tmp_path, noise_multiplier=0.0)
    assert record["noise_multiplier_used"] == 0.0 and record["noise_multiplier"] > 0
    assert record["epsilon"] == pytest.approx(1.0, abs=0.01)  # the record still claims what was asked
    # measured: one-run bound 1.74 (38 of 40 guesses right), Clopper-Pearson 1.49
    assert verdict.bounds["one_run"] > 1.3 and verdict.bounds["clopper_pearson"] > 1.1
    assert verdict.violated == ("one_run", "clopper_pearson")
    assert "it is violated" in verdict.sentence()


def test_dp_sgd_with_its_noise_is_consistent_with_its_claim(tmp_path):
    record, verdict = _canary_audit(tmp_path, noise_multiplier=None)
    assert record["noise_multiplier_used"] == record["noise_multiplier"] > 0
    assert verdict.violated == () and max(verdict.bounds.values()) <= record["epsilon"]
