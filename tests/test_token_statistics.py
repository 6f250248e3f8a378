"""The per-token statistics of the scoring path (log p of the target, mean and std of log p under the predictive
distribution) against float64 computed independently, and against the formula they replaced."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gfm_audit.privacy.scoring import token_statistics


def _float64_by_hand(logits: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """(3, rows): log p(target), mu = sum p log p, sigma = sqrt(sum p (log p - mu)^2), in float64 with numpy
    (max-shifted log-sum-exp; the centred form of the variance, not the one the code uses)."""
    z = logits.double().numpy()
    z = z - z.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    p = np.exp(logp)
    mu = (p * logp).sum(-1)
    sigma = np.sqrt((p * (logp - mu[:, None]) ** 2).sum(-1))
    return np.stack([np.take_along_axis(logp, targets.numpy()[:, None], -1)[:, 0], mu, sigma])


def _logits(rows: int, vocab: int, *, scale: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, vocab, generator=generator) * scale
    return logits, torch.randint(0, vocab, (rows,), generator=generator)


@pytest.mark.parametrize(("vocab", "scale"), [(512, 3.0), (512, 10.0), (12, 3.0), (4101, 2.0)])
def test_statistics_equal_float64_by_hand(vocab, scale):
    """Evo's 512 bytes (flat and peaked), HyenaDNA's 12 characters, a 6-mer vocabulary. Tolerance: float32 log-
    softmax over V logits of size ~scale is exact to about eps * (|z| + log V) ~ 1e-6 per term, and the sums add V
    terms of that size once more; 2e-5 absolute (log p is of order 1-40 here) covers both, 100 times the float32
    step at these magnitudes, far below the float16 (~1e-3) in which the table stores mean and std."""
    logits, targets = _logits(300, vocab, scale=scale, seed=vocab)
    got = torch.stack(token_statistics(logits, targets)).numpy()
    np.testing.assert_allclose(got, _float64_by_hand(logits, targets), rtol=0, atol=2e-5)


def test_log_prob_of_the_target_is_log_softmax_bit_for_bit():
    """The loss column reads log p(target): it is the float32 log-softmax itself, whatever forms p."""
    logits, targets = _logits(257, 512, scale=4.0, seed=1)
    true, _, _ = token_statistics(logits, targets)
    expected = torch.log_softmax(logits, dim=-1).gather(-1, targets[:, None])[:, 0]
    assert torch.equal(true, expected)


def test_mean_and_std_stay_within_float32_rounding_of_the_exp_of_log_softmax_formula():
    """p = softmax(z) instead of exp(log_softmax(z)), and (p log p) log p instead of p (log p)^2: the same numbers
    up to float32 rounding. Bound: each p differs by a few ulp relative (2e-7 x a few), weighted by |log p| <= ~40
    over 512 terms summing to 1, so |d mean| and |d E[(log p)^2]| stay below ~1e-5 at these scales; std moves by
    at most that over 2 sigma. Measured on the Evo 2 fixture: 1.4e-6 (mean), 4.5e-6 (std)."""
    logits, targets = _logits(1000, 512, scale=5.0, seed=2)
    logp = torch.log_softmax(logits, dim=-1)
    p = logp.exp()
    mean = (p * logp).sum(-1)
    std = ((p * logp.square()).sum(-1) - mean.square()).clamp_min(0).sqrt()
    _, got_mean, got_std = token_statistics(logits, targets)
    assert float((got_mean - mean).abs().max()) < 1e-5
    assert float((got_std - std).abs().max()) < 1e-5


def test_a_certain_prediction_has_zero_std_and_no_nan():
    """One logit 200 above the rest: p underflows to 0 elsewhere (0 * finite log p is 0), mean 0 and std 0."""
    logits = torch.zeros(4, 512)
    logits[:, 7] = 200.0
    true, mean, std = token_statistics(logits, torch.full((4,), 7))
    assert torch.equal(true, torch.zeros(4)) and torch.equal(mean, torch.zeros(4)) and torch.equal(std, torch.zeros(4))


def test_half_precision_logits_are_widened_first():
    """bf16 logits (a GPU under autocast) give the statistics of their float32 values."""
    logits, targets = _logits(64, 512, scale=3.0, seed=3)
    half = logits.bfloat16()
    got = torch.stack(token_statistics(half, targets))
    assert got.dtype == torch.float32
    assert torch.equal(got, torch.stack(token_statistics(half.float(), targets)))
