"""A FASTA as dataset inference's suspect set: its sequences cut into the audit's windows, scored like them.

The owner of a dataset (a consortium's assemblies, a journal's submitted sequences) holds sequences, not
coordinates on the audit's reference. Maini et al.'s test (:mod:`.dataset_inference`) needs each suspect sequence's
feature vector computed as the validation windows' are, so the FASTA is brought to the audit's unit:

- each record is cut into consecutive, non-overlapping windows of ``windows.length`` bp from its first base; the
  remainder at a record's end (shorter than a window) is left out, as is a record shorter than one window (both
  counted in the log and in ``counts.tsv``);
- a window whose share of bases other than A, C, G, T (N runs, IUPAC codes) is over ``windows.max_n_fraction``
  is left out (counted), the audit's own rule for its windows; bases are upper-cased as the windows stage does;
- above ``dataset_inference.fasta.max_windows`` windows, a seeded draw of that many is kept (in file order).

The windows are then scored by the scoring jobs' own function (:func:`.scoring.score_shard`) as one unlabelled
shard without neighbours (a FASTA's sequences have no place on the reference, so no SNP neighbours, no flanks), and
their per-window features reduced as the shards' are (:func:`.features.reduce_shards`); the attacks are run once
over the audit's windows and these together (:func:`suspect_attack_scores`), so every score of both sets comes from
the same function. Features that need neighbours are missing on every suspect window and drop out of the test
(:func:`.dataset_inference.complete_features`).
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError, listed
from ..sampling import sample_indices
from .dataset_inference import MIN_SEQUENCES

ID_PREFIX = "suspect:"
BASES = frozenset("ACGT")
COUNT_COLUMNS = (
    "records",
    "records_shorter_than_window",
    "windows_cut",
    "windows_over_max_n",
    "windows_dropped_over_max_windows",
    "windows_kept",
    "remainder_bases",
    "window_length",
)


@dataclass(frozen=True)
class SuspectWindows:
    """The windows cut from a suspect FASTA (``{window_id: sequence}``, file order) and what was left out."""

    windows: dict[str, str]
    counts: dict[str, int]


def read_suspect_fasta(path: str | os.PathLike, *, key: str) -> list[tuple[str, str]]:
    """(name, upper-cased sequence) of every record of a FASTA (plain or gzip), or one line naming what is wrong.

    pysam reads text that is not a FASTA as a file without records, so the format is checked here: the first
    line that is not blank must be a ``>`` header, and sequence lines may hold letters only.
    """
    path = os.fspath(path)
    with open(path, "rb") as fh:
        gzipped = fh.read(2) == b"\x1f\x8b"
    try:
        with gzip.open(path, "rt") if gzipped else open(path) as fh:
            lines = fh.read().splitlines()
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise InputError(f"{key} {path} cannot be read as a FASTA ({exc}); give a FASTA file (plain or gzip)") from None
    records: list[tuple[str, list[str]]] = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        if line.startswith(">"):
            name = line[1:].split(maxsplit=1)[0] if line[1:].strip() else ""
            if not name:
                raise InputError(f"{key} {path} line {number}: a header without a name; name every record")
            records.append((name, []))
        elif not records:
            raise InputError(
                f"{key} {path} is not a FASTA: line {number} comes before any '>' header; give a FASTA file"
            )
        elif not line.isalpha():
            bad = next(c for c in line if not c.isalpha())
            raise InputError(
                f"{key} {path} line {number} (record {records[-1][0]}) holds {bad!r}, not a base; a FASTA's "
                "sequence lines hold letters only"
            )
        else:
            records[-1][1].append(line)
    if not records:
        raise InputError(f"{key} {path} holds no FASTA record; give a FASTA of the suspect sequences")
    names = [name for name, _ in records]
    repeated = {n for n in names if names.count(n) > 1}
    if repeated:
        raise InputError(f"{key} {path} has records named alike ({listed(repeated)}); names must be unique")
    return [(name, "".join(parts).upper()) for name, parts in records]


def cut_windows(
    records: Sequence[tuple[str, str]],
    length: int,
    *,
    max_n_fraction: float,
    max_windows: int,
    seed: int,
) -> SuspectWindows:
    """Windows of ``length`` bp tiled from each record's first base (module docstring for what is left out).

    A window's id is ``suspect:<record>:<start>-<end>`` (0-based, end exclusive), apart from every audit window's.
    """
    cut: dict[str, str] = {}
    counts = dict.fromkeys(COUNT_COLUMNS, 0) | {"records": len(records), "window_length": length}
    for name, sequence in records:
        if len(sequence) < length:
            counts["records_shorter_than_window"] += 1
            continue
        counts["remainder_bases"] += len(sequence) % length
        for start in range(0, len(sequence) - length + 1, length):
            window = sequence[start : start + length]
            counts["windows_cut"] += 1
            if sum(base not in BASES for base in window) > max_n_fraction * length:
                counts["windows_over_max_n"] += 1
                continue
            cut[f"{ID_PREFIX}{name}:{start}-{start + length}"] = window
    if len(cut) > max_windows:
        ids = list(cut)
        kept = [ids[i] for i in sample_indices(len(ids), max_windows, seed)]
        counts["windows_dropped_over_max_windows"] = len(cut) - len(kept)
        cut = {i: cut[i] for i in kept}
    counts["windows_kept"] = len(cut)
    return SuspectWindows(cut, counts)


def suspect_windows(
    path: str | os.PathLike,
    length: int,
    *,
    max_n_fraction: float,
    max_windows: int,
    seed: int,
    key: str = "dataset_inference.suspect",
) -> SuspectWindows:
    """The windows of the suspect FASTA at ``path``, or one line saying why there are none, or too few."""
    records = read_suspect_fasta(path, key=key)
    result = cut_windows(records, length, max_n_fraction=max_n_fraction, max_windows=max_windows, seed=seed)
    c = result.counts
    if c["records_shorter_than_window"] == c["records"]:
        longest = max(len(s) for _, s in records)
        raise InputError(
            f"{key} {os.fspath(path)}: none of its {c['records']} records is as long as a window ({length} bp, "
            f"windows.length; the longest has {longest} bp); give longer sequences or a shorter windows.length"
        )
    if len(result.windows) < MIN_SEQUENCES:
        raise InputError(
            f"{key} {os.fspath(path)} gives {len(result.windows)} windows of {length} bp ({c['windows_cut']} cut, "
            f"{c['windows_over_max_n']} over windows.max_n_fraction); dataset inference needs at least "
            f"{MIN_SEQUENCES}: give more or longer sequences"
        )
    return result


def check_apart_from_validation(
    suspect: Mapping[str, str], validation: Mapping[str, str], *, suspect_key: str, validation_name: str
) -> None:
    """Stop when a suspect window is identical to a validation window: the validation set must be sequences known
    not to be in training, apart from the suspect set (compared upper-cased, on the same strand)."""
    by_sequence = {s.upper(): w for w, s in validation.items()}
    shared = [(w, by_sequence[s.upper()]) for w, s in suspect.items() if s.upper() in by_sequence]
    if shared:
        pairs = listed([f"{s} = {v}" for s, v in shared])
        raise InputError(
            f"{suspect_key}: {len(shared)} of its windows are windows of the validation set {validation_name} "
            f"({pairs}); the validation set must be sequences known not to be in training, apart from the suspect "
            "set: leave them out of the FASTA or give another validation set"
        )


def write_scoring_inputs(windows: Mapping[str, str], folder: str | os.PathLike) -> dict[str, str]:
    """The files a scoring job reads for one shard, for the suspect windows: their FASTA, and neighbours and SNP
    tables without rows (a FASTA's sequences have none). Returns {input name of score_shard: path}."""
    from ..outputs import write_fasta

    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    paths = {
        "windows_fasta": os.path.join(folder, "windows.fa"),
        "neighbors_fasta": os.path.join(folder, "neighbors.fa"),
        "neighbors_tsv": os.path.join(folder, "neighbors.tsv"),
        "snps_path": os.path.join(folder, "snps.tsv.gz"),
    }
    write_fasta(paths["windows_fasta"], ((w, "", seq) for w, seq in windows.items()))
    open(paths["neighbors_fasta"], "w").close()
    with open(paths["neighbors_tsv"], "w") as fh:
        fh.write("neighbor_id\twindow_id\tkind\tprob\treplicate\n")
    with gzip.open(paths["snps_path"], "wt") as fh:
        fh.write("window_id\toffset\n")
    return paths


def suspect_attack_scores(
    data: Any, suspect_features: Mapping[str, pd.DataFrame], names: Sequence[str]
) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Every configured attack over the audit's windows and the suspect windows together, in one run.

    ``data`` is the audit's :class:`.attacks.AttackData`; ``suspect_features`` each scored model's per-window table
    of the suspect windows (indexed by window id, same order for every model). The suspect rows are labelled -1
    (unlabelled: no attack's population or prefix, which are drawn among the label-0 windows, takes them, and DUCI
    calibrates on labelled rows only) and as not trained on by any reference model (the references were trained on
    the audit's windows). Neighbour columns the suspect windows lack are missing (counts 0). Returns the score table
    (``window_id``, ``member``, one column per variant) and the skipped attacks, as :func:`.attacks.runner.run_attacks`.
    """
    from .attacks import AttackData
    from .attacks.runner import run_attacks

    ids = list(next(iter(suspect_features.values())).index)
    features = {}
    for model, table in data.features.items():
        extra = suspect_features[model].reindex(index=ids, columns=table.columns)
        counts = [c for c in table.columns if c.startswith("nbr_") and c.endswith("_n")]
        extra[counts] = extra[counts].fillna(0)
        features[model] = pd.concat([table, extra.astype(table.dtypes.to_dict(), errors="ignore")])
    n = len(ids)
    combined = AttackData(
        target=data.target,
        window_ids=[*data.window_ids, *ids],
        member=np.r_[np.asarray(data.member, int), np.full(n, -1)],
        features=features,
        references=data.references,
        ref_member={r: np.r_[np.asarray(m), np.zeros(n, np.asarray(m).dtype)] for r, m in data.ref_member.items()},
        params=data.params,
    )
    return run_attacks(combined, names)
