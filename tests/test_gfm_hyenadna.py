"""Our HyenaDNA against the numbers of the original hub code (tests/fixtures/gfm/hyenadna, see its README)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from gfm_audit.errors import InputError
from gfm_audit.gfm import hyenadna
from safetensors.torch import load_file, save_file
from tolerances import float32_atol, golden_atol

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "gfm" / "hyenadna"


@pytest.fixture(scope="module")
def golden():
    g = np.load(FIXTURE / "golden.npz")
    return [
        (str(s), g["input_ids"][i, :n], g["logits"][i, :n], g["hidden"][i, :n])
        for i, (s, n) in enumerate(zip(g["sequences"], g["lengths"], strict=True))
    ]


@pytest.fixture(scope="module")
def config():
    return json.loads((FIXTURE / "config.json").read_text())


@pytest.fixture(scope="module")
def model(config):
    torch.set_num_threads(1)
    lm = hyenadna.build_lm(config, kind="causal")
    lm.load_state_dict(load_file(FIXTURE / "model.safetensors"), strict=True)
    return lm


@pytest.fixture(scope="module")
def tokenizer():
    return hyenadna.load_tokenizer(FIXTURE)


def _logits(model, ids, **kwargs):
    with torch.no_grad():
        return model(torch.as_tensor(np.asarray(ids)).reshape(1, -1), **kwargs)


def test_tokenizer_gives_the_original_ids_and_offsets_tile_each_sequence(tokenizer, golden):
    for seq, ids, _, _ in golden:
        enc = tokenizer(seq, return_offsets_mapping=True, return_special_tokens_mask=True)
        assert enc["input_ids"] == ids.tolist()
        special = np.asarray(enc["special_tokens_mask"], dtype=bool)
        # One [SEP] appended, nothing else special.
        assert special.tolist() == [False] * len(seq) + [True]
        offsets = np.asarray(enc["offset_mapping"])[~special]
        assert offsets[:, 0].tolist() == list(range(len(seq)))
        assert offsets[:, 1].tolist() == list(range(1, len(seq) + 1))


def test_tokenizer_ids_for_case_n_and_specials_by_hand(tokenizer):
    # The original vocabulary: [CLS]0 [SEP]1 [BOS]2 [MASK]3 [PAD]4 [RESERVED]5 [UNK]6 A7 C8 G9 T10 N11; lower case
    # is not in it, so it is [UNK], as the original does.
    assert tokenizer("ACGTN")["input_ids"] == [7, 8, 9, 10, 11, 1]
    assert tokenizer("acgtn")["input_ids"] == [6, 6, 6, 6, 6, 1]
    assert tokenizer("AXC", add_special_tokens=False)["input_ids"] == [7, 6, 8]
    assert (tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.mask_token_id) == (4, 6, 3)
    assert (tokenizer.sep_token_id, tokenizer.eos_token_id, tokenizer.cls_token_id, tokenizer.bos_token_id) == (
        1,
        1,
        0,
        2,
    )
    assert tokenizer.model_max_length == 1026
    batch = tokenizer(["ACG", "A"], padding=True)
    assert batch["input_ids"] == [[7, 8, 9, 1], [4, 4, 7, 1]]  # left, as the original
    assert batch["attention_mask"] == [[1, 1, 1, 1], [0, 0, 1, 1]]


def test_fixture_weights_load_strictly_and_give_the_original_logits(model, golden):
    for _, ids, logits, hidden in golden:
        out = _logits(model, ids, output_hidden_states=True)
        assert out.logits.shape == (1, len(ids), 16)  # vocab 12 padded to a multiple of 8
        assert out.logits.dtype == torch.float32
        atol = golden_atol("hyenadna", logits, len(ids))
        np.testing.assert_allclose(out.logits[0].numpy(), logits, rtol=0, atol=atol)
        atol = golden_atol("hyenadna", hidden, len(ids))
        np.testing.assert_allclose(out.hidden_states[-1][0].numpy(), hidden, rtol=0, atol=atol)
        assert len(out.hidden_states) == 2 + 2  # embeddings, 2 blocks, final norm


def test_state_dict_names_are_the_hub_files_names(config):
    lm = hyenadna.build_lm(config, kind="causal")
    assert set(lm.state_dict()) == set(load_file(FIXTURE / "model.safetensors"))
    assert "hyena.backbone.layers.0.mixer.filter_fn.implicit_filter.1.freq" in lm.state_dict()
    assert "hyena.backbone.layers.0.mixer.filter_fn.implicit_filter.3.freq" not in lm.state_dict()


def test_buffers_built_from_config_equal_the_originals(config):
    # t and deltas are never trained: ours, from config.json alone, must equal what the original computed, up to
    # torch.linspace's rounding, which depends on the CPU's kernels (default, AVX2 and AVX-512 differ in the last
    # bit): one rounding per implementation of start + i * step.
    lm = hyenadna.build_lm(config, kind="causal")
    ours, theirs = lm.state_dict(), load_file(FIXTURE / "model.safetensors")
    for name in ("pos_emb.t", "modulation.deltas"):
        key = f"hyena.backbone.layers.1.mixer.filter_fn.{name}"
        torch.testing.assert_close(ours[key], theirs[key], rtol=0, atol=float32_atol(theirs[key].numpy(), terms=1))
    # z is trained in the original and the fixture's is perturbed: ours (the formula) is close, not equal.
    key = "hyena.backbone.layers.0.mixer.filter_fn.pos_emb.z"
    assert 0 < (ours[key] - theirs[key]).abs().max() < 0.1


def test_a_file_that_also_names_the_shared_freq_aliases_loads_strictly(config, model, golden):
    state = load_file(FIXTURE / "model.safetensors")
    for layer in range(2):
        base = f"hyena.backbone.layers.{layer}.mixer.filter_fn.implicit_filter."
        state[base + "3.freq"] = state[base + "1.freq"].clone()
        state[base + "5.freq"] = state[base + "1.freq"].clone()
    lm = hyenadna.build_lm(config, kind="causal")
    lm.load_state_dict(state, strict=True)
    _, ids, logits, _ = golden[0]
    np.testing.assert_allclose(
        _logits(lm, ids).logits[0].numpy(), logits, rtol=0, atol=golden_atol("hyenadna", logits, len(ids))
    )


def test_tied_config_shares_the_head_with_the_embeddings(config):
    tied = {k: v for k, v in config.items() if k != "tie_word_embeddings"}  # absent means tied
    lm = hyenadna.build_lm(tied, kind="causal")
    ((head, emb),) = hyenadna.TIED_WEIGHTS.items()
    params = dict(lm.named_parameters(remove_duplicate=False))
    assert params[head] is params[emb]
    untied = hyenadna.build_lm(config, kind="causal")
    assert untied.lm_head.weight is not untied.hyena.backbone.embeddings.word_embeddings.weight


def test_fft_convolution_equals_a_direct_causal_sum():
    gen = torch.Generator().manual_seed(0)
    u, k, skip = torch.randn(2, 3, 7, generator=gen), torch.randn(3, 7, generator=gen), torch.randn(3, generator=gen)
    direct = torch.zeros_like(u)
    for t in range(7):
        for s in range(t + 1):
            direct[..., t] += k[:, s] * u[..., t - s]
    direct += u * skip[:, None]
    # Sums of at most 8 products, both in float32; the FFT path rounds log2(16) = 4 times more per term.
    atol = float32_atol(direct.numpy(), terms=8 + 4)
    torch.testing.assert_close(hyenadna._fft_causal_conv(u, k, skip), direct, rtol=0, atol=atol)


def test_logits_are_causal_and_right_padding_leaves_real_tokens_unchanged(model, golden):
    _, ids, logits, _ = golden[1]
    changed = ids.copy()
    changed[100] = 7 if changed[100] != 7 else 8
    out = _logits(model, changed).logits[0].numpy()
    np.testing.assert_allclose(out[:100], logits[:100], rtol=0, atol=golden_atol("hyenadna", logits, len(ids)))
    assert np.abs(out[100] - logits[100]).max() > 1e-3
    padded = np.concatenate([ids, np.full(5, 4)])
    mask = torch.tensor([[1] * len(ids) + [0] * 5])
    out = _logits(model, padded, attention_mask=mask).logits[0].numpy()
    # Equal in exact arithmetic; the longer input takes a larger FFT, which rounds differently.
    np.testing.assert_allclose(out[: len(ids)], logits, rtol=0, atol=golden_atol("hyenadna", logits, len(padded)))


def test_left_padding_mask_and_too_long_input_are_refused(model):
    with pytest.raises(ValueError, match="right"):
        _logits(model, [4, 7, 8, 1], attention_mask=torch.tensor([[0, 1, 1, 1]]))
    with pytest.raises(ValueError, match="max_seq_len 1026"):
        _logits(model, np.full(1027, 7))


def test_claims_hyenadna_configs_only(config):
    assert hyenadna.claims(config)
    assert hyenadna.claims({"architectures": ["HyenaDNAForSequenceClassification"]})
    assert hyenadna.claims({"auto_map": {"AutoModel": "modeling_hyena.HyenaDNAModel"}})
    others = [
        {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]},
        {
            "model_type": "stripedhyena",
            "auto_map": {"AutoModelForCausalLM": "modeling_hyena.StripedHyenaModelForCausalLM"},
        },
        {"model_type": "caduceus", "auto_map": {"AutoModelForMaskedLM": "modeling_caduceus.CaduceusForMaskedLM"}},
        {"model_type": "bert", "auto_map": {"AutoModelForMaskedLM": "bert_layers.BertForMaskedLM"}},
        {"model_type": "esm", "auto_map": {"AutoModelForMaskedLM": "modeling_esm.EsmForMaskedLM"}},
        {"model_type": "llama", "architectures": ["LlamaForCausalLM"]},
    ]
    assert not any(hyenadna.claims(c) for c in others)


@pytest.mark.parametrize(
    ("key", "value"), [("hyena_order", 3), ("short_filter_order", 5), ("emb_dim", 4), ("n_layer", 0)]
)
def test_unsupported_variants_stop_with_one_line_naming_model_and_key(config, key, value):
    hyenadna.check_supported(config, name="tiny")
    with pytest.raises(InputError, match=f"model 'tiny': config.json {key} is") as err:
        hyenadna.check_supported({**config, key: value}, name="tiny")
    assert "\n" not in str(err.value)


def test_missing_tokenizer_config_is_named(tmp_path):
    shutil.copy(FIXTURE / "config.json", tmp_path / "config.json")
    with pytest.raises(InputError, match="tokenizer_config.json"):
        hyenadna.load_tokenizer(tmp_path)


def test_masked_kind_is_refused(config):
    with pytest.raises(InputError, match="causal"):
        hyenadna.build_lm(config, kind="masked")


def test_save_file_roundtrip_of_our_state_dict_is_the_hub_layout(tmp_path, model):
    # What we would write is what we read: no shared tensors for safetensors to refuse.
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "m.safetensors"))
    assert set(load_file(tmp_path / "m.safetensors")) == set(load_file(FIXTURE / "model.safetensors"))


def test_bfloat16_cast_keeps_the_long_filter_in_float32(config, golden):
    lm = hyenadna.build_lm(config, kind="causal")
    lm.load_state_dict(load_file(FIXTURE / "model.safetensors"), strict=True)
    kernel = lm.hyena.backbone.layers[0].mixer.filter_fn.kernel(300)
    lm.to(torch.bfloat16)
    filt = lm.hyena.backbone.layers[0].mixer.filter_fn
    assert {t.dtype for t in [*filt.parameters(), *filt.buffers()]} == {torch.float32}
    assert lm.lm_head.weight.dtype == torch.bfloat16
    assert torch.equal(filt.kernel(300), kernel)
    # The rest runs in bfloat16 (8 mantissa bits); with the filter in bfloat16 the logits were off by ~6.
    for _, ids, logits, _ in golden:
        assert np.abs(_logits(lm, ids).logits[0].numpy() - logits).max() < 0.5


def test_init_scratch_builds_a_seeded_untrained_hyenadna_that_saves_and_reloads_in_the_hub_layout(tmp_path):
    from gfm_audit.models import ModelSpec, load_model, load_tokenizer, model_from_scratch
    from gfm_audit.privacy.training import save_model

    arch = tmp_path / "arch"  # config.json and tokenizer only, as a scratch folder holds
    arch.mkdir()
    for name in ("config.json", "special_tokens_map.json", "tokenizer_config.json"):
        shutil.copy(FIXTURE / name, arch / name)
    spec = ModelSpec("h", str(arch), "causal", init="scratch")
    a, b, other = (model_from_scratch(spec, seed=s) for s in (3, 3, 4))
    hub = load_file(FIXTURE / "model.safetensors")
    state = a.state_dict()
    assert {k: v.shape for k, v in state.items()} == {k: v.shape for k, v in hub.items()}  # the hub's names
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in state.items())  # same seed, same weights
    assert not torch.equal(
        state["hyena.backbone.embeddings.word_embeddings.weight"],
        other.state_dict()["hyena.backbone.embeddings.word_embeddings.weight"],
    )
    assert not torch.equal(
        state["hyena.backbone.embeddings.word_embeddings.weight"],
        hub["hyena.backbone.embeddings.word_embeddings.weight"],
    )
    save_model(a, load_tokenizer(spec), losses=[1.0], out_dir=tmp_path / "saved", source=str(arch))
    reloaded = load_model(ModelSpec("h", str(tmp_path / "saved"), "causal"))
    ids = torch.tensor([[0, 7, 8, 9, 10, 7, 1]])
    with torch.no_grad():
        # The same weights through the same module: equal to float32 rounding only if the reload moved nothing.
        np.testing.assert_array_equal(a.eval()(ids).logits.numpy(), reloaded(ids).logits.numpy())
