"""Our Evo 2 against the numbers of the original vortex code (tests/fixtures/gfm/evo2, see its README), and the
checkpoint folder a user downloads (a .pt and its YAML), read through the loader with every bad input refused."""

from __future__ import annotations

import io
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from gfm_audit.errors import InputError
from gfm_audit.gfm import evo2, registry
from gfm_audit.gfm import striped_hyena as sh
from gfm_audit.models import ModelSpec, architecture_of, load_model, load_tokenizer, read_checkpoint_config
from tolerances import float32_atol, network_terms

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "gfm" / "evo2"
FOLDERS = {"main": FIXTURE, "variant": FIXTURE / "variant"}
CHECKPOINT, CONFIG = "evo2-tiny.pt", "evo2-tiny.yml"


def _config(folder: Path) -> dict:
    return evo2.read_folder_config(folder, name="tiny")


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


def _model(folder: Path) -> evo2.Evo2ForCausalLM:
    torch.set_num_threads(1)
    lm = evo2.build_lm(_config(folder), kind="causal")
    lm.load_state_dict(evo2.read_state_dict(folder, "test"), strict=True)
    return lm


@pytest.fixture(scope="module")
def model():
    return _model(FIXTURE)


def _forward(lm, ids, **kwargs):
    with torch.no_grad():
        return lm(torch.as_tensor(np.asarray(ids)).reshape(1, -1), **kwargs)


def _user_folder(tmp_path: Path, *, pt: bool = True, yml: bool = True) -> Path:
    folder = tmp_path / "evo2_tiny"
    folder.mkdir()
    if pt:
        shutil.copy(FIXTURE / CHECKPOINT, folder / CHECKPOINT)
    if yml:
        shutil.copy(FIXTURE / CONFIG, folder / CONFIG)
    return folder


def _spec(folder: Path, **kwargs) -> ModelSpec:
    return ModelSpec(name="evo", path=str(folder), kind="causal", **kwargs)


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


# --- equality with the original ------------------------------------------------------------------------------


@pytest.mark.parametrize("which", FOLDERS)
def test_fixture_weights_load_strictly_and_give_the_original_logits(which):
    folder = FOLDERS[which]
    lm = _model(folder)
    vocab_ids, rows = _golden(folder)
    for _, ids, logits, logsumexp, hidden in rows:
        out = _forward(lm, ids, output_hidden_states=True)
        assert out.logits.shape == (1, len(ids), 512) and out.logits.dtype == torch.float32
        ours = out.logits[0]
        atol = _atol(folder, logits, len(ids))
        np.testing.assert_allclose(ours[:, vocab_ids].numpy(), logits, rtol=0, atol=atol)
        np.testing.assert_allclose(torch.logsumexp(ours, -1).numpy(), logsumexp, rtol=0, atol=atol)
        assert len(out.hidden_states) == 1 + 5 + 1  # embeddings, 5 blocks, final norm
        if hidden is not None:
            atol = _atol(folder, hidden, len(ids))
            np.testing.assert_allclose(out.hidden_states[-1][0].numpy(), hidden, rtol=0, atol=atol)


@pytest.mark.parametrize("which", FOLDERS)
def test_float64_forward_agrees_with_the_golden_numbers_on_every_cpu(which):
    """Only the golden file's float32 rounding is left (one implementation): no CPU's kernels can move this."""
    folder = FOLDERS[which]
    lm = _model(folder).double()
    assert lm.blocks[2].filter.log_poles.dtype == torch.float64
    vocab_ids, rows = _golden(folder)
    for _, ids, logits, _, _ in rows:
        ours = _forward(lm, ids).logits[0, :, vocab_ids].numpy()
        np.testing.assert_allclose(ours, logits, rtol=0, atol=_atol(folder, logits, len(ids), implementations=1))


def test_the_fixture_covers_every_block_kind_and_the_variant_every_switch():
    main, variant = _config(FIXTURE), _config(FIXTURE / "variant")
    assert evo2._block_kinds(main) == ["hcs", "hcm", "hcl", "attn", "hcs"]
    assert main["hcm_filter_length"] == sh.FFT_FILTER_LENGTH and main["hcs_filter_length"] < sh.FFT_FILTER_LENGTH
    lengths = [len(s) for s, *_ in _golden(FIXTURE)[1]]
    assert min(lengths) < main["hcm_filter_length"] < max(lengths)  # the MR filter truncated and whole
    # A key the YAML leaves out is false (evo2-1b-8k.yml has no use_interpolated_rotary_pos_emb).
    switches = {k for c in (main, variant) for k, v in c.items() if isinstance(v, bool)}
    flipped = {k for k in switches if bool(variant.get(k)) != bool(main.get(k))}
    assert flipped == {
        "tie_embeddings",
        "interleave",
        "column_split",
        "column_split_hyena",
        "hyena_flip_x1x2",
        "short_filter_bias",
        "qkv_proj_bias",
        "mha_out_proj_bias",
        "hyena_out_proj_bias",
        "evo2_style_activations",
        "use_interpolated_rotary_pos_emb",
    }


def test_state_dict_names_are_the_original_files_names():
    for folder in FOLDERS.values():
        lm = evo2.build_lm(_config(folder))
        assert set(lm.state_dict()) == set(torch.load(folder / CHECKPOINT, weights_only=True))


def test_tokenizer_gives_the_original_byte_ids_and_offsets_tile_each_sequence():
    tokenizer = evo2.load_tokenizer(FIXTURE)
    for seq, ids, *_ in _golden(FIXTURE)[1]:
        enc = tokenizer(seq, return_offsets_mapping=True, return_special_tokens_mask=True)
        assert enc["input_ids"] == ids.tolist() == list(seq.encode())
        assert not any(enc["special_tokens_mask"])
        assert [s for s, _ in enc["offset_mapping"]] == list(range(len(seq)))
        assert [e for _, e in enc["offset_mapping"]] == list(range(1, len(seq) + 1))


def test_tokenizer_ids_by_hand():
    tokenizer = evo2.load_tokenizer(FIXTURE)
    # CharLevelTokenizer: the UTF-8 bytes themselves; lower case and N are their own ids; nothing added.
    assert tokenizer("ACGTN")["input_ids"] == [65, 67, 71, 84, 78]
    assert tokenizer("acgtn")["input_ids"] == [97, 99, 103, 116, 110]
    assert tokenizer("é")["input_ids"] == [0xC3, 0xA9]
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id) == (1, 0)
    assert tokenizer.model_max_length == 8192  # max_seqlen of the YAML
    batch = tokenizer(["ACG", "A"], padding=True)
    assert batch["input_ids"] == [[65, 67, 71], [65, 1, 1]]  # right: causal, and the model takes no mask


# --- the operators against direct computations ------------------------------------------------------------------


def test_fft_convolution_and_the_direct_fir_equal_direct_sums_in_their_orientations():
    gen = torch.Generator().manual_seed(0)
    u, k = torch.randn(2, 3, 9, generator=gen, dtype=torch.float64), torch.randn(3, 4, generator=gen).double()
    conv = torch.zeros_like(u)
    corr = torch.zeros_like(u)
    for t in range(9):
        for s in range(4):
            if t - s >= 0:
                conv[..., t] += k[:, s] * u[..., t - s]  # FFT filters: the first tap on the current step
                corr[..., t] += k[:, 3 - s] * u[..., t - s]  # conv1d filters: the last tap on the current step
    torch.testing.assert_close(sh.fft_conv(u, k), conv, rtol=0, atol=1e-12)
    torch.testing.assert_close(sh.direct_fir(u, k[:, None]), corr, rtol=0, atol=1e-12)


def test_modal_filter_grouped_filters_and_rms_norm_by_hand():
    log_poles = torch.tensor([[[-0.5], [-0.1]], [[-1.0], [-0.2]]], dtype=torch.float64)
    residues = torch.tensor([[1.0, 2.0], [0.5, -1.0]], dtype=torch.float64)
    h = sh.modal_filter(log_poles, residues, 3)
    expected = [[1 + 2, np.exp(-0.5) + 2 * np.exp(-0.1), np.exp(-1) + 2 * np.exp(-0.2)]]
    expected += [[0.5 - 1, 0.5 * np.exp(-1.0) - np.exp(-0.2), 0.5 * np.exp(-2.0) - np.exp(-0.4)]]
    np.testing.assert_allclose(h.numpy(), expected, rtol=1e-12)
    assert sh.grouped(torch.arange(2.0)[:, None], 6)[:, 0].tolist() == [0, 0, 0, 1, 1, 1]
    norm = sh.RMSNorm(2, eps=0.5)
    x = torch.tensor([[3.0, 4.0]])
    # ||x|| / sqrt(2) + eps, not sqrt(mean(x^2) + eps)
    torch.testing.assert_close(norm(x), x / (5 / 2**0.5 + 0.5))


def test_logits_are_causal_and_right_padding_leaves_real_tokens_unchanged(model):
    _, rows = _golden(FIXTURE)
    _, ids, logits, _, _ = rows[0]
    vocab_ids = _golden(FIXTURE)[0]
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


def test_bfloat16_cast_keeps_the_filters_and_rotary_frequencies_in_float32():
    lm = _model(FIXTURE).to(torch.bfloat16)
    kept = [
        *lm.blocks[2].filter.parameters(),
        *lm.blocks[1].filter.parameters(),
        lm.blocks[3].inner_mha_cls.rotary_emb.inv_freq,
    ]
    assert {t.dtype for t in kept} == {torch.float32}
    assert lm.embedding_layer.weight.dtype == torch.bfloat16
    vocab_ids, rows = _golden(FIXTURE)
    for _, ids, logits, _, _ in rows:
        # bfloat16 keeps 8 bits (relative rounding 2**-9 an operation): through five random layers the logits move
        # by a few tenths of a percent of their scale on average, a few percent at the worst position.
        error = np.abs(_forward(lm, ids).logits[0, :, vocab_ids].numpy() - logits) / np.abs(logits).max()
        assert error.mean() < 0.01 and error.max() < 0.15


# --- the folder a user downloads -----------------------------------------------------------------------------


def test_auto_detects_a_pt_and_yaml_folder_and_reads_it_natively(tmp_path, model):
    folder = _user_folder(tmp_path)
    spec = _spec(folder)
    config = read_checkpoint_config(spec)
    assert architecture_of(spec, config) == "evo2"
    assert [f for f in registry.available_families() if registry.family_module(f).claims(config)] == ["evo2"]
    lm = load_model(spec)
    assert lm.gfm_audit_architecture == "evo2"
    for key, value in model.state_dict().items():
        assert torch.equal(lm.state_dict()[key], value), key
    assert load_tokenizer(spec)("ACGT")["input_ids"] == [65, 67, 71, 84]
    assert load_model(_spec(folder, architecture="evo2")) is not None


def test_claims_evo2_configs_only():
    assert evo2.claims(_config(FIXTURE))
    striped_hyena_1 = {"model_type": "stripedhyena", "attn_layer_idxs": [8, 16, 24], "hyena_layer_idxs": [0, 1]}
    hyenadna = yaml.safe_load((FIXTURE.parent / "hyenadna" / "config.json").read_text())
    assert not evo2.claims(striped_hyena_1) and not evo2.claims(hyenadna)


def test_fp8_extra_state_entries_of_a_downloaded_checkpoint_are_dropped(tmp_path, model):
    """The released .pt files carry Transformer Engine's FP8 metadata (BytesIO) beside the weights."""
    folder = _user_folder(tmp_path)
    state = torch.load(folder / CHECKPOINT, weights_only=True)
    state["blocks.0.projections._extra_state"] = io.BytesIO(b"fp8 scaling metadata")
    state["blocks.1.projections._extra_state"] = None
    torch.save(state, folder / CHECKPOINT)
    lm = load_model(_spec(folder))
    assert torch.equal(lm.blocks[0].projections.weight, model.blocks[0].projections.weight)


def test_a_checkpoint_without_the_rotary_buffer_computes_it(tmp_path, model):
    folder = _user_folder(tmp_path)
    state = torch.load(folder / CHECKPOINT, weights_only=True)
    del state["blocks.3.inner_mha_cls.rotary_emb.inv_freq"]
    torch.save(state, folder / CHECKPOINT)
    got = load_model(_spec(folder)).blocks[3].inner_mha_cls.rotary_emb.inv_freq
    torch.testing.assert_close(got, model.blocks[3].inner_mha_cls.rotary_emb.inv_freq, rtol=0, atol=1e-7)


def test_a_folder_without_its_yaml_config_is_refused_naming_what_to_copy(tmp_path):
    folder = _user_folder(tmp_path, yml=False)
    with pytest.raises(InputError) as err:
        load_model(_spec(folder))
    text = _one_line(err)
    assert f"model 'evo': {folder} holds {CHECKPOINT} but neither config.json nor an Evo 2 YAML" in text
    assert "evo2/configs" in text and "evo2-7b-1m.yml" in text


def test_a_config_whose_sizes_disagree_with_the_weights_is_refused(tmp_path):
    folder = _user_folder(tmp_path)
    config = yaml.safe_load((folder / CONFIG).read_text())
    (folder / CONFIG).write_text(yaml.safe_dump({**config, "inner_mlp_size": 64}))
    with pytest.raises(InputError) as err:
        load_model(_spec(folder))
    text = _one_line(err)
    assert f"the weights in {folder} do not fit the model that its {CONFIG} describes" in text
    assert "size mismatch for blocks.0.mlp.l1.weight" in text


class _RunsCode:
    """Unpickling this would create the folder named: the proof that nothing of the file ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (str(self.path),))


def test_a_pt_that_pickles_code_is_refused_unloaded(tmp_path):
    folder = _user_folder(tmp_path)
    marker = tmp_path / "code_ran"
    state = torch.load(folder / CHECKPOINT, weights_only=True)
    state["blocks.0.filter.h"] = _RunsCode(marker)
    torch.save(state, folder / CHECKPOINT)
    with pytest.raises(InputError) as err:
        load_model(_spec(folder))
    text = _one_line(err)
    assert f"{CHECKPOINT} is not a plain state dict (it pickles the Python object" in text
    assert "mkdir" in text and "is not loaded" in text
    assert not marker.exists()


def test_a_missing_weight_is_refused_never_filled_with_random_values(tmp_path):
    folder = _user_folder(tmp_path)
    state = torch.load(folder / CHECKPOINT, weights_only=True)
    del state["blocks.2.filter.log_poles"]
    torch.save(state, folder / CHECKPOINT)
    with pytest.raises(InputError) as err:
        load_model(_spec(folder))
    text = _one_line(err)
    assert "lack 1 tensors (blocks.2.filter.log_poles), which would be left randomly initialised" in text
    extra = torch.load(FIXTURE / CHECKPOINT, weights_only=True) | {"blocks.9.filter.h": torch.zeros(1)}
    torch.save(extra, folder / CHECKPOINT)
    with pytest.raises(InputError, match=f"another architecture or variant than its {CONFIG} says"):
        load_model(_spec(folder))


def test_a_checkpoint_in_parts_or_two_configs_are_refused_with_what_to_do(tmp_path):
    folder = _user_folder(tmp_path)
    (folder / CHECKPOINT).rename(folder / f"{CHECKPOINT}.part0")
    shutil.copy(folder / f"{CHECKPOINT}.part0", folder / f"{CHECKPOINT}.part1")
    with pytest.raises(InputError, match=rf"in parts .*cat {CHECKPOINT}.part0 {CHECKPOINT}.part1 > {CHECKPOINT}$"):
        load_model(_spec(folder))
    shutil.copy(folder / CONFIG, folder / "copy.yml")
    with pytest.raises(InputError, match="holds 2 Evo 2 YAML configs"):
        read_checkpoint_config(_spec(folder))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"final_norm": False}, "final_norm is false, which no released Evo 2 uses"),
        ({"proj_groups": 2}, "proj_groups is 2"),
        ({"hcm_layer_idxs": [1, 2]}, "hcl_layer_idxs has 2, also in hcm_layer_idxs"),
        ({"hcs_layer_idxs": [0]}, r"gives no block kind to layers \[4\]"),
        ({"num_attention_heads": 3}, "hidden_size 32 is not num_attention_heads 3 heads"),
        ({"state_size": 0}, "state_size is 0; expected a positive integer"),
    ],
)
def test_unsupported_or_damaged_configs_stop_with_one_line_naming_the_yaml(change, message):
    config = _config(FIXTURE)
    evo2.check_supported(config, name="tiny")
    with pytest.raises(InputError, match=f"model 'tiny': {CONFIG} ") as err:
        evo2.check_supported({**config, **change}, name="tiny")
    assert re.search(message, _one_line(err))
    missing = {k: v for k, v in config.items() if k != "hidden_size"}
    with pytest.raises(InputError, match=f"{CONFIG} has no hidden_size"):
        evo2.check_supported(missing, name="tiny")
