"""Native GENA-LM against numbers from the original modelling code (tests/fixtures/gfm/gena_lm)."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from gfm_audit.errors import InputError
from gfm_audit.gfm import gena_lm
from safetensors.torch import load_file
from tolerances import config_terms, float32_atol, golden_atol

FIXTURE = Path(__file__).parent / "fixtures" / "gfm" / "gena_lm"


@pytest.fixture(scope="module")
def golden():
    return np.load(FIXTURE / "golden.npz")


@pytest.fixture(scope="module")
def tok():
    return gena_lm.load_tokenizer(FIXTURE)


@pytest.fixture(scope="module")
def config():
    return json.loads((FIXTURE / "config.json").read_text())


def _weights() -> dict:
    state = load_file(FIXTURE / "model.safetensors")
    for name, tied_to in gena_lm.TIED_WEIGHTS.items():
        state.setdefault(name, state[tied_to])  # what the loader does for a tied key the file leaves out
    return state


@pytest.fixture(scope="module")
def model(config):
    lm = gena_lm.build_lm(config, kind="masked")
    lm.load_state_dict(_weights(), strict=True)
    return lm


def test_tokenizer_gives_the_original_ids_and_offsets_tile_each_window(golden, tok):
    for seq, ids, mask in zip(golden["sequences"], golden["input_ids"], golden["attention_mask"], strict=True):
        seq = str(seq)
        enc = tok(seq, return_offsets_mapping=True, return_special_tokens_mask=True)
        assert enc["input_ids"] == ids[mask == 1].tolist()
        special = np.asarray(enc["special_tokens_mask"], dtype=bool)
        assert special.tolist() == [True] + [False] * (len(special) - 2) + [True]  # [CLS] ... [SEP]
        spans = np.asarray(enc["offset_mapping"])[~special]
        assert spans[0, 0] == 0 and spans[-1, 1] == len(seq)
        assert (spans[1:, 0] == spans[:-1, 1]).all()
    # The third window's run of 12 N is one "-" token (id 5) that now covers the whole run.
    third = str(golden["sequences"][2])
    enc = tok(third, return_offsets_mapping=True)
    lo, hi = enc["offset_mapping"][enc["input_ids"].index(5)]
    assert (lo, hi) == (100, 112) and third[lo:hi] == "N" * 12
    assert (tok.mask_token, tok.mask_token_id, tok.pad_token_id, tok.unk_token_id) == ("[MASK]", 4, 3, 0)


def test_tokenizer_ids_equal_the_rust_tokenizer_on_mixed_case_and_n_runs(tok):
    from tokenizers import Tokenizer

    raw = Tokenizer.from_file(str(FIXTURE / "tokenizer.json"))
    ours = tok
    rng = random.Random(12)
    for _ in range(200):
        parts = [rng.choice(["ACGT" * 3, "acgt", "N" * rng.randint(1, 14), "TTAGGC"]) for _ in range(rng.randint(1, 6))]
        seq = "".join(parts)
        enc = ours(seq, return_offsets_mapping=True, return_special_tokens_mask=True)
        assert enc["input_ids"] == raw.encode(seq).ids, seq
        spans = [s for s, sp in zip(enc["offset_mapping"], enc["special_tokens_mask"], strict=True) if not sp]
        assert spans[0][0] == 0 and spans[-1][1] == len(seq)
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))


def test_strict_load_reproduces_the_original_logits(model, golden):
    with torch.no_grad():
        out = model(
            torch.from_numpy(golden["input_ids"]),
            torch.from_numpy(golden["attention_mask"]),
            output_hidden_states=True,
        )
    logits = out.logits
    length = logits.shape[1]
    atol = golden_atol("gena_lm", golden["logits"], length)
    # float32; only the fused attention kernel differs from the original's order: rounding only.
    np.testing.assert_allclose(logits[..., golden["vocab_ids"]].numpy(), golden["logits"], rtol=0, atol=atol)
    # the log-normaliser over all 32000 ids, so every log-probability is as the original's
    np.testing.assert_allclose(torch.logsumexp(logits, -1).numpy(), golden["logsumexp"], rtol=0, atol=atol)
    hidden = golden["last_hidden_state"]
    atol = golden_atol("gena_lm", hidden, length)
    np.testing.assert_allclose(out.hidden_states[-1].numpy(), hidden, rtol=0, atol=atol)


def test_padding_does_not_change_a_window(model, golden):
    k = int(np.argmin(golden["attention_mask"].sum(1)))
    n = int(golden["attention_mask"][k].sum())
    with torch.no_grad():
        alone = model(torch.from_numpy(golden["input_ids"][k : k + 1, :n])).logits[0]
    expected = golden["logits"][k, :n]
    atol = golden_atol("gena_lm", expected, n)
    np.testing.assert_allclose(alone[:, golden["vocab_ids"]].numpy(), expected, rtol=0, atol=atol)


def test_untied_decoder_without_final_layer_norm_matches_the_original_too():
    variant = np.load(FIXTURE / "variant.npz")
    lm = gena_lm.build_lm(json.loads(str(variant["config"])), kind="masked")
    state = {k.removeprefix("state/"): torch.from_numpy(variant[k]) for k in variant.files if k.startswith("state/")}
    lm.load_state_dict(state, strict=True)
    assert lm.bert.encoder.last_layer_ln is None
    assert lm.cls.predictions.decoder.weight is not lm.bert.embeddings.word_embeddings.weight
    with torch.no_grad():
        logits = lm(torch.from_numpy(variant["input_ids"]), torch.from_numpy(variant["attention_mask"])).logits
    expected = variant["logits"]
    atol = float32_atol(expected, config_terms(json.loads(str(variant["config"])), expected.shape[1]))
    np.testing.assert_allclose(logits.numpy(), expected, rtol=0, atol=atol)


def test_weight_names_are_the_originals_and_the_ties_hold(model):
    names = set(model.state_dict())
    in_file = set(load_file(FIXTURE / "model.safetensors"))
    assert names == in_file | set(gena_lm.TIED_WEIGHTS)
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    assert model.cls.predictions.decoder.bias is model.cls.predictions.bias
    config = {**json.loads((FIXTURE / "config.json").read_text()), "tie_word_embeddings": False}
    untied = gena_lm.build_lm(config, kind="masked")
    assert untied.cls.predictions.decoder.weight is not untied.bert.embeddings.word_embeddings.weight


def test_last_layer_norm_follows_the_config(config):
    # left out of the fixture's config: the original's default is pre_layer_norm, hence present
    assert "bert.encoder.last_layer_ln.weight" in gena_lm.build_lm(config, kind="masked").state_dict()
    without = gena_lm.build_lm({**config, "last_layer_norm": False}, kind="masked").state_dict()
    assert not any(k.startswith("bert.encoder.last_layer_ln") for k in without)


def test_claims_gena_but_not_plain_bert_dnabert2_or_nt(config):
    assert gena_lm.claims(config)
    hub_prefixed = {**config, "auto_map": {"AutoModel": "AIRI-Institute/gena-lm-bert-base--modeling_bert.BertModel"}}
    assert gena_lm.claims(hub_prefixed)
    plain_bert = {k: v for k, v in config.items() if k not in ("auto_map", "pre_layer_norm")}
    assert not gena_lm.claims(plain_bert)
    assert not gena_lm.claims(
        {"model_type": "bert", "auto_map": {"AutoModelForMaskedLM": "bert_layers.BertForMaskedLM"}}
    )
    assert not gena_lm.claims(
        {"model_type": "esm", "auto_map": {"AutoModelForMaskedLM": "modeling_esm.EsmForMaskedLM"}}
    )
    assert not gena_lm.claims({"model_type": "gpt2"})
    assert not gena_lm.claims({"model_type": "big_bird", "architectures": ["BigBirdForMaskedLM"]})


def test_sparse_attention_checkpoint_stops_with_one_line(config):
    gena_lm.check_supported(config, name="tiny")
    sparse = {
        **config,
        "sparse_config_cls": "deepspeed.ops.sparse_attention:BigBirdSparsityConfig",
        "sparse_attention": {"block": 64},
    }
    with pytest.raises(InputError, match="tiny: config.json sparse_config_cls.*sparse attention") as err:
        gena_lm.check_supported(sparse, name="tiny")
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="position_embedding_type 'rotary'"):
        gena_lm.check_supported({**config, "position_embedding_type": "rotary"}, name="tiny")
    with pytest.raises(InputError, match="pre_layer_norm"):
        gena_lm.check_supported({**config, "pre_layer_norm": False}, name="tiny")


def test_missing_tokenizer_file_is_named(tmp_path):
    folder = tmp_path / "gena"
    shutil.copytree(FIXTURE, folder)
    (folder / "tokenizer.json").unlink()
    with pytest.raises(InputError, match="tokenizer.json: missing"):
        gena_lm.load_tokenizer(folder)
