"""benchmarks/bench_gpu.py: the Evo 2 and NT v3 rows' checkpoints (the sizes they claim, the layout a user keeps,
scored through the real path at the smoke sizes) and their FLOPs per token."""

import argparse
import importlib.util
import json

import numpy as np
import pytest
import torch
from conftest import REPO

spec = importlib.util.spec_from_file_location("bench_gpu", REPO / "benchmarks" / "bench_gpu.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

from gfm_audit.gfm import evo2, nt_v3, registry  # noqa: E402  (bench_gpu puts workflow_scripts on the path)
from gfm_audit.models import load_model  # noqa: E402

NEW_ROWS = ["evo2-1b-8k", "ntv3-100m-pre"]


def _full_config(name: str) -> dict:
    family, sizes = bench.MODELS[name][:2]
    if family == "evo2":
        return bench.evo2_config(sizes)
    return json.loads((bench.FIXTURES / "nt_v3" / "config.json").read_text()) | sizes


def test_full_sizes_are_supported_configs_of_the_published_parameter_counts():
    """Counted on the meta device (no weights): Evo 2 1B base and NT v3 100M, as their names say."""
    with torch.device("meta"):
        config = _full_config("evo2-1b-8k")
        evo2.check_supported(config, name="evo2-1b-8k")
        n_evo2 = sum(p.numel() for p in evo2.Evo2ForCausalLM(config).parameters())
        config = _full_config("ntv3-100m-pre")
        nt_v3.check_supported(config, name="ntv3-100m-pre")
        n_ntv3 = sum(p.numel() for p in nt_v3.build_lm(config, kind="masked").parameters())
    assert n_evo2 == 1_107_989_760
    assert n_ntv3 == 106_463_419


def test_the_evo2_yaml_has_the_keys_of_the_released_1b_file():
    """The fixture's YAML follows evo2-7b-1m.yml; the 1B file lacks only its rotary interpolation keys."""
    config = _full_config("evo2-1b-8k")
    assert not set(bench.EVO2_7B_ONLY) & set(config)
    assert config["max_seqlen"] == 8192 and config["tie_embeddings"] and config["evo2_style_activations"]


@pytest.mark.parametrize("name", NEW_ROWS)
def test_smoke_checkpoint_loads_and_scores_two_windows(tmp_path, name):
    args = argparse.Namespace(smoke=True, models=[name])
    family, config, model_spec = bench.checkpoint_for(name, args, tmp_path)
    folder = tmp_path / name
    if family == "evo2":  # the layout the evo2 package downloads: a .pt state dict and the YAML, no config.json
        assert sorted(p.suffix for p in folder.iterdir()) == [".pt", ".yml"]
    model = load_model(model_spec)
    assert type(model).__module__ == registry.family_module(family).__name__
    loaded = bench._load(model_spec, batch_size=2, device="cpu", options=bench.ScoringOptions())
    records = bench.windows(2, 256, np.random.default_rng(0))
    [(part, encodings, positions, stats)] = list(
        bench.score_chunks(model_spec, loaded, [records], snp_offsets={}, seed=0, progress=False)
    )
    scored = bench.scored_tokens(part, encodings, positions, stats=stats, snp_offsets={})
    rows = bench._feature_rows(part, scored, bench.FEATURES)
    assert rows["window_id"] == ["s0", "s1"]
    assert np.isfinite(np.asarray(rows["loss"], dtype=float)).all()


@pytest.mark.parametrize("name", NEW_ROWS)
def test_flops_per_token_grow_with_length_and_exceed_the_dense_part(name):
    family = bench.MODELS[name][0]
    config = _full_config(name)
    flops = [bench.flops_per_token(family, config, 1_000_000_000, n) for n in (1_024, 8_192, 131_072)]
    assert flops[0] < flops[1] < flops[2]
    if family == "nt_v3":  # the conv towers at full resolution dominate: about 29 MFLOP per base at 100M
        assert 2.5e7 < flops[0] < 3.5e7
