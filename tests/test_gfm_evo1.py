"""Our Evo 1 against the numbers of the original StripedHyena 1 code (tests/fixtures/gfm/evo1, see its README), and
the hub folder a user downloads (config.json and the weights), read through the loader with every bad input
refused."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from gfm_audit.errors import InputError
from gfm_audit.gfm import evo1, registry
from gfm_audit.gfm import striped_hyena as sh
from gfm_audit.models import ModelSpec, architecture_of, load_model, load_tokenizer, read_checkpoint_config
from safetensors.torch import load_file, save_file
from tolerances import float32_atol, network_terms

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "gfm" / "evo1"
FOLDERS = {"main": FIXTURE, "variant": FIXTURE / "variant"}
WEIGHTS = "model.safetensors"


def _config(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text())


def _atol(folder: Path, values: np.ndarray, length: int, implementations: int = 2) -> float:
    """float32 rounding of the fixture's network (tests/tolerances.py): its layers times its longest reduction,
    the sequence (long convolutions, attention) or a width (projections, MLP)."""
    c = _config(folder)
    terms = network_terms(c["num_layers"], length, c["hidden_size"], c["inner_mlp_size"])
    return float32_atol(values, terms, implementations)


def _golden(folder: Path):
    with np.load(folder / "golden.npz") as g:
        data = {k: g[k] for k in g.files}
    rows = []
    for i, seq in enumerate(data["sequences"]):
        n = int(data["lengths"][i])
        hidden = data["hidden"][i, :n] if "hidden" in data else None
        rows.append((str(seq), data["input_ids"][i, :n], data["logits"][i, :n], data["logsumexp"][i, :n], hidden))
    return data["vocab_ids"], rows


def _spec(folder: Path, **kwargs) -> ModelSpec:
    return ModelSpec(name="evo", path=str(folder), kind="causal", **kwargs)


def _model(folder: Path) -> evo1.Evo1ForCausalLM:
    torch.set_num_threads(1)
    return load_model(_spec(folder))


@pytest.fixture(scope="module")
def model():
    return _model(FIXTURE)


def _forward(lm, ids, **kwargs):
    with torch.no_grad():
        return lm(torch.as_tensor(np.asarray(ids)).reshape(1, -1), **kwargs)


def _user_folder(tmp_path: Path, source: Path = FIXTURE) -> Path:
    folder = tmp_path / "evo1_tiny"
    folder.mkdir()
    for name in ("config.json", WEIGHTS):
        shutil.copy(source / name, folder / name)
    return folder


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


# --- equality with the original ------------------------------------------------------------------------------


@pytest.mark.parametrize("which", FOLDERS)
def test_fixture_weights_load_strictly_and_give_the_original_logits(which):
    folder = FOLDERS[which]
    lm = _model(folder)
    assert isinstance(lm, evo1.Evo1ForCausalLM)
    vocab_ids, rows = _golden(folder)
    for _, ids, logits, logsumexp, hidden in rows:
        out = _forward(lm, ids, output_hidden_states=True)
        assert out.logits.shape == (1, len(ids), 512) and out.logits.dtype == torch.float32
        ours = out.logits[0]
        atol = _atol(folder, logits, len(ids))
        np.testing.assert_allclose(ours[:, vocab_ids].numpy(), logits, rtol=0, atol=atol)
        np.testing.assert_allclose(torch.logsumexp(ours, -1).numpy(), logsumexp, rtol=0, atol=atol)
        assert len(out.hidden_states) == 1 + 4 + 1  # embeddings, 4 blocks, final norm
        if hidden is not None:
            atol = _atol(folder, hidden, len(ids))
            np.testing.assert_allclose(out.hidden_states[-1][0].numpy(), hidden, rtol=0, atol=atol)


@pytest.mark.parametrize("which", FOLDERS)
def test_float64_forward_agrees_with_the_golden_numbers_on_every_cpu(which):
    """Only the golden file's float32 rounding is left (one implementation): no CPU's kernels can move this."""
    folder = FOLDERS[which]
    lm = _model(folder).double()
    hyena = next(b for b in lm.backbone.blocks if hasattr(b, "filter"))
    assert hyena.filter.poles.dtype == torch.float64
    vocab_ids, rows = _golden(folder)
    for _, ids, logits, _, _ in rows:
        ours = _forward(lm, ids).logits[0, :, vocab_ids].numpy()
        np.testing.assert_allclose(ours, logits, rtol=0, atol=_atol(folder, logits, len(ids), implementations=1))


def test_the_variant_flips_every_switch_of_the_released_config():
    main, variant = _config(FIXTURE), _config(FIXTURE / "variant")
    switches = {k for c in (main, variant) for k, v in c.items() if isinstance(v, bool)}
    flipped = {k for k in switches if bool(variant.get(k)) != bool(main.get(k))}
    assert flipped == {
        "tie_embeddings",
        "column_split_hyena",
        "qkv_proj_bias",
        "mha_out_proj_bias",
        "use_interpolated_rotary_pos_emb",
    }
    assert (main["mlp_activation"], variant["mlp_activation"]) == ("gelu", "silu")
    assert main["attn_layer_idxs"] != variant["attn_layer_idxs"]


def test_state_dict_names_are_the_hub_files_names():
    for folder in FOLDERS.values():
        lm = evo1.build_lm(_config(folder))
        assert set(lm.state_dict()) == set(load_file(folder / WEIGHTS))
        assert all(k.startswith("backbone.") for k in lm.state_dict())


def test_tokenizer_gives_the_original_byte_ids_and_offsets_tile_each_sequence():
    tokenizer = evo1.load_tokenizer(FIXTURE)
    for seq, ids, *_ in _golden(FIXTURE)[1]:
        enc = tokenizer(seq, return_offsets_mapping=True, return_special_tokens_mask=True)
        assert enc["input_ids"] == ids.tolist() == list(seq.encode())
        assert not any(enc["special_tokens_mask"])
        assert [s for s, _ in enc["offset_mapping"]] == list(range(len(seq)))
    assert tokenizer("acgtN")["input_ids"] == [97, 99, 103, 116, 78]
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id) == (1, 0)
    assert tokenizer.model_max_length == 8192
    assert evo1.load_tokenizer(FIXTURE / "variant").model_max_length == 131072
    assert tokenizer(["ACG", "A"], padding=True)["input_ids"] == [[65, 67, 71], [65, 1, 1]]


# --- the operators against direct computations ------------------------------------------------------------------


def test_complex_modal_filter_by_hand():
    """h[d, t] = Re sum_s R p**t, with p and R stored as (real, imaginary) pairs of shape (D, S, 1, 2)."""
    p = np.array([[0.9 * np.exp(0.3j), 0.5 + 0j], [-0.7 + 0.1j, 0.2j]])
    r = np.array([[1.0 - 2.0j, 0.5 + 0j], [0.25j, -1.0 + 1.0j]])

    def pairs(z):
        return torch.from_numpy(np.stack([z.real, z.imag], -1)[:, :, None, :])

    h = sh.complex_modal_filter(pairs(p), pairs(r), 6)
    expected = [[(r[d] * p[d] ** t).sum().real for t in range(6)] for d in range(2)]
    np.testing.assert_allclose(h.numpy(), expected, rtol=1e-12, atol=1e-14)
    assert sh.complex_modal_filter(pairs(p).float(), pairs(r).float(), 6).dtype == torch.float32


def test_logits_are_causal_and_right_padding_leaves_real_tokens_unchanged(model):
    vocab_ids, rows = _golden(FIXTURE)
    _, ids, logits, _, _ = rows[0]
    changed = ids.copy()
    changed[150] = 65 if changed[150] != 65 else 67
    out = _forward(model, changed).logits[0, :, vocab_ids].numpy()
    np.testing.assert_allclose(out[:150], logits[:150], rtol=0, atol=_atol(FIXTURE, logits, len(ids)))
    assert np.abs(out[150] - logits[150]).max() > 1e-3
    padded = np.concatenate([ids, np.full(7, 1)])
    mask = torch.tensor([[1] * len(ids) + [0] * 7])
    out = _forward(model, padded, attention_mask=mask).logits[0, : len(ids), vocab_ids].numpy()
    # Equal in exact arithmetic; the longer input takes a larger FFT, which rounds differently.
    np.testing.assert_allclose(out, logits, rtol=0, atol=_atol(FIXTURE, logits, len(padded)))
    with pytest.raises(ValueError, match="right"):
        _forward(model, [1, 65, 67], attention_mask=torch.tensor([[0, 1, 1]]))


def test_bfloat16_cast_keeps_the_modal_filters_and_rotary_frequencies_in_float32():
    lm = _model(FIXTURE).to(torch.bfloat16)
    blocks = lm.backbone.blocks
    assert {blocks[0].filter.poles.dtype, blocks[0].filter.residues.dtype} == {torch.float32}
    assert blocks[2].inner_mha_cls.rotary_emb.inv_freq.dtype == torch.float32
    assert lm.backbone.embedding_layer.weight.dtype == torch.bfloat16
    vocab_ids, rows = _golden(FIXTURE)
    for _, ids, logits, _, _ in rows:
        # bfloat16 keeps 8 bits (relative rounding 2**-9 an operation): through four random layers the logits move
        # by 0.6-0.9 % of their scale on average and 5-15 % at the worst position (default, AVX2 and AVX-512
        # kernels alike); the bounds are twice that, a sanity check of the cast, not an equality.
        error = np.abs(_forward(lm, ids).logits[0, :, vocab_ids].numpy() - logits) / np.abs(logits).max()
        assert error.mean() < 0.02 and error.max() < 0.3


# --- the folder a user downloads -----------------------------------------------------------------------------


def test_auto_detects_the_hub_config_and_reads_it_natively(tmp_path, model):
    folder = _user_folder(tmp_path)
    spec = _spec(folder)
    config = read_checkpoint_config(spec)
    assert architecture_of(spec, config) == "evo1"
    assert [f for f in registry.available_families() if registry.family_module(f).claims(config)] == ["evo1"]
    lm = load_model(spec)
    assert lm.gfm_audit_architecture == "evo1"
    for key, value in model.state_dict().items():
        assert torch.equal(lm.state_dict()[key], value), key
    assert load_tokenizer(spec)("ACGT")["input_ids"] == [65, 67, 71, 84]
    assert load_model(_spec(folder, architecture="evo1")) is not None


def test_claims_evo1_configs_only():
    config = _config(FIXTURE)
    assert evo1.claims(config)
    assert evo1.claims({k: v for k, v in config.items() if k != "model_type"})  # by its class alone
    # StripedHyena's 7B language models (a BPE vocabulary of 32000) are not Evo 1.
    assert not evo1.claims({**config, "vocab_size": 32000})
    evo2_yaml = FIXTURE.parent / "evo2" / "evo2-tiny.yml"
    import yaml

    assert not evo1.claims(yaml.safe_load(evo2_yaml.read_text()))


def test_a_tied_head_written_under_both_names_loads_and_unequal_copies_are_refused(tmp_path, model):
    """torch.save of the original's state dict names the tied matrix twice (embedding_layer and unembed)."""
    folder = _user_folder(tmp_path)
    state = load_file(folder / WEIGHTS)
    head = state["backbone.embedding_layer.weight"]
    save_file({**state, "backbone.unembed.weight": head.clone()}, folder / WEIGHTS)
    lm = load_model(_spec(folder))
    assert torch.equal(lm.backbone.head(), model.backbone.head())
    save_file({**state, "backbone.unembed.weight": head + 1}, folder / WEIGHTS)
    with pytest.raises(InputError) as err:
        load_model(_spec(folder))
    assert "backbone.unembed.weight and backbone.embedding_layer.weight" in _one_line(err)


def test_a_plain_pytorch_model_bin_loads_as_the_safetensors(tmp_path, model):
    folder = _user_folder(tmp_path)
    torch.save(load_file(folder / WEIGHTS), folder / "pytorch_model.bin")
    (folder / WEIGHTS).unlink()
    lm = load_model(_spec(folder))
    for key, value in model.state_dict().items():
        assert torch.equal(lm.state_dict()[key], value), key


class _RunsCode:
    """Unpickling this would create the folder named: the proof that nothing of the file ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (str(self.path),))


def test_a_pytorch_model_bin_that_pickles_code_is_refused_unloaded(tmp_path):
    folder = _user_folder(tmp_path)
    marker = tmp_path / "code_ran"
    state = dict(load_file(folder / WEIGHTS))
    state["backbone.blocks.0.filter.poles"] = _RunsCode(marker)
    torch.save(state, folder / "pytorch_model.bin")
    (folder / WEIGHTS).unlink()
    with pytest.raises(InputError) as err:
        load_model(_spec(folder))
    text = _one_line(err)
    assert "pytorch_model.bin is not a plain state dict (it pickles the Python object" in text
    assert "mkdir" in text and "is not loaded" in text
    assert not marker.exists()


def test_a_config_whose_sizes_disagree_with_the_weights_is_refused(tmp_path):
    folder = _user_folder(tmp_path)
    (folder / "config.json").write_text(json.dumps({**_config(folder), "inner_mlp_size": 64}))
    with pytest.raises(InputError) as err:
        load_model(_spec(folder))
    text = _one_line(err)
    assert f"the weights in {folder} do not fit the model that its config.json describes" in text
    assert "size mismatch for backbone.blocks.0.mlp.l1.weight" in text
    (folder / "config.json").write_text(json.dumps({**_config(FIXTURE), "state_size": 4}))
    with pytest.raises(InputError, match="size mismatch for backbone.blocks.0.filter.poles"):
        load_model(_spec(folder))


def test_a_missing_weight_is_refused_never_filled_with_random_values(tmp_path):
    folder = _user_folder(tmp_path)
    state = load_file(folder / WEIGHTS)
    del state["backbone.blocks.1.filter.residues"]
    save_file(state, folder / WEIGHTS)
    with pytest.raises(InputError) as err:
        load_model(_spec(folder))
    text = _one_line(err)
    assert "lack 1 tensors (backbone.blocks.1.filter.residues), which would be left randomly initialised" in text
    extra = load_file(FIXTURE / WEIGHTS) | {"backbone.blocks.9.filter.poles": torch.zeros(1)}
    save_file(extra, folder / WEIGHTS)
    with pytest.raises(InputError, match="another architecture or variant than its config.json says"):
        load_model(_spec(folder))


def test_a_checkpoint_without_the_rotary_buffer_computes_it(tmp_path, model):
    folder = _user_folder(tmp_path)
    state = load_file(folder / WEIGHTS)
    del state["backbone.blocks.2.inner_mha_cls.rotary_emb.inv_freq"]
    save_file(state, folder / WEIGHTS)
    got = load_model(_spec(folder)).backbone.blocks[2].inner_mha_cls.rotary_emb.inv_freq
    want = model.backbone.blocks[2].inner_mha_cls.rotary_emb.inv_freq
    torch.testing.assert_close(got, want, rtol=0, atol=1e-7)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"final_norm": False}, "final_norm is false, which no released Evo 1 uses"),
        ({"short_filter_bias": False}, "short_filter_bias is false"),
        ({"hyena_filter_groups": 4}, "hyena_filter_groups is 4"),
        ({"proj_groups": 2}, "proj_groups is 2"),
        ({"attn_layer_idxs": [2, 3]}, "attn_layer_idxs has 3, also in hyena_layer_idxs"),
        ({"hyena_layer_idxs": [0, 1]}, r"gives no block kind to layers \[3\]"),
        ({"num_attention_heads": 3}, "hidden_size 32 is not num_attention_heads 3 heads"),
        ({"state_size": 0}, "state_size is 0; expected a positive integer"),
    ],
)
def test_unsupported_or_damaged_configs_stop_with_one_line_naming_config_json(change, message):
    config = _config(FIXTURE)
    evo1.check_supported(config, name="tiny")
    with pytest.raises(InputError, match="model 'tiny': config.json ") as err:
        evo1.check_supported({**config, **change}, name="tiny")
    assert re.search(message, _one_line(err))
    missing = {k: v for k, v in config.items() if k != "state_size"}
    with pytest.raises(InputError, match="config.json has no state_size; use the checkpoint's own config.json"):
        evo1.check_supported(missing, name="tiny")
