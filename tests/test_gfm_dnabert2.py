"""DNABERT-2 without remote code: our module and tokenizer against the original's numbers.

The fixture (tests/fixtures/gfm/dnabert2/, see its README) is a tiny random
checkpoint in the hub's format and the logits that the original
``bert_layers.py`` (hub revision d064dec, PyTorch attention path) computes on
three demo windows as one padded batch.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from gfm_audit.errors import InputError
from gfm_audit.gfm import dnabert2
from safetensors.torch import load_file
from tolerances import golden_atol

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "gfm" / "dnabert2"


def _atol(expected: np.ndarray) -> float:
    """float32 rounding of ours and the original's over the golden batch's length (tests/tolerances.py)."""
    return golden_atol("dnabert2", expected, expected.shape[-2])


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(FIXTURE / "golden.npz") as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def config() -> dict:
    return json.loads((FIXTURE / "config.json").read_text())


@pytest.fixture(scope="module")
def model(config: dict) -> dnabert2.DNABERT2ForMaskedLM:
    torch.manual_seed(0)
    lm = dnabert2.build_lm(config, kind="masked")
    lm.load_state_dict(load_file(str(FIXTURE / "model.safetensors")), strict=True)
    return lm


@pytest.fixture(scope="module")
def tokenizer():
    return dnabert2.load_tokenizer(FIXTURE)


def test_tokenizer_gives_the_original_ids_and_mask(tokenizer, golden):
    enc = tokenizer([str(s) for s in golden["sequences"]], padding=True)
    np.testing.assert_array_equal(np.array(enc["input_ids"]), golden["input_ids"])
    np.testing.assert_array_equal(np.array(enc["attention_mask"]), golden["attention_mask"])


def test_tokenizer_offsets_tile_each_window_and_flag_cls_sep(tokenizer, golden):
    for seq in golden["sequences"]:
        seq = str(seq)
        enc = tokenizer(seq, return_offsets_mapping=True, return_special_tokens_mask=True)
        special = enc["special_tokens_mask"]
        assert special[0] == special[-1] == 1 and sum(special) == 2
        assert enc["input_ids"][0] == tokenizer.cls_token_id == 1
        assert enc["input_ids"][-1] == tokenizer.sep_token_id == 2
        spans = [span for span, s in zip(enc["offset_mapping"], special, strict=True) if not s]
        assert spans[0][0] == 0 and spans[-1][1] == len(seq)
        assert all(a[1] == b[0] and a[0] < a[1] for a, b in zip(spans, spans[1:], strict=False))


def test_lower_case_bases_and_n_are_unk_as_in_the_original(tokenizer, golden):
    seq = str(golden["sequences"][-1])  # the edited window: 6 soft-masked bases and one N
    enc = tokenizer(seq, return_offsets_mapping=True, add_special_tokens=False)
    odd = {i for i, c in enumerate(seq) if c not in "ACGT"}
    assert len(odd) == 7
    for token, (a, b) in zip(enc["input_ids"], enc["offset_mapping"], strict=True):
        assert (token == tokenizer.unk_token_id) == bool(odd & set(range(a, b)))
        if token == tokenizer.unk_token_id:
            assert b - a == 1
    assert tokenizer.unk_token_id == 0 and tokenizer.pad_token_id == 3 and tokenizer.mask_token_id == 4


def test_state_dict_names_are_the_checkpoint_names(model, config):
    names = set(load_file(str(FIXTURE / "model.safetensors")))
    assert set(model.state_dict()) == names
    assert "cls.predictions.decoder.bias" in names and not any("alibi" in k or "token_type_ids" in k for k in names)
    assert len(names) == 4 + 11 * config["num_hidden_layers"] + 6


def test_logits_equal_the_original_on_a_padded_batch(model, golden):
    with torch.no_grad():
        out = model(torch.from_numpy(golden["input_ids"]), torch.from_numpy(golden["attention_mask"]))
    assert out.logits.dtype == torch.float32
    np.testing.assert_allclose(out.logits.numpy(), golden["logits"], rtol=0, atol=_atol(golden["logits"]))
    assert np.abs(golden["logits"]).max() > 10  # weights large enough that a wrong path shows


def test_final_hidden_state_equals_the_original_and_is_zero_on_padding(model, golden):
    with torch.no_grad():
        out = model(
            torch.from_numpy(golden["input_ids"]),
            torch.from_numpy(golden["attention_mask"]),
            output_hidden_states=True,
        )
    last = out.hidden_states[-1].numpy()
    hidden = golden["last_hidden_state"]
    np.testing.assert_allclose(last, hidden, rtol=0, atol=_atol(hidden))
    pad = golden["attention_mask"] == 0
    assert pad.any() and np.all(last[pad] == 0)
    assert len(out.hidden_states) == 1 + len(model.bert.encoder.layer)


def test_each_window_alone_gives_its_rows_of_the_batch(model, golden):
    for i, mask in enumerate(golden["attention_mask"]):
        n = int(mask.sum())
        ids = torch.from_numpy(golden["input_ids"][i : i + 1, :n])
        with torch.no_grad():
            alone = model(ids).logits[0].numpy()
        np.testing.assert_allclose(alone, golden["logits"][i, :n], rtol=0, atol=_atol(golden["logits"]))


def test_a_file_without_the_tied_decoder_loads_through_tied_weights(config, golden):
    state = load_file(str(FIXTURE / "model.safetensors"))
    for key in dnabert2.TIED_WEIGHTS:
        state.pop(key)
    lm = dnabert2.build_lm(config, kind="masked")
    report = lm.load_state_dict(state, strict=False)
    assert set(report.missing_keys) == set(dnabert2.TIED_WEIGHTS) and not report.unexpected_keys
    for key, source in dnabert2.TIED_WEIGHTS.items():
        assert lm.get_parameter(key) is lm.get_parameter(source)
    with torch.no_grad():
        logits = lm(torch.from_numpy(golden["input_ids"]), torch.from_numpy(golden["attention_mask"])).logits
    np.testing.assert_allclose(logits.numpy(), golden["logits"], rtol=0, atol=_atol(golden["logits"]))


@pytest.mark.parametrize(
    ("heads", "expected"),
    [
        (8, [2.0**-k for k in range(1, 9)]),
        # not a power of two: the 4-head slopes, then slopes 1 and 3 of the 8-head set
        (6, [2.0**-2, 2.0**-4, 2.0**-6, 2.0**-8, 2.0**-1, 2.0**-3]),
        # DNABERT-2-117M: the 8-head slopes, then slopes 1, 3, 5, 7 of the 16-head set (2^-k/2)
        (12, [2.0**-k for k in range(1, 9)] + [2.0**-0.5, 2.0**-1.5, 2.0**-2.5, 2.0**-3.5]),
    ],
)
def test_alibi_slopes_are_the_originals_incl_non_power_of_two(heads, expected):
    assert dnabert2.alibi_slopes(heads) == pytest.approx(expected, rel=1e-12)


def test_alibi_bias_is_minus_slope_times_distance():
    bias = dnabert2.alibi_bias(2, 3)
    assert bias.shape == (1, 2, 3, 3) and bias.dtype == torch.float32
    distance = torch.tensor([[0.0, 1, 2], [1, 0, 1], [2, 1, 0]])
    torch.testing.assert_close(bias[0, 0], -distance / 16, rtol=0, atol=0)
    torch.testing.assert_close(bias[0, 1], -distance / 256, rtol=0, atol=0)


def test_claims_dnabert2_with_or_without_model_type(config):
    assert dnabert2.claims(config)
    assert dnabert2.claims({**config, "model_type": "bert", "architectures": ["BertForMaskedLM"]})
    # auto_map pointing into the hub repo from another one
    remote = {k: f"zhihan1996/DNABERT-2-117M--{v}" for k, v in config["auto_map"].items()}
    assert dnabert2.claims({**config, "auto_map": remote})


def test_does_not_claim_plain_bert_gena_lm_or_other_families(config):
    plain_bert = {"model_type": "bert", "architectures": ["BertForMaskedLM"], "vocab_size": 30522, "hidden_size": 768}
    gena_lm = {
        "model_type": "bert",
        "architectures": ["BertForMaskedLM"],
        "auto_map": {"AutoModel": "modeling_bert.BertModel", "AutoModelForMaskedLM": "modeling_bert.BertForMaskedLM"},
        "pre_layer_norm": True,
        "position_embedding_type": "absolute",
    }
    gpt2 = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_embd": 64}
    nt_v2 = {
        "model_type": "esm",
        "auto_map": {"AutoConfig": "esm_config.EsmConfig"},
        "position_embedding_type": "rotary",
    }
    hyena = {"model_type": "hyenadna", "auto_map": {"AutoModelForCausalLM": "modeling_hyena.HyenaDNAForCausalLM"}}
    # a DNABERT-2-like config whose ALiBi key was dropped is not claimed either
    no_alibi = {k: v for k, v in config.items() if k != "alibi_starting_size"}
    for other in (plain_bert, gena_lm, gpt2, nt_v2, hyena, no_alibi, {}):
        assert not dnabert2.claims(other)
    assert not dnabert2.claims({**config, "model_type": "gpt2"})


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"num_attention_heads": 5}, ["model tiny", "hidden_size", "num_attention_heads"]),
        ({"hidden_act": "quick_gelu"}, ["model tiny", "hidden_act", "quick_gelu"]),
        ({"vocab_size": None}, ["model tiny", "vocab_size"]),
    ],
)
def test_check_supported_names_model_and_key(config, change, words):
    with pytest.raises(InputError) as err:
        dnabert2.check_supported({**config, **change}, name="tiny")
    message = str(err.value)
    assert "\n" not in message and all(w in message for w in words)


def test_check_supported_accepts_the_fixture_and_the_hub_sizes(config):
    dnabert2.check_supported(config, name="tiny")
    hub = {**config, "hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 3072, "num_hidden_layers": 12}
    dnabert2.check_supported(hub, name="DNABERT-2-117M")
    assert math.isclose(dnabert2.alibi_slopes(12)[-1], 2**-3.5)


def test_build_lm_is_masked_only(config):
    with pytest.raises(InputError, match="masked"):
        dnabert2.build_lm(config, kind="causal")
    assert dnabert2.KINDS == ("masked",) and dnabert2.ACCEPTS_ATTENTION_MASK


def test_load_tokenizer_names_the_missing_file(tmp_path):
    (tmp_path / "tokenizer_config.json").write_text((FIXTURE / "tokenizer_config.json").read_text())
    with pytest.raises(InputError, match="tokenizer.json"):
        dnabert2.load_tokenizer(tmp_path)
