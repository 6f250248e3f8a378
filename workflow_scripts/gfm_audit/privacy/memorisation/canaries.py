"""Canaries: planted sequences whose memorisation is measured by their exposure.

Each canary has a *format* (Carlini et al. 2019): a template and a set of secret positions, each
with the bases it may take; the candidates of the same format are every way of filling the secret
positions, ``|R| = prod_i |choices_i|``. ``random`` canaries are uniform random DNA (every position
secret, ``|R| = 4^length``). ``snp_rich`` canaries are real reference segments outside the audited
windows, chosen among those with the most SNV sites, whose sites take a seeded allele among REF and
the VCF's ALTs (the secret), so ``|R| = prod_i (1 + n_alt_i)``.

``inclusion: all``: ``n`` canaries per repeat count r are inserted into the target's training data r times each;
as many (``n * len(repeats)``) are drawn from the same distribution and never inserted: the reference set.
``inclusion: bernoulli`` (the one-run audit, Steinke, Nasr & Jagielski 2023): ``n`` canaries in all, each inserted
(``repeats``: one count) or not by a fair coin of its own, seeded; which ones went in is the secret the audit guesses.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ...errors import InputError
from ...outputs import atomic_outputs

BASES = "ACGT"
COLUMNS = ("canary_id", "group", "repeats", "sequence", "secret_offsets", "choices")


@dataclass(frozen=True)
class Canary:
    """One canary; ``repeats`` is 0 for a never-inserted (reference) canary."""

    canary_id: str
    group: str  # inserted | reference
    repeats: int
    sequence: str
    secret_offsets: tuple[int, ...]
    choices: tuple[str, ...]  # the bases each secret position may take

    @property
    def log2_space(self) -> float:
        """log2 |R|: the number of candidates of this canary's format, in bits."""
        return float(sum(math.log2(len(c)) for c in self.choices))

    @property
    def format_key(self) -> tuple:
        """Canaries with equal keys share their candidate set (same template outside the secret)."""
        secret = set(self.secret_offsets)
        template = "".join("_" if i in secret else b for i, b in enumerate(self.sequence))
        return template, self.secret_offsets, self.choices


def canary_count(n: int, repeats: Sequence[int], inclusion: str = "all") -> int:
    """How many canaries are drawn: n per repeat count and as many never inserted, or n in all (bernoulli)."""
    return n if inclusion == "bernoulli" else 2 * n * len(repeats)


def _plan(n: int, repeats: Sequence[int], inclusion: str, seed: int) -> list[int]:
    """Each canary's repeat count, 0 for never inserted: the first n * len(repeats) inserted (n per repeat count,
    in config order) and the rest not; or, under bernoulli, each inserted with probability 1/2."""
    if inclusion == "bernoulli":
        (r,) = repeats
        coins = np.random.default_rng(np.random.SeedSequence([seed, 2])).random(n) < 0.5
        return [r if c else 0 for c in coins]
    return [r for r in repeats for _ in range(n)] + [0] * (n * len(repeats))


def _assign(
    sequences: Sequence[tuple[str, tuple[int, ...], tuple[str, ...]]],
    n: int,
    repeats: Sequence[int],
    inclusion: str = "all",
    seed: int = 0,
):
    """Canaries from ``sequences`` (``_plan`` decides which are inserted, and how often)."""
    canaries = []
    plan = _plan(n, repeats, inclusion, seed)
    for i, ((seq, offsets, choices), r) in enumerate(zip(sequences, plan, strict=True)):
        group = "inserted" if r else "reference"
        canaries.append(Canary(f"canary_{i:04d}", group, r, seq, offsets, choices))
    return canaries


def random_canaries(n: int, length: int, *, repeats: Sequence[int], seed: int, inclusion: str = "all") -> list[Canary]:
    """Uniform random DNA canaries: ``n`` per repeat count and as many never-inserted ones, or ``n`` in all each
    inserted with probability 1/2 (``inclusion: bernoulli``)."""
    total = canary_count(n, repeats, inclusion)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    codes = rng.integers(0, 4, size=(total, length))
    offsets, choices = tuple(range(length)), (BASES,) * length
    seqs = ["".join(BASES[c] for c in row) for row in codes]
    return _assign([(s, offsets, choices) for s in seqs], n, repeats, inclusion, seed)


def check_budget(n: int, repeats: Sequence[int], n_members: int) -> None:
    """Inserted copies may not outnumber the target's member windows, or canaries would be most of its data."""
    copies = n * sum(repeats)
    if copies > n_members:
        raise InputError(
            f"memorisation.canaries: n={n} canaries per repeat count x repeats {list(repeats)} = {copies} inserted "
            f"copies, more than the target's {n_members} member windows (the training set); lower "
            "memorisation.canaries.n or repeats, or use more windows"
        )


def _free(start: int, end: int, taken: list[tuple[int, int]]) -> bool:
    return all(end <= s or start >= e for s, e in taken)


def snp_rich_canaries(
    fasta_path: str,
    vcf_path: str,
    *,
    windows: pd.DataFrame,
    vcf_contigs: Mapping[str, str],
    params: Mapping[str, Any],
) -> list[Canary]:
    """Real segments outside the audited windows, the most SNV-rich of a seeded draw, with seeded alleles.

    ``params``: the ``memorisation.canaries`` block (n, length, repeats, seed, inclusion). Segments overlap
    neither an audited window nor each other and hold only A, C, G, T.
    """
    import cyvcf2
    import pysam

    from ..windows import extract_snps

    n, length, repeats, seed = params["n"], params["length"], params["repeats"], params["seed"]
    inclusion = params.get("inclusion", "all")
    total = canary_count(n, repeats, inclusion)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    chroms = list(dict.fromkeys(windows.chrom.astype(str)))
    taken = {c: [(int(s), int(e)) for s, e in zip(g.start, g.end, strict=True)] for c, g in windows.groupby("chrom")}
    found: list[tuple[int, int, str, int, str, list]] = []  # (-n_sites, draw, chrom, start, seq, sites)
    counts: Counter[str] = Counter()
    with pysam.FastaFile(fasta_path) as fasta:
        sizes = [fasta.get_reference_length(c) - length for c in chroms]
        usable = [(c, s) for c, s in zip(chroms, sizes, strict=True) if s > 0]
        if not usable:
            raise InputError(f"memorisation.canaries.length={length} is longer than every window chromosome")
        weights = np.array([s for _, s in usable], dtype=float)
        vcf = cyvcf2.VCF(vcf_path, lazy=True)
        try:
            for draw in range(40 * total):
                chrom, room = usable[int(rng.choice(len(usable), p=weights / weights.sum()))]
                start = int(rng.integers(0, room))
                seq = fasta.fetch(chrom, start, start + length).upper()
                if set(seq) - set(BASES) or not _free(start, start + length, taken.get(chrom, [])):
                    continue
                sites, _ = extract_snps(vcf, vcf_contigs.get(chrom, ""), start, seq=seq, counts=counts)
                if sites:
                    found.append((-len(sites), draw, chrom, start, seq, sites))
        finally:
            vcf.close()
    chosen: list[tuple] = []
    for item in sorted(found, key=lambda f: (f[0], f[1])):
        spans = [(s, s + length) for _, _, c, s, _, _ in chosen if c == item[2]]
        if _free(item[3], item[3] + length, spans):
            chosen.append(item)
        if len(chosen) == total:
            break
    if len(chosen) < total:
        raise InputError(
            f"memorisation.canaries: kind snp_rich needs {total} segments of {length} bp with SNV sites outside the "
            f"audited windows and found {len(chosen)}; lower memorisation.canaries.n or length, or use kind random"
        )
    # Shuffled so that inserted and reference canaries come from the same distribution of SNV counts.
    chosen = [chosen[i] for i in rng.permutation(total)]
    out = []
    for _, _, _, _, seq, sites in chosen:
        bases = list(seq)
        offsets = tuple(s.offset for s in sites)
        choices = tuple(s.ref + "".join(s.alts) for s in sites)
        for off, opts in zip(offsets, choices, strict=True):
            bases[off] = opts[int(rng.integers(0, len(opts)))]
        out.append(("".join(bases), offsets, choices))
    return _assign(out, n, repeats, inclusion, seed)


def write_canaries(canaries: Sequence[Canary], path: str | os.PathLike) -> None:
    rows = [
        (c.canary_id, c.group, c.repeats, c.sequence, ",".join(map(str, c.secret_offsets)), ",".join(c.choices))
        for c in canaries
    ]
    with atomic_outputs(path) as (tmp,):
        pd.DataFrame(rows, columns=list(COLUMNS)).to_csv(tmp, sep="\t", index=False)


def read_canaries(path: str | os.PathLike) -> list[Canary]:
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    return [
        Canary(
            r.canary_id,
            r.group,
            int(r.repeats),
            r.sequence,
            tuple(int(x) for x in r.secret_offsets.split(",") if x),
            tuple(x for x in r.choices.split(",") if x),
        )
        for r in table.itertuples(index=False)
    ]


def training_copies(canaries: Sequence[Canary], inclusion_seed: int | None = None) -> list[str]:
    """The sequences added to a model's training data: each inserted canary ``repeats`` times.

    The target takes every inserted canary (``inclusion_seed`` None). A reference model takes each independently
    with probability 1/2 (a Bernoulli draw seeded by ``inclusion_seed``), as it takes each window: so target and
    references are trained alike, which LiRA and RMIA assume (Carlini et al. 2022), and a canary's presence is
    not a difference between them that membership attacks would read.
    """
    inserted = [c for c in canaries if c.group == "inserted"]
    if inclusion_seed is not None:
        keep = np.random.default_rng(inclusion_seed).random(len(inserted)) < 0.5
        inserted = [c for c, k in zip(inserted, keep, strict=True) if k]
    return [c.sequence for c in inserted for _ in range(c.repeats)]


def check_canary_tokens(spec, canaries: Sequence[Canary], *, tokenizer, limit: int) -> None:
    """Canaries must fit the model: one line naming memorisation.canaries.length when they do not."""
    from ...tokens import encode

    if not canaries:
        return
    longest = max(canaries, key=lambda c: len(c.sequence))
    n_tokens = len(encode(tokenizer, longest.sequence, seq_id=longest.canary_id, model=spec.name).ids)
    if n_tokens > limit:
        raise InputError(
            f"memorisation.canaries.length={len(longest.sequence)} gives canaries of {n_tokens} tokens, longer than "
            f"model '{spec.name}' takes ({limit}); lower memorisation.canaries.length"
        )


def canary_training_copies(spec, path: str | os.PathLike, inclusion_seed: int | None = None) -> list[str]:
    """The inserted canaries of ``path`` (all, or a seeded half: ``training_copies``), each as often as it is
    inserted, once they are known to fit the model."""
    import logging

    from transformers import AutoConfig

    from ...models import load_tokenizer, max_tokens

    canaries = read_canaries(path)
    tokenizer = load_tokenizer(spec)
    # max_tokens reads only the model's config: no weights are loaded here (a scratch model has none).
    config = AutoConfig.from_pretrained(spec.path, trust_remote_code=spec.trust_remote_code, local_files_only=True)
    limit = max_tokens(spec, type("ConfigOnly", (), {"config": config})(), tokenizer)
    check_canary_tokens(spec, canaries, tokenizer=tokenizer, limit=limit)
    copies = training_copies(canaries, inclusion_seed)
    logging.getLogger(__name__).info(
        "%d canaries inserted, %d copies trained on in batches of their own", len(set(copies)), len(copies)
    )
    return copies
