"""P1 ratio of Evo 2 at two sizes: the tiny golden fixture against a random Evo 2 of a few million parameters.

Run: .venv/bin/python benchmarks/bench_evo2_size.py [--hidden 256] [--tokens 20000] [--repeat 5] [--rounds 3]

Our statistics cost a fixed amount per scored token (log-softmax, softmax and two sums over the 512-token byte
vocabulary), whatever the model; the forward's cost grows with the model. So the share of our path in the time
falls as the model grows. This script measures ``bench_families.py``'s row (our scoring path against the bare
forward on the same batches, one CPU thread, the same windows and token budget) for the Evo 2 fixture (hidden
32) and for a checkpoint of the same five-block layout (Hyena-SE, -MR, -LI, attention, -SE) with a wider hidden
size, written here with random weights in the original layout (``.pt`` + YAML) and read through the loader.
The two rows alternate, ``--rounds`` times, each in a fresh process, so that load from other processes on a
shared machine hits both; each line carries the time and the load average at its start.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow_scripts"))

import gfm_audit  # noqa: E402,F401  (MKL settings before torch)
import torch  # noqa: E402
import yaml  # noqa: E402
from gfm_audit.gfm import evo2  # noqa: E402

FIXTURE = REPO / "tests" / "fixtures" / "gfm" / "evo2"


def randomise(model: torch.nn.Module, generator: torch.Generator) -> None:
    """Weights of the fixture's scales (tests/fixtures/gfm/evo2/make_golden.py ``randomise``): decaying poles,
    filters and matrices scaled by 1 / sqrt(fan-in), so that activations stay of order one at any width."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=generator)
            if name.endswith("log_poles"):
                p.copy_(-(0.01 + 0.3 * torch.rand(p.shape, generator=generator)))
            elif name.endswith("residues"):
                p.copy_(0.3 * noise)
            elif name.endswith(".scale"):
                p.copy_(1.0 + 0.3 * noise)
            elif name.endswith(".D"):
                p.copy_(0.5 * noise)
            elif name.endswith("filter.h"):
                p.copy_(noise / p.shape[-1] ** 0.5)
            elif name.endswith("short_filter_weight"):
                p.copy_(0.5 * noise)
            elif name == "embedding_layer.weight":
                p.copy_(0.5 * noise)
            else:
                p.copy_(noise / max(1.0, p.shape[-1]) ** 0.5)


def write_checkpoint(folder: Path, *, hidden: int, seed: int = 0) -> int:
    """An Evo 2 folder (``evo2-bench.pt`` + ``evo2-bench.yml``) of the fixture's layout at ``hidden`` wide;
    returns the parameter count."""
    config = yaml.safe_load((FIXTURE / "evo2-tiny.yml").read_text())
    inner = 16 * -(-int(hidden * 8 / 3) // 16)  # 8/3 of hidden, a multiple of inner_size_multiple_of
    config.update(hidden_size=hidden, num_filters=hidden, hcl_filter_groups=hidden, inner_mlp_size=inner)
    model = evo2.build_lm(config)
    randomise(model, torch.Generator().manual_seed(seed))
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / "evo2-bench.pt")
    (folder / "evo2-bench.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    return sum(p.numel() for p in model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=256, help="hidden size of the larger checkpoint")
    parser.add_argument("--tokens", type=int, default=20_000, help="tokens through the model per row")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    fixture_params = sum(p.numel() for p in torch.load(FIXTURE / "evo2-tiny.pt", weights_only=True).values())
    with tempfile.TemporaryDirectory() as tmp:
        params = write_checkpoint(Path(tmp) / "evo2-large", hidden=args.hidden)
        print(
            f"# bench_families.py --families evo2 --row-only --tokens {args.tokens} --repeat {args.repeat}, the "
            f"fixture "
            f"(hidden 32, {fixture_params} parameters in its .pt) and a random Evo 2 of hidden {args.hidden} "
            f"({params} parameters), alternating, {args.rounds} rounds; each line: UTC time, load average (1, 5, 15 "
            "min) at its start, model, the script's row (family | kind | windows | sequences | tokens | ours s | bare "
            "s | ours us/token | bare / ours | bare / ours CPU time).",
            flush=True,
        )
        for _ in range(args.rounds):
            for name, folder in (("fixture", None), (f"hidden{args.hidden}", Path(tmp) / "evo2-large")):
                command = [sys.executable, str(REPO / "benchmarks" / "bench_families.py"), "--families", "evo2"]
                command += ["--row-only", "--tokens", str(args.tokens), "--repeat", str(args.repeat)]
                command += ["--folder", str(folder)] if folder else []
                load = " ".join(f"{x:.2f}" for x in os.getloadavg())
                stamp = time.strftime("%H:%M:%S", time.gmtime())
                row = subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()
                print(f"{stamp} {load} {name} {row}", flush=True)


if __name__ == "__main__":
    main()
