"""Every numeric tolerance of the equality tests, derived in one place.

Two float32 computations of the same mathematics differ only by rounding. Which kernels PyTorch picks (its CPU
capability: default, AVX2, AVX-512, chosen at start-up from the CPU or from ``ATEN_CPU_CAPABILITY``), how many lanes
a reduction is split over and in which order the partial sums are added all change the rounding, never the value in
exact arithmetic. So a tolerance must bound rounding, not record what one CPU happened to give.

The bound used here is the classic worst case for recursive summation in any order (Higham, *Accuracy and Stability
of Numerical Algorithms*, 2nd ed., section 3.1): a sum of ``n`` terms computed in floating point is off by at most
``gamma_n * sum |terms|`` with ``gamma_n = n u / (1 - n u) ~ n u``, where ``u = 2**-24`` is float32's unit roundoff.
For a network we take ``n`` as the number of layers times the longest reduction inside one layer (the widest matmul,
or the sequence length for attention, a long convolution or a scan), and the magnitude of the compared values as
the scale (at least 1: normalised activations are O(1) even where an output is small). That assumes each layer
passes on, not amplifies, the rounding of the one before (layer norms keep activations O(1)); the fixtures' observed
differences are 3-39 units of ``u * scale``, 10-100 times inside it, on default, AVX2 and AVX-512 kernels (one AMD
EPYC; ``test_golden_fixtures_agree_in_float64_on_every_cpu`` in test_gfm_families.py), while a real bug
(a wrong weight, a shifted token, a missing scale) moves logits by 1e-2 of the scale or more, far outside it.

A golden file holds float32 numbers from the original code, which carry that code's rounding. Comparing our float32
forward pass with them allows the rounding of both (``implementations=2``); comparing our float64 forward pass allows
only the golden file's (``implementations=1``), and that comparison is the same on every CPU.

Scores are stored as float16 (half precision, unit roundoff ``2**-11``): ``FLOAT16_RTOL`` allows four units of it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FLOAT32_UNIT_ROUNDOFF = 2.0**-24
# float16 storage of per-token scores: 4 units of its roundoff 2**-11 (rounding on writing, plus float32 work).
FLOAT16_RTOL = 4 * 2.0**-11

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "gfm"


def scale_of(values: np.ndarray) -> float:
    """The magnitude that rounding errors are relative to: max |value|, at least 1."""
    return max(1.0, float(np.abs(np.asarray(values, dtype=np.float64)).max()))


def float32_atol(values: np.ndarray, terms: int, implementations: int = 2) -> float:
    """Absolute tolerance for float32 results of ``terms`` accumulated roundings, compared with ``values``.

    ``implementations`` is how many of the two compared results were computed in float32 (2: ours and a golden file;
    1: ours in float64 against a golden file).
    """
    return implementations * terms * FLOAT32_UNIT_ROUNDOFF * scale_of(values)


def network_terms(n_layers: int, *reduction_lengths: int) -> int:
    """Accumulated roundings along a forward pass: layers x the longest reduction in one layer."""
    return int(n_layers) * int(max(reduction_lengths))


def golden_terms(family: str, sequence_length: int, folder: Path | None = None) -> int:
    """``network_terms`` of a golden fixture's config (tests/fixtures/gfm/<family>/config.json, or the YAML of a
    family whose checkpoints have none: Evo 2) at one length."""
    folder = folder or FIXTURES / family
    if (folder / "config.json").is_file():
        config = json.loads((folder / "config.json").read_text())
    else:
        import yaml

        (file,) = folder.glob("*.yml")
        config = yaml.safe_load(file.read_text())
    return config_terms(config, sequence_length, family)


def config_terms(config: dict, sequence_length: int, family: str = "") -> int:
    """``network_terms`` of a checkpoint config (layer count and widths under the hub's key names)."""
    if family == "nt_v3" or config.get("model_type") == "ntv3":
        return nt_v3_terms(config, sequence_length)
    layers = config.get("num_hidden_layers") or config.get("n_layer") or config["num_layers"]
    # Evo 2 (inner_mlp_size): its long convolutions (FFT, log2(2L) roundings a term) and attention reduce along the
    # sequence, which the sequence length already counts.
    widths = [
        config.get(key)
        for key in ("hidden_size", "intermediate_size", "d_model", "d_inner", "inner_mlp_size")
        if isinstance(config.get(key), int)
    ]
    if family == "caduceus":  # Mamba's inner width is expand (2) x d_model, its scan runs along the sequence
        widths.append(2 * config["d_model"])
    return network_terms(layers, sequence_length, *widths)


def nt_v3_terms(config: dict, sequence_length: int) -> int:
    """NT v3's U-Net: the stem, two convolutions per down- and up-sampling block, the transformer layers and the
    head in sequence; its reductions are the stem's (15 x token width), a width-5 convolution over the widest
    channels, the feed-forward and attention widths, and attention over the sequence compressed 2**n times."""
    n = int(config["num_downsamples"])
    layers = 1 + 2 * n + int(config["num_layers"]) + 2 * n + 1
    widest = max(int(config["conv_init_embed_dim"]), int(config["embed_dim"]))
    return network_terms(
        layers,
        -(-int(sequence_length) // 2**n),
        15 * int(config["token_embed_dim"]),
        5 * widest,
        int(config["ffn_embed_dim"]),
        int(config["embed_dim"]),
    )


def golden_atol(
    family: str, values: np.ndarray, sequence_length: int, implementations: int = 2, folder: Path | None = None
) -> float:
    """The tolerance of a comparison with a family's golden numbers (``folder``: a variant's fixture folder)."""
    return float32_atol(values, golden_terms(family, sequence_length, folder), implementations)
