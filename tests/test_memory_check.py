"""A checkpoint too large for the machine stops in one line before loading (gfm/memory.py), with a limit set by
GFM_AUDIT_MEMORY_LIMIT in place of the machine's free memory."""

import io

import pytest
import torch
from conftest import REPO
from gfm_audit.errors import InputError
from gfm_audit.gfm.memory import LIMIT_ENV, count_parameters, parse_limit
from gfm_audit.models import ModelSpec, load_model
from safetensors.torch import load_file

FIXTURES = REPO / "tests" / "fixtures" / "gfm"


def test_parameters_are_counted_from_safetensors_headers_and_pt_files_without_loading(tiny_causal):
    stored = load_file(tiny_causal / "model.safetensors")
    assert count_parameters(tiny_causal, "tiny").parameters == sum(t.numel() for t in stored.values())
    nt_v3 = load_file(FIXTURES / "nt_v3" / "model.safetensors")
    assert count_parameters(FIXTURES / "nt_v3", "nt_v3").parameters == sum(t.numel() for t in nt_v3.values())
    with torch.serialization.safe_globals([io.BytesIO]):
        evo2 = torch.load(FIXTURES / "evo2" / "evo2-tiny.pt", map_location="cpu", weights_only=True)
    tensors = [t for t in evo2.values() if isinstance(t, torch.Tensor)]
    assert count_parameters(FIXTURES / "evo2", "evo2").parameters == sum(t.numel() for t in tensors)


def test_a_checkpoint_larger_than_the_limit_stops_before_loading_and_bfloat16_halves_the_need(tiny_causal, monkeypatch):
    params = count_parameters(tiny_causal, "tiny").parameters
    # Loading holds the weights twice: 8 bytes a parameter as float32, 4 as bfloat16. The limit sits between.
    monkeypatch.setenv(LIMIT_ENV, str(8 * params - 1))
    spec = ModelSpec("tiny", str(tiny_causal), "causal")
    with pytest.raises(InputError) as raised:
        load_model(spec)
    message = str(raised.value)
    assert "\n" not in message and f"{params / 1e6:.1f} M parameters (model.safetensors) as float32" in message
    assert f"{8 * params / 2**30:.2f} GiB" in message and LIMIT_ENV in message
    assert "smaller model" in message and "GPU" in message and "models.tiny.dtype: bfloat16" in message
    model = load_model(ModelSpec("tiny", str(tiny_causal), "causal", dtype="bfloat16"))
    assert next(model.parameters()).dtype == torch.bfloat16


def test_an_evo2_pt_checkpoint_is_checked_too(monkeypatch, tmp_path):
    import shutil

    folder = tmp_path / "evo2"
    shutil.copytree(FIXTURES / "evo2", folder, ignore=shutil.ignore_patterns("variant", "*.npz", "*.py"))
    monkeypatch.setenv(LIMIT_ENV, "1K")
    with pytest.raises(InputError, match=r"model 'e': .* M parameters \(evo2-tiny.pt\) as float32 need about"):
        load_model(ModelSpec("e", str(folder), "causal"))
    monkeypatch.setenv(LIMIT_ENV, "1G")
    assert load_model(ModelSpec("e", str(folder), "causal")) is not None


def test_limit_values():
    assert parse_limit("1000") == 1000
    assert parse_limit("1.5G") == parse_limit("1.5GiB") == int(1.5 * 1024**3)
    assert parse_limit("512m") == 512 * 1024**2
    with pytest.raises(InputError, match=f"{LIMIT_ENV}='lots' is not a size"):
        parse_limit("lots")
