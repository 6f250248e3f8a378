"""Every native family, through the path a user's config takes: its golden fixture folder as ``path:``,
``architecture: auto``, ``load_model`` / ``load_tokenizer``, then ``score_sequences``.

The golden logits come from each family's original modelling code (tests/fixtures/gfm/<family>/README.md);
the per-token scores are checked against a direct forward pass (causal) or a one-token-at-a-time masking
loop (masked, exact pseudo-log-likelihood).
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from gfm_audit.config import validate_config
from gfm_audit.gfm import registry
from gfm_audit.models import ModelSpec, architecture_of, load_model, load_tokenizer, read_checkpoint_config
from gfm_audit.privacy.scoring import SeqRecord, score_sequences
from gfm_audit.tokens import encode
from tolerances import FLOAT16_RTOL, golden_atol

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "gfm"
# Golden logits are float32 from the original code; ours agree to float32 rounding, scores to float16 storage
# (tests/tolerances.py derives both).
SCORE_TOL = FLOAT16_RTOL


def _family(name: str):
    module = registry.family_module(name)
    if module is None:
        pytest.skip(f"gfm_audit.gfm.{name} is not in this checkout yet")
    assert (FIXTURES / name / "golden.npz").is_file(), f"family {name} has no golden fixture in {FIXTURES / name}"
    return module


def user_spec(name: str, kind: str) -> ModelSpec:
    """The spec a user's config gives: only path and kind written, the schema's defaults for the rest."""
    config = validate_config(
        {
            "reference": {"fasta": "unused.fa", "vcf": "unused.vcf.gz"},
            "models": {name: {"path": str(FIXTURES / name), "kind": kind}},
            "membership": {"mode": "none"},
        }
    )
    return ModelSpec.from_config(name, config["models"][name])


def golden_vocab(name: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(vocab ids, log-normalisers) where a fixture stores the logits of a subset of a large vocabulary."""
    with np.load(FIXTURES / name / "golden.npz") as g:
        return (g["vocab_ids"], g["logsumexp"]) if "vocab_ids" in g.files else (None, None)


def golden_rows(name: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(sequence, input ids, logits) per golden window, without the padding of the stored batch."""
    with np.load(FIXTURES / name / "golden.npz") as g:
        data = {k: g[k] for k in g.files}
    rows = []
    for i, seq in enumerate(data["sequences"]):
        if "lengths" in data:
            n = int(data["lengths"][i])
        elif "attention_mask" in data:
            mask = data["attention_mask"][i]
            n = int(mask.sum())
            assert mask[:n].all(), "golden batches are padded on the right"
        else:
            n = data["input_ids"].shape[1]
        rows.append((str(seq), data["input_ids"][i, :n], data["logits"][i, :n]))
    return rows


@pytest.fixture(params=registry.FAMILIES)
def family(request):
    module = _family(request.param)
    return request.param, module, user_spec(request.param, module.KINDS[0])


def test_auto_detects_the_family_without_remote_code(family):
    name, module, spec = family
    assert spec.architecture == "auto" and not spec.trust_remote_code
    assert architecture_of(spec, read_checkpoint_config(spec)) == name
    assert isinstance(load_model(spec), torch.nn.Module)
    others = [f for f in registry.available_families() if f != name]
    config = read_checkpoint_config(spec)
    assert not any(registry.family_module(f).claims(config) for f in others), "two families claim one checkpoint"


def test_users_config_gives_the_golden_ids_and_logits(family):
    name, _, spec = family
    torch.set_num_threads(1)
    model, tokenizer = load_model(spec), load_tokenizer(spec)
    vocab_ids, logsumexp = golden_vocab(name)
    for i, (seq, ids, logits) in enumerate(golden_rows(name)):
        assert encode(tokenizer, seq, model=name).ids.tolist() == ids.tolist()
        with torch.no_grad():
            ours = model(torch.as_tensor(ids).reshape(1, -1)).logits[0].float()
        atol = golden_atol(name, logits, len(ids))
        if vocab_ids is not None:  # a subset of the vocabulary, and the log-normaliser over all of it
            normaliser = torch.logsumexp(ours, -1).numpy()
            np.testing.assert_allclose(normaliser, logsumexp[i, : len(ids)], rtol=0, atol=atol)
            ours = ours[:, vocab_ids]
        np.testing.assert_allclose(ours.numpy(), logits, rtol=0, atol=atol)


def test_golden_fixtures_agree_in_float64_on_every_cpu(family):
    """Our forward pass in float64 against the original's float32 numbers: only the golden file's own rounding is
    left, so this bound (half the float32 one) holds alike under every CPU capability."""
    name, _, spec = family
    model = load_model(spec).double()
    vocab_ids, _ = golden_vocab(name)
    for _, ids, logits in golden_rows(name):
        with torch.no_grad():
            ours = model(torch.as_tensor(ids).reshape(1, -1)).logits[0].numpy()
        if vocab_ids is not None:
            ours = ours[:, vocab_ids]
        atol = golden_atol(name, logits, len(ids), implementations=1)
        np.testing.assert_allclose(ours, logits, rtol=0, atol=atol)


def _tiles(starts, ends, length) -> bool:
    order = np.argsort(starts)
    s, e = np.asarray(starts)[order], np.asarray(ends)[order]
    return len(s) > 0 and s[0] == 0 and e[-1] == length and bool((s[1:] == e[:-1]).all())


def test_scores_through_score_sequences_equal_a_direct_computation(family):
    name, _, spec = family
    torch.set_num_threads(1)
    spec = ModelSpec.from_config(name, {**spec.__dict__, "masking": "exact"})
    golden = golden_rows(name)
    records = [SeqRecord(f"s{i}", f"w{i}", "window", None, None, seq) for i, (seq, _, _) in enumerate(golden)]
    # Some golden windows have soft-masked (lower case) bases or N, which some tokenizers make unknown tokens.
    rows = score_sequences(
        spec, records, snp_offsets={}, batch_size=4, seed=0, device="cpu", max_excluded_share=1.0
    ).to_pylist()
    model, tokenizer = load_model(spec), load_tokenizer(spec)
    vocab_ids, logsumexp = golden_vocab(name)
    for i, (row, (seq, ids, logits)) in enumerate(zip(rows, golden, strict=True)):
        enc = encode(tokenizer, seq, model=name)
        excluded = np.flatnonzero(enc.excluded)
        assert row["n_excluded"] == len(excluded)
        spans_start = list(row["token_start"]) + enc.start[excluded].tolist()
        spans_end = list(row["token_end"]) + enc.end[excluded].tolist()
        positions = [int(np.flatnonzero((enc.start == s) & ~enc.special)[0]) for s in row["token_start"]]
        if spec.kind == "causal":
            first = int(np.flatnonzero(~enc.special)[0])
            if first == 0:  # no token before the first base: it cannot be predicted, so it is not scored
                spans_start.append(int(enc.start[0]))
                spans_end.append(int(enc.end[0]))
            assert _tiles(spans_start, spans_end, len(seq))
            if vocab_ids is None:
                logp = torch.log_softmax(torch.from_numpy(logits).double(), -1).numpy()  # the original's logits
                expected = np.array([logp[p - 1, ids[p]] for p in positions])
            else:  # the original's logits of a subset of the vocabulary, and its log-normaliser over all of it
                column = {int(v): j for j, v in enumerate(vocab_ids)}
                expected = np.array(
                    [float(logits[p - 1, column[int(ids[p])]]) - float(logsumexp[i, p - 1]) for p in positions]
                )
            np.testing.assert_allclose(row["token_logprob"], expected, rtol=SCORE_TOL, atol=SCORE_TOL)
            assert row["loss"] == pytest.approx(-expected.mean(), rel=1e-3, abs=1e-3)
        else:
            assert _tiles(spans_start, spans_end, len(seq))
            expected = []
            for p in positions:
                masked = torch.as_tensor(ids).clone().reshape(1, -1)
                masked[0, p] = tokenizer.mask_token_id
                with torch.no_grad():
                    out = model(masked).logits[0, p].double()
                expected.append(float(torch.log_softmax(out, -1)[ids[p]]))
            np.testing.assert_allclose(row["token_logprob"], expected, rtol=SCORE_TOL, atol=SCORE_TOL)
            assert row["loss"] == pytest.approx(-np.mean(expected), rel=1e-3, abs=1e-3)


# --- the GA's gfm_head classifier on a native family -----------------------------------------------------


@pytest.mark.parametrize("name", registry.FAMILIES)
def test_gfm_head_on_a_native_family_trains_only_its_head_and_reloads_strictly(name, tmp_path):
    from conftest import DEMO
    from gfm_audit.robustness.ga import classifiers, data

    _family(name)
    torch.set_num_threads(1)
    spec = {"kind": "gfm_head", "model": name, "num_labels": 2, "batch_size": 16, "seed": 0}
    training = {"epochs": 1, "learning_rate": 1e-2, "batch_size": 8, "weight_decay": 0.0}
    test = data.read_labelled_csv(DEMO / "gue_prom_300_all" / "test.csv").subset(range(16))
    codes = data.encode(test.sequences)
    clf = classifiers.new_classifier("head", spec, base_folder=str(FIXTURES / name), length=codes.shape[1], seed=0)
    assert isinstance(clf, classifiers.NativeHeadClassifier)
    before = {n: p.detach().clone() for n, p in clf.model.named_parameters()}
    trainable = {n for n, p in clf.model.named_parameters() if p.requires_grad}
    assert trainable == {"head.weight", "head.bias"}
    clf.fit(codes, test.labels, training=training, seed=0)
    after = dict(clf.model.named_parameters())
    for key, value in before.items():
        assert (not torch.equal(value, after[key].detach())) == (key in trainable), key
    # The frozen encoder is the checkpoint's, loaded strictly: its LM still gives the golden logits.
    seq, ids, logits = golden_rows(name)[0]
    vocab_ids, _ = golden_vocab(name)
    with torch.no_grad():
        ours = clf.model["lm"](torch.as_tensor(ids).reshape(1, -1)).logits[0].float().numpy()
    if vocab_ids is not None:
        ours = ours[:, vocab_ids]
    np.testing.assert_allclose(ours, logits, rtol=0, atol=golden_atol(name, logits, len(ids)))

    classifiers.save_classifier(clf, [0.0], tmp_path / "saved")
    reloaded = classifiers.load_classifier("head", tmp_path / "saved", {"batch_size": 5})
    assert isinstance(reloaded, classifiers.NativeHeadClassifier)
    probs = reloaded.predict_proba(codes)
    np.testing.assert_allclose(probs, clf.predict_proba(codes), atol=1e-5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize("name", registry.FAMILIES)
def test_finetuning_a_native_family_saves_its_original_layout_that_loads_strictly(name, tmp_path):
    from conftest import demo_sequence
    from gfm_audit.privacy.training import train_model

    module = _family(name)
    spec = user_spec(name, module.KINDS[0])
    sequences = [demo_sequence(s, s + 60) for s in (0, 5000, 9000, 13000)]
    params = {"epochs": 2, "learning_rate": 1e-2, "batch_size": 2, "weight_decay": 0.0}
    losses = train_model(spec, sequences, params=params, seed=0, out_dir=tmp_path / "trained", device="cpu")
    assert len(losses) == 2 and all(np.isfinite(losses))
    trained = ModelSpec(name, str(tmp_path / "trained"), module.KINDS[0])
    assert architecture_of(trained, read_checkpoint_config(trained)) == name
    before, after = load_model(spec).state_dict(), load_model(trained).state_dict()
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert (
        encode(load_tokenizer(trained), sequences[0]).ids.tolist()
        == encode(load_tokenizer(spec), sequences[0]).ids.tolist()
    )


def test_no_family_claims_a_transformers_class_checkpoint(tiny_causal, tiny_masked):
    """GPT-2, ESM (the Nucleotide Transformer v1's class, model_type esm like NT v2), BERT, Llama (GENERator)."""
    from transformers import BertConfig, LlamaConfig

    configs = [
        read_checkpoint_config(ModelSpec("c", str(tiny_causal), "causal")),
        read_checkpoint_config(ModelSpec("m", str(tiny_masked), "masked")),
        {**BertConfig().to_dict(), "architectures": ["BertForMaskedLM"]},
        {**LlamaConfig().to_dict(), "architectures": ["LlamaForCausalLM"]},
    ]
    for config in configs:
        assert registry.detect(config) == "transformers", config["model_type"]
