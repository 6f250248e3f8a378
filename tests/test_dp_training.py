"""DP-SGD training with Opacus: the noise meets the requested epsilon (checked against the analytic Gaussian
mechanism where sampling is trivial), DP-trained models reload and score, seeds fix the bytes, and bad settings or
layers Opacus cannot differentiate per sequence stop with one line."""

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import demo_sequence
from gfm_audit.config import validate_config
from gfm_audit.errors import InputError
from gfm_audit.models import ModelSpec, load_model, load_tokenizer
from gfm_audit.privacy.dp_training import (
    _whole_model_gradients,
    check_per_sample_gradients,
    read_dp_record,
    sequence_losses,
    train_dp,
)
from gfm_audit.privacy.scoring import SeqRecord, score_sequences
from gfm_audit.privacy.training import train_model
from gfm_audit.tokens import encode
from scipy.optimize import brentq
from scipy.stats import norm

HYENADNA = Path(__file__).resolve().parent / "fixtures" / "gfm" / "hyenadna"


def _params(epsilon=4.0, delta=1e-3, accountant="rdp", batch_size=4, epochs=2):
    return {
        "epochs": epochs,
        "learning_rate": 1e-3,
        "batch_size": batch_size,
        "weight_decay": 0.0,
        "dp": {"epsilon": epsilon, "delta": delta, "max_grad_norm": 1.0, "accountant": accountant},
    }


def _sequences(n):
    return [demo_sequence(i * 100, i * 100 + 40 + i % 7) for i in range(n)]  # uneven lengths: padding is exercised


def _gaussian_epsilon(mu: float, delta: float) -> float:
    """eps of mu-GDP at delta: delta(eps) = Phi(-eps/mu + mu/2) - e^eps Phi(-eps/mu - mu/2) (Balle & Wang 2018,
    Theorem 8; Dong, Roth & Su 2022, Corollary 2.13). T full-batch DP-SGD steps of noise multiplier sigma are
    mu-GDP with mu = sqrt(T) / sigma."""

    def excess(eps):
        return norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * norm.cdf(-eps / mu - mu / 2) - delta

    return brentq(excess, 0.0, 100.0)


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_dp_training_reaches_the_requested_epsilon_and_records_it(tmp_path, tiny_causal, accountant):
    spec = ModelSpec("t", str(tiny_causal), "causal", init="scratch")
    train_model(
        spec, _sequences(20), params=_params(accountant=accountant), seed=0, out_dir=tmp_path / "t", device="cpu"
    )
    record = read_dp_record(tmp_path / "t")
    # Opacus searches sigma until the accountant's eps is within 0.01 below the target
    assert 4.0 - 0.01 <= record["epsilon"] <= 4.0 + 1e-9
    assert record["delta"] == 1e-3 and record["accountant"] == accountant
    # 20 sequences in batches of 4: q = 1/5, 2 epochs = 10 Poisson-sampled steps
    assert record["sample_rate"] == pytest.approx(0.2) and record["steps"] == 10 and record["n_sequences"] == 20
    assert record["noise_multiplier"] == record["noise_multiplier_used"] > 0
    assert (tmp_path / "t" / "model.safetensors").is_file()


def test_full_batch_accounting_matches_the_analytic_gaussian_mechanism(tmp_path, tiny_causal):
    """batch_size >= n: every step takes every sequence (q = 1), and T steps are the Gaussian mechanism composed."""
    spec = ModelSpec("t", str(tiny_causal), "causal", init="scratch")
    records = {}
    for accountant in ("prv", "rdp"):
        params = _params(epsilon=2.0, accountant=accountant, batch_size=8, epochs=3)
        train_model(spec, _sequences(8), params=params, seed=0, out_dir=tmp_path / accountant, device="cpu")
        records[accountant] = read_dp_record(tmp_path / accountant)
    for record in records.values():
        assert record["sample_rate"] == 1.0 and record["steps"] == 3
    prv, rdp = records["prv"], records["rdp"]
    # PRV is numerically exact up to its 0.01 eps error; RDP's conversion to (eps, delta) only bounds from above
    assert prv["epsilon"] == pytest.approx(_gaussian_epsilon(math.sqrt(3) / prv["noise_multiplier"], 1e-3), abs=0.02)
    assert rdp["epsilon"] >= _gaussian_epsilon(math.sqrt(3) / rdp["noise_multiplier"], 1e-3) - 1e-6
    assert rdp["noise_multiplier"] > prv["noise_multiplier"]  # the looser accountant needs more noise


def test_a_dp_trained_model_reloads_and_scores_through_the_normal_path(tmp_path, tiny_causal):
    spec = ModelSpec("t", str(tiny_causal), "causal", init="scratch")
    seqs = _sequences(12)
    train_model(spec, seqs, params=_params(), seed=1, out_dir=tmp_path / "t", device="cpu")
    records = [SeqRecord(f"w{i}", f"w{i}", "window", None, None, s) for i, s in enumerate(seqs)]
    table = score_sequences(
        ModelSpec("t", str(tmp_path / "t"), "causal"), records, snp_offsets={}, batch_size=4, seed=0
    ).to_pandas()
    assert len(table) == 12 and np.isfinite(table.loss.to_numpy()).all()


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(tmp_path, tiny_causal):
    spec = ModelSpec("t", str(tiny_causal), "causal", init="scratch")
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        train_model(spec, _sequences(12), params=_params(), seed=seed, out_dir=tmp_path / name, device="cpu")
    a, b, c = ((tmp_path / x / "model.safetensors").read_bytes() for x in "abc")
    assert a == b and a != c
    assert (tmp_path / "a" / "dp.json").read_text() == (tmp_path / "b" / "dp.json").read_text()


def test_masked_model_trains_with_dp_leaving_its_unused_head_alone(tmp_path, tiny_masked):
    losses = train_model(
        ModelSpec("m", str(tiny_masked), "masked"),
        _sequences(12),
        params=_params(),
        seed=0,
        out_dir=tmp_path / "m",
        device="cpu",
    )
    assert len(losses) == 2 and read_dp_record(tmp_path / "m")["epsilon"] == pytest.approx(4.0, abs=0.01)


def test_hyenadna_trains_with_dp_deterministically_and_reloads(tmp_path):
    spec = ModelSpec("h", str(HYENADNA), "causal")
    for name in ("a", "b"):
        train_model(spec, _sequences(12), params=_params(), seed=5, out_dir=tmp_path / name, device="cpu")
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()
    record = json.loads((tmp_path / "a" / "dp.json").read_text())
    assert record["per_sample_gradients"].startswith("whole model") and record["epsilon"] == pytest.approx(4, abs=0.01)
    assert (tmp_path / "a" / "model.safetensors").read_bytes() != (HYENADNA / "model.safetensors").read_bytes()
    load_model(ModelSpec("h", str(tmp_path / "a"), "causal"))


def _hyenadna_batch(n=3):
    spec = ModelSpec("h", str(HYENADNA), "causal")
    model, tokenizer = load_model(spec), load_tokenizer(spec)
    model.train()
    ids = torch.stack([torch.from_numpy(encode(tokenizer, s[:40], seq_id="s", model="h").ids) for s in _sequences(n)])
    return model, ids


def test_hyenadna_whole_model_gradients_equal_each_sequence_on_its_own():
    model, ids = _hyenadna_batch()
    grads, losses = _whole_model_gradients(model, ids, ids, kind="causal")
    for row in range(len(ids)):
        model.zero_grad(set_to_none=True)
        loss = sequence_losses(model(input_ids=ids[row : row + 1]).logits, ids[row : row + 1], kind="causal")[0]
        loss.backward()
        assert float(losses[row]) == pytest.approx(float(loss), rel=1e-5)
        for name, p in model.named_parameters():
            torch.testing.assert_close(grads[name][row], p.grad, rtol=1e-3, atol=2e-4, msg=name)


def _train_causal(model, ids, *, name, **options):
    """DP training of a causal model on ``ids`` (each sequence its own target), with the test's parameters."""
    return train_dp(
        model,
        name=name,
        kind="causal",
        ids=ids,
        attention=torch.ones_like(ids),
        make_batch=lambda rows, g: (ids[rows], ids[rows]),
        params=_params(),
        seed=0,
        device="cpu",
        **options,
    )


def test_opacus_hooks_refuse_the_hyenadna_filter_in_one_line_naming_the_layer():
    model, ids = _hyenadna_batch(12)
    with pytest.raises(InputError) as err:
        _train_causal(model, ids, name="h", per_sample_gradients="hooks")
    message = str(err.value)
    assert "layer hyena.backbone.layers.0.mixer.filter_fn (_Filter)" in message and "\n" not in message
    assert "membership.training.dp" in message


class _Toy(torch.nn.Module):
    """Embedding -> [positions through a Linear, one row for the whole batch] -> [BatchNorm] -> head."""

    def __init__(self, *, shared_positions=False, batch_norm=False):
        super().__init__()
        self.emb = torch.nn.Embedding(8, 4)
        self.positions = torch.nn.Linear(1, 4) if shared_positions else None
        self.bn = torch.nn.BatchNorm1d(4) if batch_norm else None
        self.head = torch.nn.Linear(4, 8)

    def forward(self, input_ids, attention_mask=None):
        h = self.emb(input_ids)
        if self.positions is not None:
            h = h + self.positions(torch.linspace(0, 1, input_ids.shape[1])[None, :, None])
        if self.bn is not None:
            h = self.bn(h.transpose(1, 2)).transpose(1, 2)
        return SimpleNamespace(logits=self.head(h))


@pytest.mark.parametrize(
    ("toy", "layer"),
    [(_Toy(batch_norm=True), "layer bn (BatchNorm1d)"), (_Toy(shared_positions=True), "layer positions (Linear)")],
    ids=["batch-norm", "input-shared-by-the-batch"],
)
def test_a_layer_opacus_cannot_differentiate_per_sequence_stops_training_naming_it(toy, layer):
    ids = torch.randint(8, (12, 10), generator=torch.Generator().manual_seed(0))
    with pytest.raises(InputError) as err:
        _train_causal(toy, ids, name="toy")
    assert layer in str(err.value) and "\n" not in str(err.value)


def test_the_per_sequence_check_passes_a_model_whose_layers_opacus_handles():
    from opacus.grad_sample.utils import prepare_module

    toy = _Toy()
    hooks = prepare_module(toy, grad_sample_mode="hooks", wrap_model=False)
    ids = torch.randint(8, (3, 10), generator=torch.Generator().manual_seed(0))
    check_per_sample_gradients(toy, ids, attention=torch.ones_like(ids), labels=ids, kind="causal", name="toy")
    hooks.cleanup()


def test_delta_not_below_one_over_n_is_refused_naming_the_key(tmp_path, tiny_causal):
    spec = ModelSpec("t", str(tiny_causal), "causal", init="scratch")
    with pytest.raises(InputError) as err:
        train_model(spec, _sequences(10), params=_params(delta=0.1), seed=0, out_dir=tmp_path / "t", device="cpu")
    message = str(err.value)
    assert "membership.training.dp.delta 0.1 is not below 1/n = 0.1" in message and "10 sequences" in message
    assert "\n" not in message and not (tmp_path / "t").exists()


def _config(mode="finetune", **dp):
    membership = {"mode": mode, "training": {"dp": {"epsilon": 1.0, "delta": 1e-5, **dp}}}
    if mode == "regions":
        membership |= {"member_bed": "m.bed", "nonmember_bed": "n.bed"}
    return {"reference": {"fasta": "a.fa", "vcf": "b.vcf.gz"}, "membership": membership}


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (_config(epsilon=0), "key membership.training.dp.epsilon"),
        (_config(epsilon=-1.0), "key membership.training.dp.epsilon"),
        (_config(accountant="gdp"), "key membership.training.dp.accountant"),
        (_config(mode="regions"), "membership.training.dp is set but membership.mode regions trains no model"),
        (_config(mode="none"), "membership.training.dp is set but membership.mode none trains no model"),
    ],
)
def test_bad_dp_settings_stop_at_start_up_in_one_line(config, expected):
    with pytest.raises(InputError) as err:
        validate_config(config)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_dp_settings_get_their_defaults_and_no_dp_key_means_none():
    config = validate_config(_config())
    assert config["membership"]["training"]["dp"] == {
        "epsilon": 1.0,
        "delta": 1e-5,
        "max_grad_norm": 1.0,
        "accountant": "rdp",
    }
    plain = validate_config({"reference": {"fasta": "a.fa", "vcf": "b.vcf.gz"}})
    assert "dp" not in plain["membership"]["training"]


def test_training_without_dp_from_a_dp_trained_native_checkpoint_does_not_inherit_its_record(tmp_path):
    spec = ModelSpec("h", str(HYENADNA), "causal")
    train_model(spec, _sequences(12), params=_params(), seed=0, out_dir=tmp_path / "dp", device="cpu")
    plain = {k: v for k, v in _params().items() if k != "dp"}
    train_model(
        ModelSpec("h", str(tmp_path / "dp"), "causal"),
        _sequences(12),
        params=plain,
        seed=0,
        out_dir=tmp_path / "plain",
        device="cpu",
    )
    assert read_dp_record(tmp_path / "dp") is not None and read_dp_record(tmp_path / "plain") is None


def test_planted_canaries_are_sampled_with_the_windows_and_counted_in_n(tmp_path, tiny_causal):
    spec = ModelSpec("t", str(tiny_causal), "causal", init="scratch")
    extra = [demo_sequence(50_000 + i * 40, 50_000 + i * 40 + 30) for i in range(4)]
    train_model(
        spec, _sequences(12), params=_params(), seed=0, out_dir=tmp_path / "t", device="cpu", extra_sequences=extra
    )
    record = read_dp_record(tmp_path / "t")
    assert record["n_sequences"] == 16 and record["sample_rate"] == pytest.approx(1 / 4)  # ceil(16 / 4) batches


def test_rdp_reaches_a_small_epsilon_that_opacus_default_orders_cannot(tmp_path, tiny_causal):
    """At eps 0.1 and delta 1e-5 the optimal Renyi order lies past Opacus' default orders (at most 63), whose bound
    never falls that low however large the noise (at alpha 63 the conversion alone costs about
    log(1 / (delta alpha)) / (alpha - 1) + log(1 - 1 / alpha), some 0.10): the search for sigma failed. With the wider
    orders it succeeds, and the bound stays valid: never below the exact epsilon of the Gaussian mechanism it
    accounts for (3 full-batch steps)."""
    from opacus.accountants import RDPAccountant

    default = RDPAccountant()
    default.history = [(1e6, 1.0, 3)]
    assert default.get_epsilon(1e-5) > 0.1
    spec = ModelSpec("t", str(tiny_causal), "causal", init="scratch")
    params = _params(epsilon=0.1, delta=1e-5, accountant="rdp", batch_size=8, epochs=3)
    train_model(spec, _sequences(8), params=params, seed=0, out_dir=tmp_path / "t", device="cpu")
    record = read_dp_record(tmp_path / "t")
    exact = _gaussian_epsilon(math.sqrt(3) / record["noise_multiplier"], 1e-5)
    assert exact - 1e-9 <= record["epsilon"] <= 0.1 + 1e-9


def test_an_epsilon_no_noise_can_reach_stops_in_one_line(tmp_path, tiny_causal):
    spec = ModelSpec("t", str(tiny_causal), "causal", init="scratch")
    params = _params(epsilon=1e-9, delta=1e-5, accountant="rdp", batch_size=8, epochs=3)
    with pytest.raises(InputError) as err:
        train_model(spec, _sequences(8), params=params, seed=0, out_dir=tmp_path / "t", device="cpu")
    message = str(err.value)
    assert "\n" not in message and "membership.training.dp.epsilon 1e-09" in message
    assert "raise epsilon" in message and "prv" in message
    assert not (tmp_path / "t").exists() or not any((tmp_path / "t").iterdir())
