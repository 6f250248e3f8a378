"""Stopping before a checkpoint that the machine cannot hold is loaded, instead of an out-of-memory crash.

Before any weight is read, the checkpoint's parameter count is taken from its weight files without loading
them: a safetensors file's header lists every tensor's shape; a pickled ``.bin`` or ``.pt`` (Evo 2) is opened
memory-mapped, which reads its tensors' shapes and not their data, or, where that fails, sized as 2 bytes per
parameter from its length (the width of the bf16 / fp16 checkpoints such files hold, so the estimate errs
high). The weights take 4 bytes a parameter as float32 (``dtype: auto`` or ``float32``), 2 as bfloat16, and
loading holds them twice for a moment (the file's tensors and the model's own), so the host needs
``2 x parameters x bytes``; a GPU, where there is one, the model once. The host's available memory is
``MemAvailable`` of /proc/meminfo, or less where a cgroup (a SLURM job, a container) caps it; the GPU's is
what the driver reports free.

``GFM_AUDIT_MEMORY_LIMIT`` (bytes, or with a K / M / G / T suffix, powers of 1024) replaces both measures:
for tests, and for a user who must leave room to other jobs on a shared node.
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .weights import SAFETENSORS, pickled_weight_files, weight_format

LIMIT_ENV = "GFM_AUDIT_MEMORY_LIMIT"
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_GIB = 2**30


@dataclass(frozen=True)
class WeightCount:
    """Parameters of a checkpoint's weight files and the files they were counted in."""

    parameters: int
    files: tuple[Path, ...]


def weight_files(folder: str | os.PathLike, owner: str) -> list[Path]:
    """The files the loader reads the weights from: safetensors (or their shards), else a pytorch_model.bin (or
    its shards), else a family's own ``.pt`` (Evo 2)."""
    folder = Path(folder)
    fmt = weight_format(folder)
    if fmt == "safetensors":
        if (folder / SAFETENSORS[0]).is_file():
            return [folder / SAFETENSORS[0]]
        try:
            shards = json.loads((folder / SAFETENSORS[1]).read_text())["weight_map"].values()
        except (json.JSONDecodeError, KeyError, AttributeError, TypeError):
            return []  # the loader names what is wrong with the index
        return [folder / s for s in sorted(set(shards)) if (folder / s).is_file()]
    if fmt == "pickle":
        return pickled_weight_files(folder, owner)
    return sorted(p for p in folder.glob("*.pt") if p.is_file())


def _safetensors_parameters(path: Path) -> int:
    """Elements of every tensor a safetensors file holds, from its JSON header (8-byte length, then the JSON)."""
    with open(path, "rb") as fh:
        size = int.from_bytes(fh.read(8), "little")
        header = json.loads(fh.read(size))
    return sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__")


def _pickle_parameters(path: Path) -> int:
    """Elements of the tensors of a pickled state dict, read memory-mapped (shapes only); else from the file's size."""
    import torch

    if zipfile.is_zipfile(path):
        try:
            # BytesIO: Transformer Engine's FP8 metadata in Evo 2 checkpoints, plain data.
            with torch.serialization.safe_globals([io.BytesIO]):
                state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            return sum(t.numel() for t in _tensors(state))
        except Exception:  # a checkpoint the loader refuses, in its own words, once it reads it
            pass
    return path.stat().st_size // 2


def _tensors(value):
    import torch

    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)


def count_parameters(folder: str | os.PathLike, owner: str) -> WeightCount:
    files = weight_files(folder, owner)
    total = sum(_safetensors_parameters(f) if f.suffix == ".safetensors" else _pickle_parameters(f) for f in files)
    return WeightCount(total, tuple(files))


def parse_limit(text: str) -> int:
    """Bytes from ``GFM_AUDIT_MEMORY_LIMIT``'s value: a number with an optional K / M / G / T suffix."""
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = value[-1:] if value[-1:] in _UNITS else ""
    try:
        number = float(value[: len(value) - len(unit)])
    except ValueError:
        raise InputError(f"{LIMIT_ENV}={text!r} is not a size; write bytes, or a number with K, M, G or T") from None
    return int(number * _UNITS[unit])


def available_host_bytes() -> tuple[int, str]:
    """Memory a new allocation can take on this host, and where the figure comes from."""
    found = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append((int(line.split()[1]) * 1024, "MemAvailable"))
    except OSError:
        pass
    try:
        cap = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if cap != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
            found.append((int(cap) - used, "the cgroup's memory.max"))
    except (OSError, ValueError):
        pass
    if not found:
        return 2**62, "unknown"
    return min(found)


def check_fits(spec, *, gpu: bool | None = None) -> None:
    """Stop in one line when the checkpoint of ``spec`` would not fit in this machine's memory (host, and the GPU
    when ``gpu``, by default when CUDA is available), before it is loaded."""
    owner = f"model '{spec.name}'"
    count = count_parameters(spec.path, owner)
    if not count.parameters:
        return
    width = 2 if spec.dtype == "bfloat16" else 4
    dtype = "bfloat16" if width == 2 else "float32"
    weights = count.parameters * width
    override = os.environ.get(LIMIT_ENV)
    limit = (parse_limit(override), LIMIT_ENV) if override else None
    if gpu is None:
        import torch

        gpu = torch.cuda.is_available()
    checks = [(2 * weights, "memory", limit or available_host_bytes(), "load it (the file's tensors and the model's)")]
    if gpu:
        import torch

        free = int(torch.cuda.mem_get_info()[0])
        checks.append((weights, "GPU memory", limit or (free, "the GPU's free memory"), "hold it"))
    for need, what, (have, source), why in checks:
        if need > have:
            advice = "use a smaller model or a machine with more memory"
            if not gpu:
                advice += ", or a GPU machine"
            if width == 4:
                advice += f", or set models.{spec.name}.dtype: bfloat16 (half the memory)"
            files = ", ".join(f.name for f in count.files[:3]) + (", ..." if len(count.files) > 3 else "")
            raise InputError(
                f"{owner}: {count.parameters / 1e6:.1f} M parameters ({files}) as {dtype} need about "
                f"{need / _GIB:.2f} GiB of {what} to {why}, more than the {have / _GIB:.2f} GiB available "
                f"({source}); {advice}"
            )
