"""Caduceus in plain PyTorch equals the original modelling code.

Golden numbers: tests/fixtures/gfm/caduceus/ (README.md there says how they were made from
kuleshov-group/caduceus + state-spaces/mamba v1.2.0.post1). Tolerances: float32 rounding of both computations
over the layers' longest reduction, the scan along the sequence (tests/tolerances.py).
"""

from __future__ import annotations

import json
import pathlib
import re
import shutil

import numpy as np
import pytest
import torch
from gfm_audit.errors import InputError
from gfm_audit.gfm import caduceus
from gfm_audit.gfm.caduceus_scan import fused_scan_available, linear_recurrence, selective_scan
from safetensors.torch import load_file
from tolerances import config_terms, float32_atol, golden_atol

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "gfm" / "caduceus"
VARIANTS = {"ps": FIXTURE, "ph": FIXTURE / "ph", "ps_unfused_layernorm": FIXTURE / "ps_unfused_layernorm"}


def _config(folder: pathlib.Path) -> dict:
    return json.loads((folder / "config.json").read_text())


def _loaded(folder: pathlib.Path) -> caduceus.CaduceusForMaskedLM:
    """build_lm + strict load, after filling the keys the file leaves out because they are tied (as the loader)."""
    config = _config(folder)
    model = caduceus.build_lm(config, kind="masked")
    state = load_file(folder / "model.safetensors")
    for name in set(model.state_dict()) - set(state):
        assert name in caduceus.TIED_WEIGHTS, name
        state[name] = state[caduceus.TIED_WEIGHTS[name]]
    model.load_state_dict(state, strict=True)
    return model


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_logits_equal_the_original_code_on_demo_windows(variant):
    folder = VARIANTS[variant]
    golden = np.load(folder / "golden.npz")
    model = _loaded(folder)
    with torch.no_grad():
        out = model(torch.from_numpy(golden["input_ids"]), output_hidden_states=True)
    expected = golden["logits"]
    assert out.logits.dtype == torch.float32
    assert out.logits.shape == expected.shape
    terms = config_terms(_config(folder), expected.shape[1], "caduceus")
    np.testing.assert_allclose(out.logits.numpy(), expected, rtol=0, atol=float32_atol(expected, terms))
    if "last_hidden_state" in golden:
        hidden = golden["last_hidden_state"]
        assert out.hidden_states[-1].shape == hidden.shape  # RCPS: 2 * d_model channels
        np.testing.assert_allclose(out.hidden_states[-1].numpy(), hidden, rtol=0, atol=float32_atol(hidden, terms))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_tokenizer_gives_the_original_ids_and_offsets_tile_each_window(variant):
    folder = VARIANTS[variant]
    golden = np.load(folder / "golden.npz")
    tok = caduceus.load_tokenizer(folder)
    for seq, ids in zip(golden["sequences"], golden["input_ids"], strict=True):
        enc = tok(str(seq), return_offsets_mapping=True, return_special_tokens_mask=True)
        assert enc["input_ids"] == ids.tolist()
        dna = [
            span for span, special in zip(enc["offset_mapping"], enc["special_tokens_mask"], strict=True) if not special
        ]
        assert dna == [(i, i + 1) for i in range(len(seq))]
        assert enc["special_tokens_mask"] == [0] * len(seq) + [1]  # the appended [SEP]
    assert (tok.mask_token_id, tok.pad_token_id, tok.unk_token_id, tok.sep_token_id) == (3, 4, 6, 1)
    assert tok.padding_side == "left"
    # Hand-checked ids: A C G T N = 7..11 in either case, anything else [UNK] = 6.
    assert tok("acgTNr", add_special_tokens=False)["input_ids"] == [7, 8, 9, 10, 11, 6]


def test_tokenizer_without_tokenizer_config_stops_naming_the_file(tmp_path):
    shutil.copy(FIXTURE / "config.json", tmp_path / "config.json")
    with pytest.raises(InputError, match="tokenizer_config.json"):
        caduceus.load_tokenizer(tmp_path)


def test_file_lacks_only_tied_weights_and_they_are_tied_in_the_module():
    for folder in VARIANTS.values():
        config = _config(folder)
        model = caduceus.build_lm(config, kind="masked")
        missing = set(model.state_dict()) - set(load_file(folder / "model.safetensors"))
        assert missing == set(caduceus.tied_weights(config))
        params = dict(model.named_parameters(remove_duplicate=False))
        for name in missing:
            assert params[name] is params[caduceus.TIED_WEIGHTS[name]]
    buffers = {n for n, _ in _loaded(FIXTURE).named_buffers()}
    assert buffers == {n for n in buffers if any(re.fullmatch(p, n) for p in caduceus.DERIVED_BUFFERS)}
    assert len(buffers) == 2
    assert "caduceus.backbone.layers.15.mixer.submodule.mamba_rev.in_proj.weight" in caduceus.TIED_WEIGHTS
    assert "caduceus.backbone.layers.3.mixer.mamba_fwd.in_proj.weight" not in caduceus.TIED_WEIGHTS


def test_ps_logits_are_reverse_complement_equivariant_and_ph_are_not():
    golden = np.load(FIXTURE / "golden.npz")
    ids = torch.from_numpy(golden["input_ids"])
    comp = torch.tensor(caduceus._Cfg(_config(FIXTURE)).complement)
    rc_ids = comp[ids.flip(-1)]
    # logits(RC(x))[t, v] = logits(x)[L-1-t, comp(v)] (Schiff et al. 2024, RCPS)
    for folder, equivariant in ((FIXTURE, True), (FIXTURE / "ph", False)):
        model = _loaded(folder)
        with torch.no_grad():
            fwd = model(ids).logits
            rev = model(rc_ids).logits
        mapped = fwd.flip(1)[..., comp]
        close = torch.allclose(rev, mapped, atol=1e-4 * fwd.abs().max().item())
        assert close == equivariant


def test_padded_vocabulary_and_complement_map_follow_the_original():
    config = _config(FIXTURE) | {"vocab_size": 12}
    config["complement_map"] = {str(i): v for i, v in enumerate([0, 1, 2, 3, 4, 5, 6, 10, 9, 8, 7, 11])}
    model = caduceus.build_lm(config, kind="masked")
    assert model.caduceus.backbone.embeddings.word_embeddings.embedding.weight.shape == (16, 32)
    assert model.lm_head.complement_map.tolist() == [0, 1, 2, 3, 4, 5, 6, 10, 9, 8, 7, 11, 12, 13, 14, 15]


def _naive_scan(u, delta, A, B, C, D, z, bias):
    """The recurrence written out per position, in float64."""
    u, delta, A, B, C, D, z, bias = (t.double() for t in (u, delta, A, B, C, D, z, bias))
    delta = torch.log1p(torch.exp(delta + bias[:, None]))
    h = torch.zeros(u.shape[0], u.shape[1], A.shape[1], dtype=torch.float64)
    ys = []
    for t in range(u.shape[2]):
        h = torch.exp(delta[:, :, t, None] * A) * h + (delta[:, :, t] * u[:, :, t])[..., None] * B[:, None, :, t]
        ys.append((h * C[:, None, :, t]).sum(-1) + D * u[:, :, t])
    y = torch.stack(ys, dim=2)
    return y * z * torch.sigmoid(z)


@pytest.mark.parametrize("method", ["loop", "doubling"])
@pytest.mark.parametrize("block", [7, 64])
def test_selective_scan_equals_the_recurrence_written_out(method, block):
    g = torch.Generator().manual_seed(0)
    b, d, n, length = 2, 5, 4, 23
    u, delta, z = (torch.randn(b, d, length, generator=g) for _ in range(3))
    A = -torch.exp(torch.randn(d, n, generator=g))
    B, C = (torch.randn(b, n, length, generator=g) for _ in range(2))
    D, bias = torch.randn(d, generator=g), torch.randn(d, generator=g)
    ours = selective_scan(u, delta, A, B=B, C=C, D=D, z=z, delta_bias=bias, method=method, block=block)
    ref = _naive_scan(u, delta, A, B, C, D, z, bias)
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours.double(), ref, rtol=1e-5, atol=1e-5)


def test_linear_recurrence_carries_the_state_across_blocks():
    a = torch.tensor([0.5, 0.25, 1.0]).view(3, 1)
    x = torch.tensor([1.0, 2.0, 3.0]).view(3, 1)
    state = torch.tensor([4.0])
    # h0 = 0.5*4 + 1 = 3; h1 = 0.25*3 + 2 = 2.75; h2 = 1*2.75 + 3 = 5.75
    for method in ("loop", "doubling"):
        h = linear_recurrence(a, x, state=state, method=method)
        assert h.flatten().tolist() == [3.0, 2.75, 5.75]


@pytest.mark.parametrize("method", ["loop", "doubling"])
def test_linear_recurrence_gradient_equals_finite_differences(method):
    g = torch.Generator().manual_seed(2)
    decay = torch.rand(9, 2, 3, generator=g, dtype=torch.float64).requires_grad_()
    inp = torch.randn(9, 2, 3, generator=g, dtype=torch.float64, requires_grad=True)
    state = torch.randn(2, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, x, s: linear_recurrence(a, x, state=s, method=method), (decay, inp, state)
    )
    assert torch.autograd.gradcheck(lambda a, x: linear_recurrence(a, x, method=method), (decay, inp))


@pytest.mark.parametrize("method", ["loop", "doubling"])
def test_selective_scan_gradients_equal_those_of_the_recurrence_written_out(method):
    """Every input's gradient, across block boundaries (block 7 < length 23), against autograd on _naive_scan."""
    g = torch.Generator().manual_seed(3)
    b, d, n, length = 2, 5, 4, 23
    u, delta, z = (torch.randn(b, d, length, generator=g) for _ in range(3))
    A = -torch.exp(torch.randn(d, n, generator=g))
    B, C = (torch.randn(b, n, length, generator=g) for _ in range(2))
    D, bias = torch.randn(d, generator=g), torch.randn(d, generator=g)
    weight = torch.randn(b, d, length, generator=g)
    inputs = [t.requires_grad_() for t in (u, delta, A, B, C, D, z, bias)]
    ours = selective_scan(u, delta, A, B=B, C=C, D=D, z=z, delta_bias=bias, method=method, block=7)
    grads = torch.autograd.grad((ours * weight).sum(), inputs)
    ref_inputs = [t.detach().double().requires_grad_() for t in inputs]
    ref = _naive_scan(*ref_inputs)
    ref_grads = torch.autograd.grad((ref * weight.double()).sum(), ref_inputs)
    for name, ours_g, ref_g in zip("u delta A B C D z bias".split(), grads, ref_grads, strict=True):
        torch.testing.assert_close(ours_g.double(), ref_g, rtol=1e-4, atol=1e-4, msg=name)


def _masked_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Two demo windows (120 tokens) with every 7th token masked: (inputs, labels with -100 off the masks)."""
    ids = torch.from_numpy(np.load(FIXTURE / "golden.npz")["input_ids"])[:2, :120]
    masked = torch.zeros_like(ids, dtype=torch.bool)
    masked[:, 5::7] = True
    return ids.masked_fill(masked, 3), ids.masked_fill(~masked, -100)  # 3: [MASK]


def _masked_loss(model: caduceus.CaduceusForMaskedLM, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    logits = model(inputs).logits
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)


def test_finetuning_steps_reach_every_mamba_weight_with_finite_gradients_and_lower_the_masked_loss():
    """Four SGD steps on a masked demo batch: gradients flow through the scan of both directions and strands."""
    inputs, labels = _masked_batch()
    model = _loaded(FIXTURE).train()
    start = {name: param.detach().clone() for name, param in model.named_parameters()}
    losses = []
    for _ in range(4):
        model.zero_grad()
        loss = _masked_loss(model, inputs, labels)
        loss.backward()
        losses.append(loss.item())
        for name, param in model.named_parameters():
            assert torch.isfinite(param.grad).all(), name
            if any(k in name for k in ("A_log", ".D", "dt_proj", "conv1d", "x_proj")):
                assert param.grad.abs().sum() > 0, name
        with torch.no_grad():
            for param in model.parameters():
                # Small enough for plain descent on these random weights (loss ~34, logits up to ~40): larger
                # steps overshoot and the loss oscillates, which would say nothing about the gradients.
                param -= 5e-3 * param.grad
    assert all(later < earlier for earlier, later in zip(losses[:-1], losses[1:], strict=True)), losses
    assert losses[-1] < 0.95 * losses[0], losses
    changed = {name for name, param in model.named_parameters() if not torch.equal(param.detach(), start[name])}
    assert changed == set(start)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_logits_with_gradient_tracking_equal_the_no_grad_logits_and_the_original_code(variant):
    """The trainable path (scan in an autograd.Function) gives the scoring path's logits and the golden ones."""
    folder = VARIANTS[variant]
    golden = np.load(folder / "golden.npz")
    ids = torch.from_numpy(golden["input_ids"])
    model = _loaded(folder)
    with torch.no_grad():
        plain = model(ids).logits
    tracked = model(ids).logits
    assert tracked.requires_grad and not plain.requires_grad
    # The scan itself runs the same arithmetic either way (bit-identical, see the scan-level test below), but
    # PyTorch may pick other float32 kernels around it when an operand requires grad (matmul folds a batched
    # product into one mm only when no copy is needed for backward), which reorders sums: float32 rounding of
    # both computations over the network's longest reduction, the tolerance of the golden comparison.
    terms = config_terms(_config(folder), ids.shape[1], "caduceus")
    atol = float32_atol(plain.numpy(), terms)
    np.testing.assert_allclose(tracked.detach().numpy(), plain.numpy(), rtol=0, atol=atol)
    expected = golden["logits"]
    np.testing.assert_allclose(tracked.detach().numpy(), expected, rtol=0, atol=float32_atol(expected, terms))


def test_selective_scan_without_gradient_gives_the_same_numbers_as_with():
    """The differentiable path runs the same scan: bit-identical outputs (the golden logits hold for both)."""
    g = torch.Generator().manual_seed(4)
    u, delta, z = (torch.randn(1, 6, 40, generator=g) for _ in range(3))
    A = -torch.exp(torch.randn(6, 3, generator=g))
    B, C = (torch.randn(1, 3, 40, generator=g) for _ in range(2))
    for method in ("loop", "doubling"):
        with torch.no_grad():
            plain = selective_scan(u, delta, A, B=B, C=C, z=z, method=method, block=16)
        tracked = selective_scan(u.requires_grad_(), delta, A, B=B, C=C, z=z, method=method, block=16)
        assert tracked.requires_grad and torch.equal(plain, tracked.detach())
        u = u.detach()
    with pytest.raises(ValueError, match="scan method"):
        selective_scan(u, delta, A, B=B, C=C, method="parallel")


@pytest.mark.skipif(not (torch.cuda.is_available() and fused_scan_available()), reason="needs CUDA and mamba_ssm")
def test_fused_kernel_agrees_with_the_pure_pytorch_scan():  # pragma: no cover - GPU only
    g = torch.Generator().manual_seed(1)
    u, delta, z = (torch.randn(2, 8, 100, generator=g).cuda() for _ in range(3))
    A = -torch.exp(torch.randn(8, 16, generator=g)).cuda()
    B, C = (torch.randn(2, 16, 100, generator=g).cuda() for _ in range(2))
    D, bias = torch.randn(8, generator=g).cuda(), torch.randn(8, generator=g).cuda()
    kw = {"B": B, "C": C, "D": D, "z": z, "delta_bias": bias}
    fused = selective_scan(u, delta, A, method="fused", **kw)
    ours = selective_scan(u, delta, A, method="doubling", **kw)
    torch.testing.assert_close(fused, ours, rtol=1e-4, atol=1e-4)


def test_claims_caduceus_configs_only():
    for folder in VARIANTS.values():
        assert caduceus.claims(_config(folder))
    assert caduceus.claims({"auto_map": {"AutoModelForMaskedLM": "modeling_caduceus.CaduceusForMaskedLM"}})
    assert not caduceus.claims({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]})
    assert not caduceus.claims({"model_type": "hyenadna", "architectures": ["HyenaDNAForCausalLM"]})
    assert not caduceus.claims({"model_type": "mamba", "architectures": ["MambaForCausalLM"]})
    assert not caduceus.claims(
        {"model_type": "bert", "auto_map": {"AutoModel": "bert_layers.BertModel"}, "architectures": ["BertForMaskedLM"]}
    )


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"bidirectional_strategy": "concat"}, "bidirectional_strategy"),
        ({"ssm_cfg": {"headdim": 32, "expand": 2}}, "Mamba-2"),
        ({"complement_map": None}, "complement_map"),
        ({"d_model": None}, "d_model"),
        ({"n_layer": 129}, "n_layer"),
    ],
)
def test_check_supported_stops_with_one_line_naming_model_and_key(change, key):
    config = _config(FIXTURE) | change
    with pytest.raises(InputError, match=key) as info:
        caduceus.check_supported(config, name="my-caduceus")
    assert "my-caduceus" in str(info.value) and "\n" not in str(info.value)
    caduceus.check_supported(_config(FIXTURE), name="ok")


def test_build_lm_offers_only_the_masked_kind():
    with pytest.raises(ValueError, match="masked"):
        caduceus.build_lm(_config(FIXTURE), kind="causal")
    assert caduceus.KINDS == ("masked",) and caduceus.ACCEPTS_ATTENTION_MASK is False


def test_doubling_scan_used_on_gpu_also_gives_the_original_logits(monkeypatch):
    def doubling(*args, **kwargs):
        return selective_scan(*args, **kwargs | {"method": "doubling"})

    monkeypatch.setattr(caduceus, "selective_scan", doubling)
    golden = np.load(FIXTURE / "golden.npz")
    with torch.no_grad():
        logits = _loaded(FIXTURE)(torch.from_numpy(golden["input_ids"])).logits.numpy()
    expected = golden["logits"]
    np.testing.assert_allclose(logits, expected, rtol=0, atol=golden_atol("caduceus", expected, expected.shape[1]))
