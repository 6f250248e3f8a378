"""The rules of a FASTA suspect set (rules/dataset_inference.smk): its windows, their scores, the test.

As :mod:`.stages`, each function imports what its rule needs when it runs (the rules run in different conda
environments), so importing this module needs neither torch nor scipy.
"""

from __future__ import annotations

import logging

from ..rule_script import Job

log = logging.getLogger("gfm_audit.privacy.suspect_fasta")


def suspect_windows_rule(job: Job) -> None:
    """Rule suspect_windows: the suspect FASTA cut into the audit's windows, checked against the validation set,
    and the scoring job's input files for them."""
    import pandas as pd

    from ..fasta import read_fasta
    from ..outputs import atomic_outputs, write_tsv
    from .dataset_inference import window_sets
    from .suspect_fasta import check_apart_from_validation, suspect_windows, write_scoring_inputs

    p = job.params
    cut = suspect_windows(
        job.input.fasta, p.length, max_n_fraction=p.max_n_fraction, max_windows=p.max_windows, seed=p.seed
    )
    c = cut.counts
    log.info(
        "%s: %d records (%d shorter than a window of %d bp), %d windows cut (%d bases of record ends left out), "
        "%d over windows.max_n_fraction, %d over max_windows, %d kept",
        job.input.fasta,
        c["records"],
        c["records_shorter_than_window"],
        c["window_length"],
        c["windows_cut"],
        c["remainder_bases"],
        c["windows_over_max_n"],
        c["windows_dropped_over_max_windows"],
        c["windows_kept"],
    )
    # The validation set as the test will draw it: the membership's labels, or a BED's overlap.
    membership = pd.read_csv(job.input.membership, sep="\t", dtype={"window_id": str})
    labels = pd.DataFrame({"window_id": membership.window_id, "member": membership.target_member})
    _, validation = window_sets(
        labels, "members", p.validation, windows_path=job.input.windows, contigs_path=job.input.contigs
    )
    ids = set(labels.window_id[validation])
    check_apart_from_validation(
        cut.windows,
        read_fasta(job.input.windows_fasta, keep=ids),
        suspect_key=f"dataset_inference.suspect {job.input.fasta}",
        validation_name=p.validation,
    )
    out = job.output
    with atomic_outputs(out.counts) as (counts,):
        write_scoring_inputs(cut.windows, out.windows_fasta.rsplit("/", 1)[0])
        write_tsv(pd.DataFrame([c]), counts)


def score_suspect_rule(job: Job) -> None:
    """Rule score_suspect: the suspect windows scored by one model with the scoring jobs' own function, as one
    shard, and reduced to its per-window table as the shards are."""
    import torch

    from ..models import ModelSpec
    from .features import reduce_shards
    from .scoring import score_shard
    from .stages import _optional_input

    torch.set_num_threads(job.threads)
    spec = ModelSpec.from_config(job.wildcards.model, job.params.spec)
    rows = score_shard(
        spec,
        windows_fasta=job.input.windows,
        neighbors_fasta=job.input.neighbors_fasta,
        neighbors_tsv=job.input.neighbors_tsv,
        snps_path=job.input.snps,
        features=job.params.features,
        batch_size=job.params.batch_size,
        seed=job.params.seed,
        chunk_size=job.params.chunk_size,
        features_path=job.output.sequences,
        max_excluded_share=job.params.max_excluded_share,
        token_frequencies=_optional_input(job, "token_frequencies"),
        recall_prefix=_optional_input(job, "recall_prefix"),
    )
    reduce_shards([job.output.sequences], job.output.features, ranges=job.params.ranges)
    log.info("%s: %d suspect windows scored", job.wildcards.model, rows)


def suspect_fasta_inference_rule(job: Job) -> None:
    """Rule dataset_inference with a FASTA suspect set: every attack run over the audit's windows and the suspect
    windows together, then Maini et al.'s test of the suspect rows against the validation set, and DUCI."""
    import numpy as np

    from .attacks.runner import load_attack_data
    from .dataset_inference import window_sets
    from .features import read_window_features
    from .scoring import read_window_ids
    from .stages import _write_inference
    from .suspect_fasta import suspect_attack_scores

    p = job.params
    data = load_attack_data(
        job.wildcards.model,
        feature_paths={m: job.input[m] for m in p.scored},
        membership_path=job.input.membership,
        references=p.references,
        params=p.attacks,
    )
    ids = read_window_ids(job.input.suspect_windows)
    suspect_features = {m: read_window_features(job.input[f"suspect_{m}"], ids) for m in p.scored}
    table, skipped = suspect_attack_scores(data, suspect_features, p.attacks["names"])
    for name, reason in skipped:
        log.warning("attack %s skipped: %s", name, reason)
    audit = table.member.to_numpy() >= 0
    _, validation = window_sets(
        table[audit],
        "members",
        p.settings["validation"],
        windows_path=job.input.windows,
        contigs_path=job.input.contigs,
    )
    suspect = ~audit
    _write_inference(job, table, (suspect, np.r_[validation, np.zeros(suspect.sum(), bool)]))
