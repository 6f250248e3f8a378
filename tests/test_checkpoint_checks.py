"""Checks made when a checkpoint is loaded: finite weights, duplicate names of a shared tensor, a tokenizer that fits
the embedding, ``max_length`` within the model's positions; and the switch the extraction stage names.

Each bad checkpoint is a real folder: a golden fixture (tests/fixtures/gfm) or a tiny transformers model copied
and damaged the way a user's download or export would be, loaded through ``ModelSpec`` as a config gives it.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from conftest import DEMO, demo_sequence
from gfm_audit.char_lm import save_char_causal_lm
from gfm_audit.config import validate_config
from gfm_audit.errors import InputError
from gfm_audit.models import ModelSpec, load_model, load_tokenizer
from gfm_audit.privacy.memorisation.extraction import ModelDecoder
from gfm_audit.privacy.scoring import SeqRecord, score_sequences
from safetensors.torch import load_file, save_file

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "gfm"
FREQ = "hyena.backbone.layers.{layer}.mixer.filter_fn.implicit_filter.{index}.freq"


def _fixture(family: str, dst: Path) -> Path:
    """A fixture folder as a user downloads it: config, weights and tokenizer files (no golden data)."""
    ignore = shutil.ignore_patterns("*.npz", "*.py", "README.md", "ph", "ps_*")
    return Path(shutil.copytree(FIXTURES / family, dst, ignore=ignore))


def _records(*texts):
    return [SeqRecord(f"s{i}", f"w{i}", "window", None, None, t) for i, t in enumerate(texts)]


def _score(spec, *texts):
    return score_sequences(spec, _records(*texts), snp_offsets={}, batch_size=2, seed=0, device="cpu")


def _one_line(err) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


@pytest.fixture(scope="module")
def gpt64(tmp_path_factory) -> Path:
    """A GPT-2 character LM with 64 absolute positions and 10 embedding rows, weights saved."""
    return save_char_causal_lm(
        tmp_path_factory.mktemp("gpt64"), hidden=16, layers=1, heads=2, max_positions=64, weights_seed=0
    )


# --- weights that are NaN or infinite ----------------------------------------------------------------------


def _rewrite(weights: Path, change) -> None:
    """Save the file again with ``change(name, tensor)`` applied to every tensor."""
    state = load_file(weights)
    save_file({k: change(k, v) for k, v in state.items()}, weights, metadata={"format": "pt"})


def test_all_nan_weights_stop_scoring_in_one_line_naming_the_folder_and_first_tensor(tmp_path, gpt64):
    from gfm_audit.rule_script import run_rule

    folder = Path(shutil.copytree(gpt64, tmp_path / "nan"))
    _rewrite(folder / "model.safetensors", lambda _, v: torch.full_like(v, float("nan")))
    log = tmp_path / "score.log"
    with pytest.raises(SystemExit):
        run_rule(
            SimpleNamespace(log=[str(log)], rule="score_shard"),
            lambda _: _score(ModelSpec("nan", str(folder), "causal"), demo_sequence(0, 40)),
        )
    errors = [line for line in log.read_text().splitlines() if "ERROR" in line]
    assert len(errors) == 1, log.read_text()
    assert f"model 'nan': the weights in {folder} are not finite" in errors[0]
    assert re.search(r"transformer\.\S+ holds \d+ NaN or infinite values", errors[0])


def test_an_infinite_value_in_one_native_tensor_stops_the_load_naming_it(tmp_path):
    folder = _fixture("hyenadna", tmp_path / "hyena")
    key = "hyena.backbone.layers.1.mlp.fc2.weight"

    def one_infinity(name, tensor):
        if name == key:
            tensor = tensor.clone()
            tensor[3, 7] = float("inf")
        return tensor

    _rewrite(folder / "model.safetensors", one_infinity)
    with pytest.raises(InputError) as err:
        load_model(ModelSpec("hy", str(folder), "causal"))
    assert f"weights in {folder} are not finite: {key} holds 1 NaN or infinite values" in _one_line(err)


def test_finite_half_precision_tensor_whose_sum_overflows_is_finite():
    from gfm_audit.gfm.weights import non_finite

    big = torch.full((100,), 60000.0, dtype=torch.float16)  # float16's largest is 65504: the sum overflows
    assert not torch.isfinite(big.sum())
    assert non_finite([("big", big), ("ids", torch.arange(3))]) is None
    big[7] = float("nan")
    assert non_finite([("big", big)])[0] == "big"


# --- duplicate names of HyenaDNA's shared Sin frequency ------------------------------------------------------


def _hyena_bin(tmp_path: Path, *, differ: bool) -> Path:
    """The fixture re-saved as torch.save(state_dict()) of the original writes it: freq under .1, .3 and .5."""
    folder = _fixture("hyenadna", tmp_path / ("differ" if differ else "same"))
    state = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    for layer in range(2):
        shared = state[FREQ.format(layer=layer, index=1)]
        state[FREQ.format(layer=layer, index=3)] = shared  # one tensor under several names, as torch.save keeps it
        state[FREQ.format(layer=layer, index=5)] = shared + 1 if differ and layer == 1 else shared
    torch.save(state, folder / "pytorch_model.bin")
    return folder


def test_hyenadna_bin_naming_every_copy_of_the_shared_freq_loads_like_the_hub_file(tmp_path):
    folder = _hyena_bin(tmp_path, differ=False)
    assert FREQ.format(layer=0, index=3) in torch.load(folder / "pytorch_model.bin", weights_only=True)
    model = load_model(ModelSpec("hy", str(folder), "causal"))
    reference = load_model(ModelSpec("hy", str(FIXTURES / "hyenadna"), "causal"))
    ours, theirs = model.state_dict(), reference.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_hyenadna_bin_whose_copies_of_the_shared_freq_differ_stops_naming_them(tmp_path):
    folder = _hyena_bin(tmp_path, differ=True)
    with pytest.raises(InputError) as err:
        load_model(ModelSpec("hy", str(folder), "causal"))
    message = _one_line(err)
    assert f"hold {FREQ.format(layer=1, index=5)} and {FREQ.format(layer=1, index=1)}" in message
    assert "different values" in message and "another architecture" not in message


# --- a tokenizer with ids past the embedding ---------------------------------------------------------------


def test_nt_v2_vocab_with_extra_tokens_on_top_stops_naming_both_files_and_sizes(tmp_path):
    folder = _fixture("nt_v2", tmp_path / "nt")
    vocab = folder / "vocab.txt"
    vocab.write_text("".join(f"<extra_{i}>\n" for i in range(5)) + vocab.read_text())
    spec = ModelSpec("nt", str(folder), "masked", masking="exact")
    with pytest.raises(InputError) as err:
        _score(spec, demo_sequence(0, 60))
    message = _one_line(err)
    assert f"tokenizer in {vocab} has 4112 tokens with ids up to 4111" in message
    assert f"model in {folder / 'model.safetensors'} has 4107 embedding rows" in message


def test_token_id_past_the_embedding_rows_stops_in_one_line(tmp_path, gpt64):
    folder = Path(shutil.copytree(gpt64, tmp_path / "a14"))
    settings = json.loads((folder / "tokenizer.json").read_text())
    settings["model"]["vocab"]["A"] = 14
    (folder / "tokenizer.json").write_text(json.dumps(settings))
    with pytest.raises(InputError) as err:
        _score(ModelSpec("a14", str(folder), "causal"), demo_sequence(0, 40))
    message = _one_line(err)
    assert "tokenizer.json has 10 tokens with ids up to 14" in message and "has 10 embedding rows" in message


KINDS = {"hyenadna": "causal", "caduceus": "masked", "dnabert2": "masked", "nt_v2": "masked", "gena_lm": "masked"}


@pytest.mark.parametrize(
    ("folder", "kind"),
    [pytest.param(FIXTURES / f, k, id=f"fixture-{f}") for f, k in KINDS.items()]
    + [pytest.param(DEMO / "gfm" / f, KINDS[f], id=f"demo-{f}") for f in ("hyenadna", "dnabert2")],
)
def test_fixture_and_demo_checkpoints_load_with_an_embedding_padded_past_their_tokenizer(folder, kind):
    """HyenaDNA and Caduceus pad 12 tokens to 16 rows; the others have as many rows as tokens."""
    assert isinstance(load_model(ModelSpec("m", str(folder), kind)), torch.nn.Module)


def test_untrained_demo_architecture_loads_from_scratch():
    from gfm_audit.models import model_from_scratch

    spec = ModelSpec("demo", str(DEMO / "char_lm"), "causal", init="scratch")
    assert model_from_scratch(spec, seed=0).get_input_embeddings().num_embeddings == len(load_tokenizer(spec))


# --- max_length past the model's positions -----------------------------------------------------------------


def test_max_length_past_absolute_positions_stops_naming_the_key_and_both_numbers(gpt64):
    spec = ModelSpec("gpt", str(gpt64), "causal", max_length=4096)
    with pytest.raises(InputError) as err:
        _score(spec, demo_sequence(0, 200))
    message = _one_line(err)
    assert "models.gpt.max_length is 4096" in message and "positions for 64 tokens" in message
    assert "n_positions: 64" in message
    rows = _score(ModelSpec("gpt", str(gpt64), "causal", max_length=64), demo_sequence(0, 40)).to_pylist()
    assert np.isfinite(rows[0]["loss"])


def test_max_length_past_esm_positions_leaves_out_those_up_to_the_padding_id(tmp_path):
    from gfm_audit.char_lm import char_tokenizer
    from transformers import EsmConfig, EsmForMaskedLM

    tokenizer = char_tokenizer()
    config = EsmConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=66,
        position_embedding_type="absolute",
        pad_token_id=tokenizer.pad_token_id,
        mask_token_id=tokenizer.mask_token_id,
        architectures=["EsmForMaskedLM"],
    )
    torch.manual_seed(0)
    EsmForMaskedLM(config).save_pretrained(tmp_path / "esm")
    tokenizer.save_pretrained(tmp_path / "esm")
    # ESM numbers real tokens from padding id + 1 (here 0 + 1): 66 rows hold 65 tokens, and no more.
    model = load_model(ModelSpec("esm", str(tmp_path / "esm"), "masked", max_length=65))
    ids = torch.full((1, 65), tokenizer.convert_tokens_to_ids("A"))
    assert model(input_ids=ids).logits.shape == (1, 65, len(tokenizer))
    with pytest.raises(IndexError):
        model(input_ids=torch.cat([ids, ids[:, :1]], dim=1))
    with pytest.raises(
        InputError, match=r"max_length is 66, .* for 65 tokens \(config.json max_position_embeddings: 66\)"
    ):
        load_model(ModelSpec("esm", str(tmp_path / "esm"), "masked", max_length=66))


def test_max_length_past_hyenadna_max_seq_len_stops_and_rotary_nt_v2_has_no_limit():
    with pytest.raises(
        InputError,
        match=r"models.hy.max_length is 4096, .* positions for 1026 tokens \(config.json max_seq_len: 1026\)",
    ):
        load_model(ModelSpec("hy", str(FIXTURES / "hyenadna"), "causal", max_length=4096))
    load_model(ModelSpec("nt", str(FIXTURES / "nt_v2"), "masked", max_length=4096))


# --- extraction on a tokenizer that joins bases ------------------------------------------------------------


def test_extraction_on_a_kmer_model_names_the_real_switch_to_turn_it_off():
    decoder = ModelDecoder.load(ModelSpec("nt", str(FIXTURES / "nt_v2"), "masked"), device="cpu")
    with pytest.raises(InputError) as err:
        decoder.continue_prefixes([demo_sequence(0, 36)], 6, batch_size=1)
    message = _one_line(err)
    switch = re.search(r"set ([\w.]+): (\w+)", message)
    assert switch, message
    # The key and value the message names are a setting of the schema, and set extraction off.
    *path, leaf = switch.group(1).split(".")
    block = {leaf: yaml.safe_load(switch.group(2))}
    for name in reversed(path):
        block = {name: block}
    settings = validate_config({"reference": {"fasta": "x.fa", "vcf": "x.vcf.gz"}, **block})
    assert settings["memorisation"]["extraction"]["enabled"] is False
