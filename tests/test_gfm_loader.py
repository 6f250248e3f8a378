"""The loader: architecture detection, strict weights on both paths, bad checkpoints in one line each,
tokens that stand for no DNA, attention masks only where a model takes them.

The native path is exercised here with a toy family module built in the test (a
stand-in with the family contract's attributes), so that these checks do not
depend on which real family modules are installed; tests/test_gfm_families.py
runs the real ones on their golden fixtures.
"""

import itertools
import json
import shutil
import types

import numpy as np
import pytest
import torch
from conftest import demo_sequence
from gfm_audit.char_lm import char_tokenizer
from gfm_audit.errors import InputError
from gfm_audit.gfm import registry
from gfm_audit.gfm.loader import accepts_attention_mask
from gfm_audit.models import ModelSpec, load_model, load_tokenizer
from gfm_audit.privacy.scoring import SeqRecord, score_sequences
from safetensors.torch import load_file, save_file


def _records(*texts):
    return [SeqRecord(f"s{i}", f"w{i}", "window", None, None, t) for i, t in enumerate(texts)]


def _save_weights(folder, state):
    save_file({k: v.contiguous() for k, v in state.items()}, folder / "model.safetensors", metadata={"format": "pt"})


def _copy(src, dst, **config_changes):
    shutil.copytree(src, dst)
    config = json.loads((dst / "config.json").read_text())
    config.update(config_changes)
    (dst / "config.json").write_text(json.dumps(config))
    return dst


# --- a toy native family: bidirectional, no attention mask, LM head tied to the embeddings ----------------


class _ToyLM(torch.nn.Module):
    """Every position sees the mean of the whole input, padding included: padding would change its logits."""

    def __init__(self, vocab: int, hidden: int):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, hidden)
        self.mix = torch.nn.Linear(hidden, hidden)
        self.head = torch.nn.Linear(hidden, vocab, bias=False)
        self.register_buffer("positions", torch.arange(4))  # fixed by the config alone

    def forward(self, input_ids):
        h = self.embed(input_ids)
        h = torch.tanh(h + self.mix(h.mean(dim=1, keepdim=True)))
        return types.SimpleNamespace(logits=self.head(h), hidden_states=(h,))


def _toy_family():
    module = types.ModuleType("toyfam")
    module.ARCHITECTURE = "toyfam"
    module.KINDS = ("masked",)
    module.ACCEPTS_ATTENTION_MASK = False
    module.TIED_WEIGHTS = {"head.weight": "embed.weight"}
    module.DERIVED_BUFFERS = (r"positions",)
    module.UNUSED_WEIGHT_PREFIXES = ("pooler.",)
    module.claims = lambda config: config.get("model_type") == "toyfam"

    def check_supported(config, *, name):
        if config.get("sparse"):
            raise InputError(f"model '{name}': config.json key sparse: toyfam's sparse variant is not implemented")

    module.check_supported = check_supported
    module.build_lm = lambda config, kind: _ToyLM(config["vocab_size"], config["hidden_size"]).eval()
    module.load_tokenizer = lambda folder: char_tokenizer()
    return module


@pytest.fixture
def toy_family(monkeypatch):
    monkeypatch.setattr(registry, "FAMILIES", (*registry.FAMILIES, "toyfam"))
    monkeypatch.setitem(registry._modules, "toyfam", _toy_family())
    return registry._modules["toyfam"]


@pytest.fixture
def toy_checkpoint(tmp_path):
    """A toyfam folder as a hub download would be: config.json with auto_map, weights without the tied head."""
    folder = tmp_path / "toy"
    folder.mkdir()
    vocab = len(char_tokenizer())
    config = {
        "model_type": "toyfam",
        "architectures": ["ToyForMaskedLM"],
        "auto_map": {"AutoModelForMaskedLM": "modeling_toy.ToyForMaskedLM"},
        "vocab_size": vocab,
        "hidden_size": 8,
    }
    (folder / "config.json").write_text(json.dumps(config))
    torch.manual_seed(0)
    state = _ToyLM(vocab, 8).state_dict()
    state.pop("head.weight")
    _save_weights(folder, state)
    return folder


def test_auto_reads_a_claimed_checkpoint_natively_without_its_code_and_ties_the_head(toy_family, toy_checkpoint):
    spec = ModelSpec("toy", str(toy_checkpoint), "masked")  # trust_remote_code false, auto_map present
    model = load_model(spec)
    state = load_file(toy_checkpoint / "model.safetensors")
    assert isinstance(model, _ToyLM)
    assert torch.equal(model.head.weight, state["embed.weight"]) and model.head.weight is model.embed.weight
    assert not accepts_attention_mask(model)
    forced = ModelSpec("toy", str(toy_checkpoint), "masked", architecture="transformers")
    with pytest.raises(InputError, match=r"own Python code .*architecture is transformers.*trust_remote_code"):
        load_model(forced)


def test_native_weights_missing_extra_or_untied_stop_naming_the_keys(toy_family, toy_checkpoint, tmp_path):
    state = load_file(toy_checkpoint / "model.safetensors")
    missing = _copy(toy_checkpoint, tmp_path / "missing")
    _save_weights(missing, {k: v for k, v in state.items() if k != "mix.bias"})
    with pytest.raises(InputError, match=r"model 'toy': the weights in .* lack 1 tensors \(mix.bias\)"):
        load_model(ModelSpec("toy", str(missing), "masked"))
    model = load_model(ModelSpec("toy", str(missing), "masked", allow_missing_weights=True))
    assert torch.equal(model.mix.weight, state["mix.weight"])

    extra = _copy(toy_checkpoint, tmp_path / "extra")
    _save_weights(extra, {**state, "encoder.layer.0.sparse.weight": torch.zeros(2)})
    with pytest.raises(InputError, match=r"have 1 tensors the model does not \(encoder.layer.0.sparse.weight\)"):
        load_model(ModelSpec("toy", str(extra), "masked"))

    untied = _copy(toy_checkpoint, tmp_path / "untied", tie_word_embeddings=False)
    with pytest.raises(InputError, match=r"lack 1 tensors \(head.weight\)"):
        load_model(ModelSpec("toy", str(untied), "masked"))

    shapes = _copy(toy_checkpoint, tmp_path / "shapes", hidden_size=4)
    with pytest.raises(InputError, match=r"do not fit the model that its config.json describes \(size mismatch"):
        load_model(ModelSpec("toy", str(shapes), "masked"))


def test_derived_buffers_may_be_absent_and_a_pretraining_head_is_dropped(toy_family, toy_checkpoint, tmp_path):
    state = load_file(toy_checkpoint / "model.safetensors")
    folder = _copy(toy_checkpoint, tmp_path / "other")
    _save_weights(
        folder, {**{k: v for k, v in state.items() if k != "positions"}, "pooler.dense.weight": torch.ones(2)}
    )
    model = load_model(ModelSpec("toy", str(folder), "masked"))
    assert torch.equal(model.positions, torch.arange(4)) and torch.equal(model.mix.weight, state["mix.weight"])
    _save_weights(folder, {**state, "pooled.dense.weight": torch.ones(2)})
    with pytest.raises(InputError, match=r"tensors the model does not \(pooled.dense.weight\)"):
        load_model(ModelSpec("toy", str(folder), "masked"))


class _SelfTiedLM(_ToyLM):
    """Ties its head in the module itself, as the families do for their config."""

    def __init__(self, vocab: int, hidden: int):
        super().__init__(vocab, hidden)
        self.head.weight = self.embed.weight


def test_a_weight_the_module_itself_ties_is_taken_from_its_partner(toy_family, toy_checkpoint, monkeypatch):
    monkeypatch.setattr(toy_family, "TIED_WEIGHTS", {})
    with pytest.raises(InputError, match=r"lack 1 tensors \(head.weight\)"):
        load_model(ModelSpec("toy", str(toy_checkpoint), "masked"))
    monkeypatch.setattr(toy_family, "build_lm", lambda config, kind: _SelfTiedLM(config["vocab_size"], 8).eval())
    model = load_model(ModelSpec("toy", str(toy_checkpoint), "masked"))
    assert torch.equal(model.head.weight, load_file(toy_checkpoint / "model.safetensors")["embed.weight"])


def test_native_weights_from_a_plain_pickled_state_dict_load_and_pickled_code_is_refused(
    toy_family, toy_checkpoint, tmp_path
):
    state = load_file(toy_checkpoint / "model.safetensors")
    folder = _copy(toy_checkpoint, tmp_path / "bin")
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    model = load_model(ModelSpec("toy", str(folder), "masked"))
    assert torch.equal(model.mix.weight, state["mix.weight"]) and model.head.weight is model.embed.weight
    torch.save({**state, "hook": print}, folder / "pytorch_model.bin")
    with pytest.raises(InputError, match=r"bin is not a plain state dict \(it pickles the Python object print\)"):
        load_model(ModelSpec("toy", str(folder), "masked"))


def test_native_family_rejects_its_unsupported_variant_and_the_wrong_kind(toy_family, toy_checkpoint, tmp_path):
    sparse = _copy(toy_checkpoint, tmp_path / "sparse", sparse=True)
    with pytest.raises(InputError, match=r"sparse variant is not implemented"):
        load_model(ModelSpec("toy", str(sparse), "masked"))
    with pytest.raises(InputError, match=r"is a toyfam checkpoint, .* set models.toy.kind: masked"):
        load_model(ModelSpec("toy", str(_copy(toy_checkpoint, tmp_path / "a", architectures=[])), "causal"))


def test_a_family_this_installation_lacks_is_named(toy_checkpoint, monkeypatch):
    monkeypatch.setitem(registry._modules, "caduceus", None)
    with pytest.raises(InputError, match=r"architecture is caduceus, which this installation .* does not implement"):
        load_model(ModelSpec("toy", str(toy_checkpoint), "masked", architecture="caduceus"))


def test_model_without_attention_mask_is_scored_in_batches_of_one_length(toy_family, toy_checkpoint):
    """Padding would change every logit of this model: batched scores must equal one sequence at a time."""
    spec = ModelSpec("toy", str(toy_checkpoint), "masked", masking="exact")
    texts = [demo_sequence(0, 12), demo_sequence(100, 109), demo_sequence(200, 212), demo_sequence(300, 305)]
    rows = score_sequences(spec, _records(*texts), snp_offsets={}, batch_size=16, seed=0, device="cpu").to_pylist()
    model, tok = load_model(spec), load_tokenizer(spec)
    for row, text in zip(rows, texts, strict=True):
        ids = tok(text)["input_ids"]
        expected = []
        for t in range(1, len(ids)):
            masked = list(ids)
            masked[t] = tok.mask_token_id
            with torch.no_grad():
                logp = torch.log_softmax(model(torch.tensor([masked])).logits[0, t].double(), -1)
            expected.append(float(logp[ids[t]]))
        np.testing.assert_allclose(row["token_logprob"], expected, rtol=2e-3, atol=2e-3)


# --- transformers-class checkpoints ------------------------------------------------------------------


def test_folder_without_config_json_is_named(tmp_path):
    (tmp_path / "ckpt").mkdir()
    with pytest.raises(InputError, match=r"model 'm': .*ckpt has no config.json"):
        load_model(ModelSpec("m", str(tmp_path / "ckpt"), "causal"))


def test_unknown_model_type_is_named(tmp_path, tiny_causal):
    folder = _copy(tiny_causal, tmp_path / "odd", model_type="dna_wizard")
    with pytest.raises(InputError, match=r"model_type 'dna_wizard', which is neither a family .* nor an architecture"):
        load_model(ModelSpec("m", str(folder), "causal"))


def test_transformers_weights_missing_a_key_stop_unless_allowed(tmp_path, tiny_causal):
    folder = _copy(tiny_causal, tmp_path / "missing")
    state = load_file(tiny_causal / "model.safetensors")
    _save_weights(folder, {k: v for k, v in state.items() if k != "transformer.h.1.ln_2.weight"})
    with pytest.raises(InputError) as err:
        load_model(ModelSpec("gpt", str(folder), "causal"))
    assert "model 'gpt'" in str(err.value) and "(transformer.h.1.ln_2.weight)" in str(err.value)
    assert "allow_missing_weights" in str(err.value)
    model = load_model(ModelSpec("gpt", str(folder), "causal", allow_missing_weights=True))
    assert torch.equal(model.transformer.h[0].ln_2.weight, state["transformer.h.0.ln_2.weight"])


def test_transformers_weights_with_an_extra_key_stop(tmp_path, tiny_causal):
    folder = _copy(tiny_causal, tmp_path / "extra")
    state = load_file(tiny_causal / "model.safetensors")
    _save_weights(folder, {**state, "transformer.h.2.ln_1.weight": torch.ones(32)})
    with pytest.raises(InputError, match=r"model 'gpt': .* 1 tensors the model does not \(transformer.h.2.ln_1"):
        load_model(ModelSpec("gpt", str(folder), "causal"))


def test_tied_weights_that_transformers_ties_are_not_missing(tiny_causal, tiny_masked):
    assert "lm_head.weight" not in load_file(tiny_causal / "model.safetensors")
    model = load_model(ModelSpec("gpt", str(tiny_causal), "causal"))
    assert torch.equal(model.lm_head.weight, model.transformer.wte.weight)
    esm = load_model(ModelSpec("esm", str(tiny_masked), "masked"))
    assert torch.equal(esm.lm_head.decoder.weight, esm.esm.embeddings.word_embeddings.weight)


def test_untied_decoder_dropped_from_the_file_is_not_left_random(tmp_path, tiny_masked):
    folder = _copy(tiny_masked, tmp_path / "untied", tie_word_embeddings=False)
    with pytest.raises(InputError, match=r"lack 1 tensors \(lm_head.decoder.weight\)"):
        load_model(ModelSpec("esm", str(folder), "masked"))


def test_tokenizer_files_missing_are_named(tmp_path, tiny_causal):
    folder = tmp_path / "notok"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_causal / name, folder)
    with pytest.raises(InputError, match=r"model 'm': .*notok has no tokenizer files"):
        load_tokenizer(ModelSpec("m", str(folder), "causal"))


def test_remote_code_that_fails_to_import_is_one_line_naming_transformers(tmp_path, tiny_causal):
    import transformers

    folder = tmp_path / "remote"
    shutil.copytree(tiny_causal, folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_broken.BrokenForCausalLM"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "modeling_broken.py").write_text("raise ImportError(\"cannot import name 'gone_helper'\")\n")
    spec = ModelSpec("broken", str(folder), "causal", trust_remote_code=True)
    with pytest.raises(InputError) as err:
        load_model(spec)
    message = str(err.value)
    assert "\n" not in message and "model 'broken'" in message
    assert f"transformers {transformers.__version__}" in message and "gone_helper" in message
    assert "architecture" in message


def test_remote_code_that_loads_but_fails_in_its_forward_pass_is_one_line(tmp_path, tiny_causal):
    folder = tmp_path / "remote_forward"
    shutil.copytree(tiny_causal, folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_old.OldForCausalLM"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "modeling_old.py").write_text(
        "from transformers import GPT2LMHeadModel\n\n\n"
        "class OldForCausalLM(GPT2LMHeadModel):\n"
        "    def forward(self, input_ids=None, **kwargs):\n"
        "        raise AttributeError(\"'GPT2Config' object has no attribute 'is_decoder'\")\n"
    )
    spec = ModelSpec("old", str(folder), "causal", trust_remote_code=True)
    with pytest.raises(InputError) as err:
        score_sequences(spec, _records(demo_sequence(0, 20)), snp_offsets={}, batch_size=2, seed=0, device="cpu")
    message = str(err.value)
    assert (
        "\n" not in message and "model 'old'" in message and "fails in the forward pass under transformers" in message
    )
    assert "is_decoder" in message


def test_max_position_embeddings_shorter_than_the_window_stops(tmp_path, tiny_masked):
    folder = _copy(tiny_masked, tmp_path / "short", max_position_embeddings=22)  # ESM: 20 tokens
    spec = ModelSpec("short", str(folder), "masked", masking="exact")
    with pytest.raises(InputError, match=r"sequence s0 is 31 tokens, longer than model 'short' takes \(20\)"):
        score_sequences(spec, _records(demo_sequence(0, 30)), snp_offsets={}, batch_size=4, seed=0, device="cpu")


def test_masked_model_whose_tokenizer_has_no_mask_token_stops(tmp_path, tiny_masked):
    folder = tmp_path / "nomask"
    shutil.copytree(tiny_masked, folder)
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        path = folder / name
        if path.is_file():
            settings = json.loads(path.read_text())
            settings.pop("mask_token", None)
            path.write_text(json.dumps(settings))
    with pytest.raises(InputError, match=r"model 'nm' is masked .* has no mask token"):
        load_tokenizer(ModelSpec("nm", str(folder), "masked"))


# --- GENERator-like: native Llama with a 6-mer tokenizer whose tail of 1-5 bases becomes <oov> -----------


def _save_kmer_llama(folder, k=6):
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>", "<unk>", "<oov>"]
    vocab = {t: i for i, t in enumerate(specials + ["".join(p) for p in itertools.product("ACGT", repeat=k)])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<oov>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(f".{{1,{k}}}"), behavior="isolated")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
    fast.save_pretrained(folder)
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        architectures=["LlamaForCausalLM"],
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def test_kmer_tail_that_becomes_oov_is_excluded_and_counted_or_stops_above_the_share(tmp_path):
    folder = _save_kmer_llama(tmp_path / "generator")
    spec = ModelSpec("gen", str(folder), "causal")
    window = demo_sequence(1000, 1100)  # 16 six-mers and a tail of 4 bases: 4% of the bases
    rows = score_sequences(spec, _records(window), snp_offsets={}, batch_size=2, seed=0, device="cpu").to_pylist()
    row = rows[0]
    assert row["n_excluded"] == 1 and row["n_tokens"] == 16
    assert row["token_start"] == list(range(0, 96, 6)) and row["token_end"] == list(range(6, 97, 6))
    model, tok = load_model(spec), load_tokenizer(spec)
    ids = tok(window)["input_ids"]
    assert tok.convert_ids_to_tokens(ids[-1]) == "<oov>" and len(ids) == 18
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)
    expected = [float(logp[t - 1, ids[t]]) for t in range(1, 17)]  # the <oov> at 17 is never a target
    np.testing.assert_allclose(row["token_logprob"], expected, rtol=2e-3, atol=2e-3)

    short = demo_sequence(1000, 1040)  # 6 six-mers and a tail of 4: 10% of the bases
    with pytest.raises(InputError, match=r"sequence s0: 4 of its 40 bases .* is <oov>.* windows.length a multiple"):
        score_sequences(spec, _records(short), snp_offsets={}, batch_size=2, seed=0, device="cpu")


@pytest.mark.parametrize("family", ["hyenadna", "caduceus", "nt_v2", "gena_lm"])
def test_a_malformed_special_tokens_map_stops_in_one_line_naming_the_file(family, tmp_path):
    import importlib
    from pathlib import Path

    folder = tmp_path / family
    source = Path(__file__).parent / "fixtures" / "gfm" / family
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("*.npz", "*.safetensors", "ph", "ps_*"))
    (folder / "special_tokens_map.json").write_text('{"pad_token": ')
    module = importlib.import_module(f"gfm_audit.gfm.{family}")
    with pytest.raises(InputError, match=r"special_tokens_map.json: not valid JSON"):
        module.load_tokenizer(folder)
