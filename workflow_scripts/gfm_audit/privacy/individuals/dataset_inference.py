"""Dataset inference over people: were these individuals' genomes used to train the target, and how many of them?

Maini et al.'s test and DUCI (privacy/dataset_inference.py) run on people instead of windows. An individual's
haplotype windows are not independent draws: the two haplotypes of a window are often identical, and a person's
windows share one training decision. Cutting sequences into the test's fit and test halves would put copies of
one person on both sides, and the fitted aggregation would be tested on what it was fitted on, which breaks the
test's validity under H0. So the unit is the person, as the membership is: each individual's row holds the
person-level attack scores over all of their haplotype windows (individuals/person_attacks.py: ``lira_online``,
``lira_offline``, ``loss_difference``, ``alt_alleles``: 0 for a person without alt alleles there) and ``loss``,
minus the target's mean token NLL over them (higher meaning member, as every feature). The suspect set is a list
of individuals; the validation set is the non-member individuals or another list. DUCI then estimates the share of
the listed people the target trained on, calibrated on the people of known membership outside each half of the
list (``cross_fitted_duci``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ...errors import InputError, listed
from ..dataset_inference import SET_KEYWORDS

PERSON_FEATURES = ("loss", "lira_online", "lira_offline", "loss_difference", "alt_alleles")


def read_individuals(path: str | os.PathLike, *, selected: Sequence[str], key: str) -> list[str]:
    """The sample IDs of a list file: one per line, blank lines and ``#`` comments skipped.

    Every ID must be one of the ``selected`` individuals (results/individuals/samples.tsv: those the run took from
    the VCF); an unknown one, a repeated one or an empty list stops with one line naming the file.
    """
    ids = []
    for line in open(path).read().splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            ids.append(text)
    if not ids:
        raise InputError(f"{key}: {path} lists no individuals; give one sample ID per line")
    unknown = sorted(set(ids) - set(selected))
    if unknown:
        raise InputError(
            f"{key}: {path} names {len(unknown)} individuals that are not among the {len(selected)} this run "
            f"selected from individuals.vcf ({listed(unknown)}); list only sample IDs of "
            "results/individuals/samples.tsv, or select them with individuals.samples"
        )
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise InputError(f"{key}: {path} lists {listed(repeated)} more than once; list each individual once")
    return ids


def person_table(per_seq: pd.DataFrame, persons: pd.DataFrame) -> pd.DataFrame:
    """The score table dataset inference reads, one row per person: ``window_id`` (the sample ID, the table's row
    key), ``member`` (target_member) and :data:`PERSON_FEATURES`.

    ``per_seq``: ``person_attacks.sequence_statistics`` (for ``loss``); ``persons``: ``person_attacks.person_scores``.
    """
    loss = -per_seq.groupby("sample", sort=False).loss.mean()
    table = pd.DataFrame({"window_id": persons["sample"].astype(str), "member": persons.member.to_numpy(int)})
    table["loss"] = loss.reindex(table.window_id).to_numpy(float)
    for name in PERSON_FEATURES[1:]:
        table[name] = persons[name].to_numpy(float)
    # A person without a non-reference allele in the windows has no alt_alleles score: no evidence, 0. Unlike a
    # window's missing score (dataset_inference.complete_features drops those rows), this one follows the
    # person's genotype alone, which the membership split does not see; dropping them would cost whole people
    # (in a small cohort, the test's minimum sizes).
    table["alt_alleles"] = table.alt_alleles.fillna(0.0)
    return table


def person_set(value: str, table: pd.DataFrame, *, key: str, lists: dict[str, list[str]] | None = None) -> np.ndarray:
    """Rows of :func:`person_table` in a set: ``members``/``non_members`` by the target's split, else the
    individuals of the list file ``value`` (read by :func:`read_individuals` into ``lists[value]``)."""
    if value in SET_KEYWORDS:
        return table.member.to_numpy() == SET_KEYWORDS[value]
    if lists is None or value not in lists:
        raise ValueError(f"{key} {value} is a list of individuals: pass it read")
    return table.window_id.isin(set(lists[value])).to_numpy()


def disjoint_people(
    suspect: np.ndarray, validation: np.ndarray, table: pd.DataFrame, *, names: tuple[str, str]
) -> None:
    """Stop when an individual is in both sets: the validation people must be known not to be in training."""
    shared = table.window_id[np.asarray(suspect) & np.asarray(validation)].tolist()
    if shared:
        raise InputError(
            f"dataset_inference.suspect ({names[0]}) and dataset_inference.validation ({names[1]}) share "
            f"{len(shared)} individuals ({listed(shared)}); the validation set must be people known not to be in "
            "training, apart from the suspect set: give disjoint sets"
        )
