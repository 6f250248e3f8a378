"""Writing outputs so that a failure never leaves a partial file behind."""

from __future__ import annotations

import gzip
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


def _partial_prefix(final: Path) -> str:
    return f".{final.name}.partial-"


def _partial(final: Path) -> Path:
    """This process's temporary of ``final``, beside it (one filesystem: the rename is atomic)."""
    return final.with_name(f"{_partial_prefix(final)}{os.getpid()}")


_PARTIAL_NAME = re.compile(r"\.(.+)\.partial-\d+")


def final_name(path: str | os.PathLike) -> str:
    """``path`` with any temporary name in it (``.<name>.partial-<pid>``) given as the final name it stands for.

    An error raised while writing names the temporary; the user knows the output.
    """
    parts = [m[1] if (m := _PARTIAL_NAME.fullmatch(part)) else part for part in Path(path).parts]
    return str(Path(*parts)) if parts else str(path)


def _clear_leftovers(final: Path) -> None:
    """Remove the temporaries (``.<name>.partial-<pid>`` files and folders) that killed jobs left of ``final``.

    All of them, whatever their pid: a job only writes ``final`` when Snakemake (re-)runs the one job that makes
    it, and Snakemake never runs two jobs for one output at once (nor two Snakemakes in one working directory: it
    locks it), so any temporary of ``final`` there is a leftover. Asking whether its pid is alive would not do: a
    cluster job may have been killed on another node, where the pid meant another process, and pids are reused.
    """
    prefix = _partial_prefix(final)
    with os.scandir(final.parent) as entries:
        stale = [Path(e.path) for e in entries if e.name.startswith(prefix)]
    for path in stale:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


@contextmanager
def atomic_outputs(*paths: str | os.PathLike) -> Iterator[list[Path]]:
    """Yield temporary paths next to ``paths``; rename them all only on success.

    On any exception the temporaries are removed and the final paths are left
    untouched, so a killed or failed step leaves nothing that looks finished; what a
    killed one left under a temporary name is removed when its output is next written.
    """
    finals = [Path(p) for p in paths]
    temps = [_partial(p) for p in finals]
    for p in finals:
        p.parent.mkdir(parents=True, exist_ok=True)
        _clear_leftovers(p)
    try:
        yield temps
        for tmp, final in zip(temps, finals, strict=True):
            os.replace(tmp, final)
    except BaseException:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``path``; on success it replaces ``path`` whole.

    A killed or failed job leaves no half-written folder (a model, a classifier) under the final name.
    """
    final = Path(path)
    tmp = _partial(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    _clear_leftovers(final)
    tmp.mkdir()
    try:
        yield tmp
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_loss_log(folder: Path, losses) -> None:
    """``training_log.tsv``: the mean training loss of each epoch."""
    lines = ["epoch\tloss"] + [f"{i + 1}\t{loss:.6f}" for i, loss in enumerate(losses)]
    (folder / "training_log.tsv").write_text("\n".join(lines) + "\n")


def write_tsv(df, path: str | os.PathLike) -> None:
    """A table as TSV with a fixed float format, so identical runs give identical bytes."""
    df.to_csv(path, sep="\t", index=False, float_format="%.6g", na_rep="")


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
