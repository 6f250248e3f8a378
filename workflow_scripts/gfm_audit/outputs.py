"""Writing outputs so that a failure never leaves a partial file behind."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_outputs(*paths: str | os.PathLike) -> Iterator[list[Path]]:
    """Yield temporary paths next to ``paths``; rename them all only on success.

    On any exception the temporaries are removed and the final paths are left
    untouched, so a killed or failed step leaves nothing that looks finished.
    """
    finals = [Path(p) for p in paths]
    temps = [p.with_name(f".{p.name}.partial-{os.getpid()}") for p in finals]
    for p in finals:
        p.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield temps
        for tmp, final in zip(temps, finals, strict=True):
            os.replace(tmp, final)
    except BaseException:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
        raise


def write_text_gz(path: str | os.PathLike, text: str) -> None:
    """Gzip ``text`` with a zero timestamp and no file name in the header.

    Both would otherwise change the bytes on every run.
    """
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(text.encode())


def write_fasta(path: str | os.PathLike, records: Iterable[tuple[str, str, str]]) -> None:
    """Write ``(name, description, sequence)`` records, one sequence line each."""
    with open(path, "w") as fh:
        for name, description, seq in records:
            header = f">{name} {description}" if description else f">{name}"
            fh.write(f"{header}\n{seq}\n")
