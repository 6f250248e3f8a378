"""Native Nucleotide Transformer v2 against numbers from the original hub code (tests/fixtures/gfm/nt_v2)."""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from gfm_audit.errors import InputError
from gfm_audit.gfm import nt_v2
from safetensors.torch import load_file
from tolerances import config_terms, float32_atol, golden_atol

FIXTURE = Path(__file__).parent / "fixtures" / "gfm" / "nt_v2"


@pytest.fixture(scope="module")
def golden():
    return np.load(FIXTURE / "golden.npz")


@pytest.fixture(scope="module")
def config():
    return json.loads((FIXTURE / "config.json").read_text())


@pytest.fixture(scope="module")
def model(config):
    lm = nt_v2.build_lm(config, kind="masked")
    lm.load_state_dict(load_file(FIXTURE / "model.safetensors"), strict=True)
    return lm


def test_tokenizer_gives_the_original_ids_and_offsets_tile_each_window(golden):
    tok = nt_v2.load_tokenizer(FIXTURE)
    for seq, ids, mask in zip(golden["sequences"], golden["input_ids"], golden["attention_mask"], strict=True):
        seq = str(seq)
        enc = tok(seq, return_offsets_mapping=True, return_special_tokens_mask=True)
        assert enc["input_ids"] == ids[mask == 1].tolist()
        special = np.asarray(enc["special_tokens_mask"], dtype=bool)
        assert special.tolist() == [True] + [False] * (len(special) - 1)  # <cls> only: the v2 files set no eos
        spans = np.asarray(enc["offset_mapping"])[~special]
        assert spans[0, 0] == 0 and spans[-1, 1] == len(seq)
        assert (spans[1:, 0] == spans[:-1, 1]).all()
    # 185 bp = 30 six-mers + 5 single bases; the N window splits its 6-mers around the N.
    assert (golden["attention_mask"].sum(1) == [26, 36, 26]).all()
    assert tok.mask_token == "<mask>" and tok.mask_token_id == 2 and tok.pad_token_id == 1 and tok.eos_token is None


def test_tokenizer_matches_transformers_esm_tokenizer_on_mixed_case_n_and_odd_lengths():
    from transformers import EsmTokenizer

    reference = EsmTokenizer.from_pretrained(FIXTURE)
    ours = nt_v2.load_tokenizer(FIXTURE)
    rng = random.Random(12)
    for _ in range(400):
        alphabet = rng.choice(["ACGT", "ACGTN", "ACGTNacgtn", "ACGTRYacgt"])
        seq = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
        assert ours(seq)["input_ids"] == reference(seq)["input_ids"], seq


def test_tokenizer_appends_eos_when_the_files_do_not_null_it(tmp_path):
    folder = tmp_path / "nt"
    shutil.copytree(FIXTURE, folder)
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "EsmTokenizer"}))
    ids = nt_v2.load_tokenizer(folder)("ACGTACGTA")["input_ids"]
    # <cls>, ACGTAC, G, T, A, <eos>: the EsmTokenizer default when no file says otherwise
    assert ids[0] == 3 and ids[-1] == 4 and len(ids) == 6


def test_strict_load_reproduces_the_original_logits(model, golden):
    with torch.no_grad():
        out = model(
            torch.from_numpy(golden["input_ids"]),
            torch.from_numpy(golden["attention_mask"]),
            output_hidden_states=True,
        )
    expected, hidden = golden["logits"], golden["last_hidden_state"]
    # float32, same operation order except the fused attention kernel: differences are rounding only
    length = expected.shape[1]
    np.testing.assert_allclose(out.logits.numpy(), expected, rtol=0, atol=golden_atol("nt_v2", expected, length))
    np.testing.assert_allclose(out.hidden_states[-1].numpy(), hidden, rtol=0, atol=golden_atol("nt_v2", hidden, length))
    assert out.logits.dtype == torch.float32


def test_padding_does_not_change_a_window(model, golden):
    k = int(np.argmin(golden["attention_mask"].sum(1)))
    n = int(golden["attention_mask"][k].sum())
    with torch.no_grad():
        alone = model(torch.from_numpy(golden["input_ids"][k : k + 1, :n])).logits[0].numpy()
    np.testing.assert_allclose(alone, golden["logits"][k, :n], rtol=0, atol=golden_atol("nt_v2", alone, n))


def test_config_switches_of_the_original_code_match_it_too():
    """Absolute positions, embedding LayerNorm, mask-dropout rescaling, feed-forward biases and a tied decoder,
    which no v2 hub checkpoint uses, against the original code's logits on a padded batch with masked tokens."""
    variant = np.load(FIXTURE / "variant.npz")
    lm = nt_v2.build_lm(json.loads(str(variant["config"])), kind="masked")
    state = {k.removeprefix("state/"): torch.from_numpy(variant[k]) for k in variant.files if k.startswith("state/")}
    lm.load_state_dict(state, strict=True)
    assert lm.lm_head.decoder.weight is lm.esm.embeddings.word_embeddings.weight
    with torch.no_grad():
        logits = lm(torch.from_numpy(variant["input_ids"]), torch.from_numpy(variant["attention_mask"])).logits
    expected = variant["logits"]
    atol = float32_atol(expected, config_terms(json.loads(str(variant["config"])), expected.shape[1]))
    np.testing.assert_allclose(logits.numpy(), expected, rtol=0, atol=atol)


def test_weight_names_are_the_originals_and_the_tie_is_named(model):
    names = set(model.state_dict())
    assert names == set(load_file(FIXTURE / "model.safetensors"))
    for weight, tied_to in nt_v2.TIED_WEIGHTS.items():
        assert weight in names and tied_to in names
        assert model.state_dict()[weight].shape == model.state_dict()[tied_to].shape
    # untied, as the v2 configs say; tied (one tensor) where a config asks for it or leaves it to the default
    assert model.lm_head.decoder.weight is not model.esm.embeddings.word_embeddings.weight
    config = json.loads((FIXTURE / "config.json").read_text())
    del config["tie_word_embeddings"]
    tied = nt_v2.build_lm(config, kind="masked")
    assert tied.lm_head.decoder.weight is tied.esm.embeddings.word_embeddings.weight
    assert all(re.fullmatch(nt_v2.DERIVED_BUFFERS[0], n) for n in names if n.endswith("inv_freq"))


def test_claims_nt_v2_but_not_nt_v1_or_other_families(config):
    assert nt_v2.claims(config)
    prefixed = {"AutoConfig": "InstaDeepAI/nucleotide-transformer-v2-50m-multi-species--esm_config.EsmConfig"}
    assert nt_v2.claims({**config, "auto_map": prefixed})
    nt_v1 = {k: v for k, v in config.items() if k != "auto_map"}
    assert not nt_v2.claims(nt_v1)
    assert not nt_v2.claims({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]})
    assert not nt_v2.claims({"model_type": "hyenadna", "auto_map": {"AutoConfig": "configuration_hyena.HyenaConfig"}})
    assert not nt_v2.claims({"model_type": "bert", "auto_map": {"AutoModelForMaskedLM": "bert_layers.BertForMaskedLM"}})
    assert not nt_v2.claims({"model_type": "bert", "auto_map": {"AutoModel": "modeling_bert.BertModel"}})


def test_check_supported_names_the_key(config):
    nt_v2.check_supported(config, name="tiny")
    no_head = {**config, "auto_map": {"AutoConfig": "esm_config.EsmConfig"}}
    with pytest.raises(InputError, match="tiny.*AutoModelForMaskedLM"):
        nt_v2.check_supported(no_head, name="tiny")
    with pytest.raises(InputError, match="position_embedding_type 'relative_key'"):
        nt_v2.check_supported({**config, "position_embedding_type": "relative_key"}, name="tiny")
    with pytest.raises(InputError, match="kind 'causal'"):
        nt_v2.build_lm(config, kind="causal")


def test_missing_vocab_is_named(tmp_path):
    folder = tmp_path / "nt"
    shutil.copytree(FIXTURE, folder)
    (folder / "vocab.txt").unlink()
    with pytest.raises(InputError, match="vocab.txt: missing"):
        nt_v2.load_tokenizer(folder)
