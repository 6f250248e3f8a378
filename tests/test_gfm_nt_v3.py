"""Native Nucleotide Transformer v3 against numbers from the original JAX code (tests/fixtures/gfm/nt_v3)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from gfm_audit.errors import InputError
from gfm_audit.gfm import nt_v3
from gfm_audit.models import ModelSpec, load_model, load_tokenizer
from gfm_audit.privacy.scoring import SeqRecord, score_sequences
from gfm_audit.tokens import encode
from safetensors.torch import load_file, save_file
from tolerances import FLOAT16_RTOL, float32_atol, golden_atol, nt_v3_terms

FIXTURE = Path(__file__).parent / "fixtures" / "gfm" / "nt_v3"


@pytest.fixture(scope="module")
def golden():
    with np.load(FIXTURE / "golden.npz") as g:
        return {k: g[k] for k in g.files}


@pytest.fixture(scope="module")
def config():
    return json.loads((FIXTURE / "config.json").read_text())


@pytest.fixture(scope="module")
def model(config):
    lm = nt_v3.build_lm(config, kind="masked")
    lm.load_state_dict(load_file(FIXTURE / "model.safetensors"), strict=True)
    return lm


def _windows(golden):
    for i, n in enumerate(golden["lengths"]):
        yield i, int(n), str(golden["sequences"][i])


def test_tokenizer_gives_the_original_ids_one_token_per_base(golden):
    tok = nt_v3.load_tokenizer(FIXTURE)
    for i, n, seq in _windows(golden):
        enc = tok(seq, return_offsets_mapping=True, return_special_tokens_mask=True)
        assert enc["input_ids"] == golden["input_ids"][i, :n].tolist()  # the original NucleotideTokenizer's ids
        assert not any(enc["special_tokens_mask"])  # NT v3 adds no <cls> / <eos>
        assert enc["offset_mapping"] == [(k, k + 1) for k in range(len(seq))]
    # The hub tokenizer upper-cases A/T/C/G/N (soft-masked bases) and makes anything else <unk>.
    assert tok("ACGTNacgtnRY")["input_ids"] == [6, 8, 9, 7, 10, 6, 8, 9, 7, 10, 0, 0]
    assert (tok.mask_token_id, tok.pad_token_id, tok.unk_token_id) == (2, 1, 0)


def test_tokenizer_without_vocab_json_uses_the_hub_class_default(tmp_path, golden):
    folder = tmp_path / "nt"
    shutil.copytree(FIXTURE, folder)
    (folder / "vocab.json").unlink()
    seq = str(golden["sequences"][0])
    assert nt_v3.load_tokenizer(folder)(seq)["input_ids"] == nt_v3.load_tokenizer(FIXTURE)(seq)["input_ids"]
    (folder / "vocab.json").write_text(json.dumps({"<unk>": 0, "<pad>": 1, "A": 2}))
    with pytest.raises(InputError, match=r"vocab.json: the NT v3 vocabulary has no 'T'"):
        nt_v3.load_tokenizer(folder)


def test_strict_load_reproduces_the_original_logits(model, golden):
    """Each window alone: the original ran it padded to the next multiple of 2**num_downsamples, as we pad it."""
    for i, n, _ in _windows(golden):
        expected = golden["logits"][i, :n]
        with torch.no_grad():
            ours = model(torch.from_numpy(golden["input_ids"][i : i + 1, :n])).logits[0]
        assert ours.shape == expected.shape and ours.dtype == torch.float32
        np.testing.assert_allclose(ours.numpy(), expected, rtol=0, atol=golden_atol("nt_v3", expected, n))


def test_float64_forward_agrees_with_the_original_on_every_cpu(model, golden):
    """Only the golden file's own float32 rounding is left, so this holds alike under every CPU capability."""
    wide = nt_v3.build_lm(json.loads((FIXTURE / "config.json").read_text()), kind="masked").double()
    wide.load_state_dict(model.state_dict())
    for i, n, _ in _windows(golden):
        expected = golden["logits"][i, :n]
        with torch.no_grad():
            ours = wide(torch.from_numpy(golden["input_ids"][i : i + 1, :n])).logits[0].numpy()
        np.testing.assert_allclose(ours, expected, rtol=0, atol=golden_atol("nt_v3", expected, n, implementations=1))


def test_whole_blocks_of_padding_are_masked_as_the_original_does_and_still_move_the_logits(model, golden, config):
    """The three windows as one batch padded to the longest: the original masks all-padding blocks out of
    attention, but its convolutions and pooling still read the padding, so the real tokens' logits differ from
    the window alone. The architecture does not make logits independent of padding; scoring therefore pads
    every window alone (test_scores_do_not_depend_on_the_other_windows_of_a_batch)."""
    ids, expected = golden["batch_input_ids"], golden["batch_logits"]
    with torch.no_grad():
        ours = model(torch.from_numpy(ids)).logits.numpy()
    np.testing.assert_allclose(ours, expected, rtol=0, atol=golden_atol("nt_v3", expected, ids.shape[1]))
    block = 2 ** config["num_downsamples"]
    for i, n, _ in _windows(golden):
        moved = np.abs(expected[i, :n] - golden["logits"][i, :n]).max()
        if -(-n // block) * block == ids.shape[1]:  # the same padding as alone: the same logits
            assert moved <= golden_atol("nt_v3", expected, ids.shape[1])
        else:  # whole blocks more padding: moved far beyond rounding, in the original's own numbers
            assert moved > 100 * golden_atol("nt_v3", expected, ids.shape[1])


def test_transposed_convolution_without_skips_matches_the_original_too():
    """The original's other up-sampling (stride-2 transposed convolution, weight (C_in, C_out, K)) and
    use_skip_connection false, which no released checkpoint uses, on random ids with <mask> tokens."""
    with np.load(FIXTURE / "variant.npz") as v:
        variant = {k: v[k] for k in v.files}
    config = json.loads(str(variant["config"]))
    lm = nt_v3.build_lm(config, kind="masked")
    state = {k.removeprefix("state/"): torch.from_numpy(a) for k, a in variant.items() if k.startswith("state/")}
    lm.load_state_dict(state, strict=True)
    with torch.no_grad():
        ours = lm(torch.from_numpy(variant["input_ids"])).logits.numpy()
    expected = variant["logits"]
    atol = float32_atol(expected, nt_v3_terms(config, expected.shape[1]))
    np.testing.assert_allclose(ours, expected, rtol=0, atol=atol)


def test_weight_names_are_the_hub_names(model):
    names = set(model.state_dict())
    assert names == set(load_file(FIXTURE / "model.safetensors"))
    assert all(n.startswith("core.") for n in names)
    buffers = {n for n in names if n.endswith("inv_freq")}
    assert buffers and all(re.fullmatch(nt_v3.DERIVED_BUFFERS[0], n) for n in buffers)


def test_claims_pretrained_nt_v3_only(config):
    assert nt_v3.claims(config)
    prefixed = {"AutoModelForMaskedLM": "InstaDeepAI/NTv3_8M_pre--modeling_ntv3_pretrained.NTv3PreTrained"}
    assert nt_v3.claims({"auto_map": prefixed})
    assert not nt_v3.claims({"model_type": "esm", "auto_map": {"AutoModelForMaskedLM": "modeling_esm.EsmForMaskedLM"}})
    assert not nt_v3.claims({"model_type": "ntv3_posttrained"})
    assert not nt_v3.claims({"model_type": "gpt2"})


def test_check_supported_names_the_key(config):
    nt_v3.check_supported(config, name="tiny")
    cases = [
        ({"conditions_vocab_size": [30]}, "post-trained"),
        ({"num_hidden_layers_head": 1}, "num_hidden_layers_head is 1"),
        ({"deconv_upsample_type": "nearest"}, "deconv_upsample_type 'nearest'"),
        ({"deconv_upsample_type": "conv_transpose", "deconv_phase": "even"}, "deconv_phase 'even'"),
        ({"key_size": 4}, "key_size 4 x attention_heads 2 is not embed_dim 16"),
    ]
    for change, message in cases:
        with pytest.raises(InputError, match=message):
            nt_v3.check_supported({**config, **change}, name="tiny")
    without = {k: v for k, v in config.items() if k != "embed_dim"}
    with pytest.raises(InputError, match="config.json has no embed_dim"):
        nt_v3.check_supported(without, name="tiny")
    with pytest.raises(InputError, match="kind 'causal'"):
        nt_v3.build_lm(config, kind="causal")


# --- through the loader, as a user's config reaches it -----------------------------------------------------------


def _copy(tmp_path) -> Path:
    folder = tmp_path / "ntv3"
    shutil.copytree(FIXTURE, folder)
    for extra in ("golden.npz", "variant.npz", "make_golden.py", "README.md"):
        (folder / extra).unlink(missing_ok=True)
    return folder


def _spec(folder, **fields) -> ModelSpec:
    return ModelSpec("ntv3", str(folder), "masked", **fields)


def test_input_shorter_than_one_down_sampling_block_is_refused_in_one_line(tmp_path, config):
    model = load_model(_spec(FIXTURE))
    block = 2 ** config["num_downsamples"]
    with pytest.raises(
        InputError, match=rf"model 'ntv3' \({re.escape(str(FIXTURE))}\): an input of {block - 1} tokens"
    ) as err:
        model(torch.full((1, block - 1), 6))
    assert "\n" not in str(err.value) and f"at least {block} bases" in str(err.value)
    records = [SeqRecord("s0", "w0", "window", None, None, "ACGTACG"[: block - 1])]
    with pytest.raises(InputError, match="shorter than one down-sampling block"):
        score_sequences(_spec(FIXTURE), records, snp_offsets={}, batch_size=4, seed=0, device="cpu")
    with torch.no_grad():
        assert model(torch.full((1, block), 6)).logits.shape == (1, block, config["alphabet_size"])


def test_config_whose_sizes_disagree_with_the_weights_is_refused(tmp_path, config):
    folder = _copy(tmp_path)
    (folder / "config.json").write_text(json.dumps({**config, "ffn_embed_dim": 48}))
    with pytest.raises(InputError, match=r"model 'ntv3': the weights in .* do not fit .*fc1") as err:
        load_model(_spec(folder))
    assert "\n" not in str(err.value)


def test_a_missing_weight_is_refused_never_left_random(tmp_path):
    folder = _copy(tmp_path)
    state = load_file(folder / "model.safetensors")
    del state["core.deconv_tower_blocks.1.res_conv.conv_block.conv.weight"]
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(InputError, match=r"lack 1 tensors \(core\.deconv_tower_blocks\.1\.res_conv") as err:
        load_model(_spec(folder))
    assert "allow_missing_weights" in str(err.value) and "\n" not in str(err.value)
    # The rotary buffers are the exception: config.json fixes them, so a file may leave them out.
    state = load_file(FIXTURE / "model.safetensors")
    save_file({k: v for k, v in state.items() if "inv_freq" not in k}, folder / "model.safetensors")
    assert torch.equal(
        load_model(_spec(folder)).state_dict()["core.lm_head.head.weight"], state["core.lm_head.head.weight"]
    )


# --- scoring: exact, sampled and stride masking ------------------------------------------------------------------


def _records(golden):
    return [SeqRecord(f"s{i}", f"w{i}", "window", None, None, seq) for i, _, seq in _windows(golden)]


def _masked_logprobs(model, ids: np.ndarray, positions, mask_id: int) -> np.ndarray:
    x = torch.as_tensor(ids).reshape(1, -1).clone()
    x[0, list(positions)] = mask_id
    with torch.no_grad():
        logp = torch.log_softmax(model(x).logits[0].double(), -1)
    return np.array([float(logp[p, ids[p]]) for p in positions])


@pytest.fixture(scope="module")
def exact_rows(golden):
    torch.set_num_threads(1)
    spec = _spec(FIXTURE, masking="exact")
    return score_sequences(spec, _records(golden), snp_offsets={}, batch_size=64, seed=0, device="cpu").to_pylist()


def test_exact_scores_every_base_once_and_never_a_pad_position(exact_rows, golden):
    model, tok = load_model(_spec(FIXTURE)), load_tokenizer(_spec(FIXTURE))
    for row, (_, n, seq) in zip(exact_rows, _windows(golden), strict=True):
        # One score per base, at the bases' own offsets: no padding position (n and beyond) is ever scored.
        assert row["token_start"] == list(range(n)) and row["token_end"] == list(range(1, n + 1))
        ids = encode(tok, seq).ids
        expected = [_masked_logprobs(model, ids, [p], tok.mask_token_id)[0] for p in range(0, n, 7)]
        np.testing.assert_allclose(row["token_logprob"][::7], expected, rtol=FLOAT16_RTOL, atol=FLOAT16_RTOL)


def test_sampled_scores_are_the_exact_scores_at_the_sampled_bases(exact_rows, golden):
    spec = _spec(FIXTURE, masking="sampled", mask_fraction=0.2)
    rows = score_sequences(spec, _records(golden), snp_offsets={}, batch_size=64, seed=3, device="cpu").to_pylist()
    for row, exact in zip(rows, exact_rows, strict=True):
        starts = row["token_start"]
        assert 0 < len(starts) < len(exact["token_start"])
        at = np.asarray(exact["token_logprob"])[starts]
        np.testing.assert_allclose(row["token_logprob"], at, rtol=FLOAT16_RTOL, atol=FLOAT16_RTOL)


def test_stride_masks_every_kth_base_together(golden):
    k = 5
    spec = _spec(FIXTURE, masking="stride", stride_k=k)
    rows = score_sequences(spec, _records(golden), snp_offsets={}, batch_size=4, seed=0, device="cpu").to_pylist()
    model, tok = load_model(spec), load_tokenizer(spec)
    for row, (_, n, seq) in zip(rows, _windows(golden), strict=True):
        assert row["token_start"] == list(range(n))
        ids = encode(tok, seq).ids
        expected = np.zeros(n)
        for j in range(k):  # pass j masks the scored tokens whose rank is j modulo k, all at once
            positions = list(range(j, n, k))
            expected[positions] = _masked_logprobs(model, ids, positions, tok.mask_token_id)
        np.testing.assert_allclose(row["token_logprob"], expected, rtol=FLOAT16_RTOL, atol=FLOAT16_RTOL)


def test_scores_do_not_depend_on_the_other_windows_of_a_batch(exact_rows, golden):
    """Windows of three lengths scored together (one batch of 64 copies would pad them to the longest) give the
    scores each gets alone: the model takes no attention mask, so the scorer never pads a window to another's
    length, and the model pads each to its own next multiple of the down-sampling block."""
    records = _records(golden)
    for i, record in enumerate(records[:2]):
        alone = score_sequences(
            _spec(FIXTURE, masking="exact"), [record], snp_offsets={}, batch_size=64, seed=0, device="cpu"
        ).to_pylist()[0]
        np.testing.assert_array_equal(alone["token_logprob"], exact_rows[i]["token_logprob"])
