"""Reading FASTA (or FASTQ) files into memory; writing is :func:`gfm_audit.outputs.write_fasta`."""

from __future__ import annotations

import os
from collections.abc import Collection

import pysam

from .errors import InputError


def read_fasta(path: str | os.PathLike, keep: Collection[str] | None = None) -> dict[str, str]:
    """``{name: sequence}`` in file order, of every record or only of those named in ``keep``.

    A kept name seen twice stops the run: a dict would silently keep only the
    last sequence, and every stage addresses windows and neighbors by name.
    """
    sequences: dict[str, str] = {}
    with pysam.FastxFile(os.fspath(path)) as fh:
        for record in fh:
            if keep is not None and record.name not in keep:
                continue
            # Only kept names are checked, so a scoring shard holds no set of every name in a genome-wide neighbors.fa.
            if record.name in sequences:
                raise InputError(f"FASTA {os.fspath(path)} has two records named {record.name}; names must be unique")
            sequences[record.name] = record.sequence
    return sequences
