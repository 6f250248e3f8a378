"""What each privacy rule does, one function per rule, named after it: ``<rule>_rule(job)``.

``job`` is the rule's Snakemake job (the ``snakemake`` object of its script, with ``input``,
``output``, ``params``, ``wildcards``, ``threads`` and ``log``); each function unpacks it and
calls the library, and every rule script is just ``run_rule(snakemake, <rule>_rule)``.

Each function imports what its rule needs when it runs: the rules run in different conda
environments (``envs/*.yaml``), prepare_reference for one in ``data.yaml``, which has neither
torch, scipy nor matplotlib, so that importing this module must not need them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ..rule_script import Job

# The rules of a FASTA suspect set, in their own module (it needs neither torch nor scipy at import either).
from .suspect_stages import score_suspect_rule, suspect_windows_rule  # noqa: F401

if TYPE_CHECKING:
    import pandas as pd


def prepare_reference_rule(job: Job) -> None:
    """Stage the FASTA and VCF with their indexes; write contigs.tsv."""
    from .reference import StagedReference, prepare_reference

    out = job.output
    layout = StagedReference(
        fasta=Path(out.fasta),
        fai=Path(out.fai),
        gzi=Path(out.gzi) if "gzi" in out.keys() else None,
        vcf=Path(out.vcf),
        vcf_index=Path(out.vcf_index),
        contigs=Path(out.contigs),
    )
    prepare_reference(job.input.fasta, job.input.vcf, layout)


def select_windows_rule(job: Job) -> None:
    """Place the windows; write windows.tsv, windows.fa and snps.tsv.gz."""
    from .windows import select_windows

    counts = select_windows(
        job.input.fasta,
        job.input.vcf,
        job.input.contigs,
        params=job.params.windows,
        out_tsv=job.output.tsv,
        out_fasta=job.output.fasta,
        out_snps=job.output.snps,
        fasta_name=job.params.fasta_name,
        vcf_name=job.params.vcf_name,
    )
    log = logging.getLogger("gfm_audit.select_windows")
    for key in sorted(counts):
        log.info("%s: %d", key, counts[key])


def shard_windows_rule(job: Job) -> None:
    """One windows FASTA and one SNP table per shard."""
    from .windows import split_windows

    counts = split_windows(
        job.input.fasta,
        job.input.snps,
        n_shards=job.params.shards,
        out_fastas=list(job.output.fasta),
        out_snps=list(job.output.snps),
    )
    log = logging.getLogger("gfm_audit.shard_windows")
    for shard in sorted(counts):
        log.info("shard %d: %d windows", shard, counts[shard])


def make_neighbors_rule(job: Job) -> None:
    """The SNP neighbors and controls of one shard's windows."""
    from .neighbors import make_neighbors

    counts = make_neighbors(
        job.input.fasta,
        job.input.snps,
        params=job.params.neighbors,
        out_fasta=job.output.fasta,
        out_tsv=job.output.tsv,
    )
    log = logging.getLogger("gfm_audit.make_neighbors")
    for key in sorted(counts):
        log.info("%s: %d", key, counts[key])


def merge_neighbors_rule(job: Job) -> None:
    """neighbors.tsv: the shards' neighbor tables, one after the other."""
    from .neighbors import merge_neighbor_tables

    rows = merge_neighbor_tables(list(job.input), job.output[0])
    logging.getLogger("gfm_audit.make_neighbors").info("merged %d shards: %d neighbors", len(job.input), rows)


def membership_labels_rule(job: Job) -> None:
    """results/membership.tsv: which windows each model trained on (finetune) or the BED files say (regions)."""
    import pandas as pd

    from .membership import finetune_split, region_labels, write_membership
    from .reference import read_contigs

    params = job.params.membership
    windows = pd.read_csv(job.input.windows, sep="\t", dtype={"window_id": str, "chrom": str})
    log = logging.getLogger("gfm_audit.privacy.membership")
    if job.params.mode == "genome":
        from .genome_split import genome_membership, read_heldout

        table, counts, cells = genome_membership(
            windows,
            read_heldout(job.input.heldout[0]),
            params=params["genome"],
            seed=params["seed"],
            needed=job.params.needed,
        )
        log.info(
            "mode genome: %d of %d windows straddle a training/held-out boundary of the target and %d more one of a "
            "reference model (left out); %d labelled, %d left out by the GC x SNP-density matching",
            counts["straddling_target"],
            len(windows),
            counts.get("straddling_reference", 0),
            counts["labelled"],
            counts["unmatched"],
        )
        for cell in cells.itertuples(index=False):
            log.info(
                "GC bin %d, SNP bin %d: %d members, %d non-members, %d of each kept",
                cell.gc_bin,
                cell.snp_bin,
                cell.members,
                cell.nonmembers,
                cell.kept,
            )
    elif job.params.mode == "finetune":
        table = finetune_split(
            windows.window_id.tolist(),
            member_fraction=params["member_fraction"],
            n_references=params["reference_models"],
            seed=params["seed"],
        )
    else:
        contigs = read_contigs(job.input.contigs)
        table, dropped = region_labels(
            windows, member_bed=params["member_bed"], nonmember_bed=params["nonmember_bed"], contigs=contigs
        )
        log.info("%d windows are in neither BED file and are left out", dropped)
    if params.get("train_on", "window") == "neighbor":
        from .membership import trained_neighbors

        table["trained_neighbor"] = trained_neighbors(
            job.input.neighbors, table.window_id.tolist(), seed=params["seed"]
        )
        log.info("every model trains on one snp neighbor of each of its member windows (trained_neighbor)")
    log.info(
        "%d windows: %d members, %d non-members",
        len(table),
        table.target_member.sum(),
        (table.target_member == 0).sum(),
    )
    write_membership(table, job.output[0])


def genome_split_rule(job: Job) -> None:
    """results/genome/heldout.tsv: the held-out blocks of the target and of each reference model (mode genome)."""
    from .genome_split import split_table, write_heldout
    from .reference import read_contigs

    contigs = [(c.fasta_contig, c.length) for c in read_contigs(job.input.contigs)]
    params = job.params.genome
    table = split_table(contigs, list(job.params.models), params=params, seed=job.params.seed)
    total = sum(n for _, n in contigs)
    log = logging.getLogger("gfm_audit.privacy.genome_split")
    for model, rows in table.groupby("model", sort=False):
        held = int((rows.end - rows.start).sum())
        log.info("%s: %d held-out blocks, %d of %d bases (%.4f)", model, len(rows), held, total, held / total)
    write_heldout(table, job.output[0])


def train_model_rule(job: Job) -> None:
    """Train the target or one reference model on its member windows."""
    import torch

    from ..fasta import read_fasta
    from ..models import ModelSpec
    from .membership import read_membership
    from .training import member_sequences, train_model

    torch.set_num_threads(job.threads)
    block = dict(job.params.spec)
    spec = ModelSpec.from_config(block.pop("name"), block)
    if job.params.mode == "genome":
        _train_genome_model(job, spec)
        return
    table = read_membership(job.input.membership)
    labels = table.set_index("window_id")[job.params.column].to_dict()
    windows = read_fasta(job.input.windows)
    # membership.train_on neighbor: the table names the neighbor each model trains on instead of each window.
    if "trained_neighbor" in table:
        from .training import member_neighbor_sequences

        trained = dict(zip(table.window_id, table.trained_neighbor, strict=True))
        sequences = member_neighbor_sequences(list(windows), labels, trained, neighbor_fastas=list(job.input.neighbors))
    else:
        sequences = member_sequences(windows, labels)
    # membership.training.duplication: each member window is in every epoch that many times (shuffled apart).
    duplication = job.params.training.get("duplication", 1)
    if duplication > 1:
        sequences = [s for s in sequences for _ in range(duplication)]
        logging.getLogger("gfm_audit.privacy.training").info("each member window %d times an epoch", duplication)
    # The canary table is an input when canaries are planted (rules/common.smk, canary_training_input): the target
    # takes every inserted canary, each reference model a seeded half of them.
    canaries = _optional_input(job, "canaries")
    copies = []
    if canaries:
        from .memorisation.canaries import canary_training_copies

        copies = canary_training_copies(spec, canaries, inclusion_seed=job.params.canary_inclusion_seed)
    train_model(
        spec,
        sequences,
        params=job.params.training,
        seed=job.params.seed,
        out_dir=job.output[0],
        extra_sequences=copies,
    )


def _train_genome_model(job: Job, spec) -> None:
    """Mode genome: train from scratch on the chunks of the reference outside the model's held-out blocks."""
    from .genome_split import blocks_of, read_heldout, training_chunks
    from .genome_training import train_on_genome
    from .reference import read_contigs

    # genome_training_inputs (rules/common.smk): the staged FASTA and its indexes, contigs.tsv, heldout.tsv.
    files = list(job.input.genome)
    contigs = [(c.fasta_contig, c.length) for c in read_contigs(files[-2])]
    genome = job.params.genome
    plan = training_chunks(contigs, blocks_of(read_heldout(files[-1]), spec.name), chunk_length=genome["chunk_length"])
    train_on_genome(
        spec,
        plan,
        fasta=files[0],
        params=job.params.training,
        duplication=genome["duplication"],
        seed=job.params.seed,
        out_dir=job.output[0],
    )


def _optional_input(job: Job, key: str) -> str | None:
    """The file of an input key whose function may give no file (an empty list)."""
    value = getattr(job.input, key, None)
    if isinstance(value, str):
        return value
    return str(value[0]) if value else None


def token_frequencies_rule(job: Job) -> None:
    """How often each token of a model's tokenizer occurs in the staged reference FASTA (DC-PDD's corpus)."""
    from ..models import ModelSpec, load_tokenizer
    from .token_frequencies import count_token_frequencies, write_token_frequencies

    spec = ModelSpec.from_config(job.wildcards.model, {**job.params.spec, "path": job.input.model})
    tokenizer = load_tokenizer(spec)
    counts = count_token_frequencies(job.input.fasta, tokenizer, piece_length=job.params.piece_length, model=spec.name)
    write_token_frequencies(counts, tokenizer, job.output[0])


def score_shard_rule(job: Job) -> None:
    """Score one shard of windows and neighbors with one model: its features (and per-token table if kept)."""
    import torch

    from ..models import ModelSpec
    from .scoring import score_shard

    torch.set_num_threads(job.threads)
    spec = ModelSpec.from_config(job.wildcards.model, job.params.spec)
    out = job.output
    score_shard(
        spec,
        windows_fasta=job.input.windows,
        neighbors_fasta=job.input.neighbors_fasta,
        neighbors_tsv=job.input.neighbors_tsv,
        snps_path=job.input.snps,
        features=job.params.features,
        batch_size=job.params.batch_size,
        seed=job.params.seed,
        chunk_size=job.params.chunk_size,
        features_path=out.features,
        tokens_path=out.tokens if "tokens" in out.keys() else None,
        max_excluded_share=job.params.max_excluded_share,
        token_frequencies=_optional_input(job, "token_frequencies"),
        recall_prefix=_optional_input(job, "recall_prefix"),
        context=job.params.context,
        reference_fasta=_optional_input(job, "reference_fasta"),
    )


def recall_prefix_rule(job: Job) -> None:
    """ReCaLL's prefix: a seeded draw of the target's non-member windows, with their sequences (attacks/recall)."""
    from .attacks.recall import write_prefix

    ids = write_prefix(
        job.input.membership, job.input.windows, job.output[0], n=job.params.prefix_windows, seed=job.params.seed
    )
    logging.getLogger("gfm_audit.privacy.attacks.recall").info("prefix windows: %s", ", ".join(ids))


def window_features_rule(job: Job) -> None:
    """The per-window feature table of one model, from its shards (the reduce step)."""
    from .features import reduce_shards

    # The range statistics of the configured attacks (ramia's trimmed means), none by default.
    rows = reduce_shards(list(job.input), job.output[0], ranges=job.params.ranges)
    logging.getLogger("gfm_audit.privacy.features").info("reduced %d shards: %d windows", len(job.input), rows)


def run_attacks_rule(job: Job) -> None:
    """Every configured attack on one model, from per-window feature tables only."""
    from .attacks.runner import load_attack_data, run_attacks, write_attack_outputs

    params = job.params
    data = load_attack_data(
        job.wildcards.model,
        feature_paths={m: job.input[m] for m in params.scored},
        membership_path=job.input.membership,
        references=params.references,
        params=params.attacks,
    )
    table, skipped = run_attacks(data, params.attacks["names"])
    write_attack_outputs(table, skipped, scores_path=job.output.scores, skipped_path=job.output.skipped)


def _write_inference(job: Job, table: pd.DataFrame, sets: tuple, *, unit: str = "windows") -> pd.DataFrame:
    """Maini et al.'s test and DUCI on ``table`` (one row per window or per person, ``unit``) with the rule's
    settings; writes result.tsv and p_curve.tsv together, logs each row and returns the result rows."""
    from ..outputs import atomic_outputs, write_tsv
    from .dataset_inference import score_table_inference

    s = job.params.settings
    suspect, validation = sets
    result, curve = score_table_inference(
        table,
        suspect,
        validation,
        names=(s["suspect"], s["validation"]),
        splits=s["splits"],
        seed=s["seed"],
        alpha=s["alpha"],
        clip=s["clip"],
        C=s["C"],
        curve_sizes=s["curve_sizes"],
        curve_repeats=s["curve_repeats"],
        duci_attack=s["duci_attack"],
    )
    result.insert(0, "model", job.wildcards.model)
    with atomic_outputs(job.output.result, job.output.curve) as (r, c):
        write_tsv(result, r)
        write_tsv(curve, c)
    log = logging.getLogger("gfm_audit.privacy.dataset_inference")
    for row in result.itertuples():
        log.info(
            "%s: %s vs %s, %d vs %d %s, p = %.3g over %d splits (%s at %g), DUCI share %.3f +- %.3f",
            row.test,
            row.suspect,
            row.validation,
            row.n_suspect,
            row.n_validation,
            unit,
            row.p_value,
            row.splits,
            "rejected" if row.rejected else "not rejected",
            row.alpha,
            row.duci_fraction,
            row.duci_standard_error,
        )
    return result


def dataset_inference_rule(job: Job) -> None:
    """result.tsv and p_curve.tsv of one model: Maini et al.'s test of the suspect set, DUCI's share of it."""
    from .dataset_inference import window_sets
    from .metrics import read_scores

    if "suspect_windows" in job.input.keys():
        # A FASTA suspect set: its windows' scores come from the attacks run again with them (suspect_stages.py).
        from .suspect_stages import suspect_fasta_inference_rule

        suspect_fasta_inference_rule(job)
        return
    s = job.params.settings
    table = read_scores(job.input.scores)
    suspect, validation = window_sets(
        table, s["suspect"], s["validation"], windows_path=job.input.windows, contigs_path=job.input.contigs
    )
    _write_inference(job, table, (suspect, validation))


def evaluate_attacks_rule(job: Job) -> None:
    """metrics.tsv and the neighbor threshold table of one model."""
    from .metrics import HYENADNA_BENCHMARK_THRESHOLDS, evaluate, read_scores, threshold_table, write_metrics

    p = job.params.metrics
    scores = read_scores(job.input[0])
    metrics = evaluate(scores, n_boot=p["bootstrap"], seed=p["seed"], delta=p["delta"], level=p["confidence"])
    fixed = job.params.thresholds == "fixed"
    thresholds = threshold_table(scores, HYENADNA_BENCHMARK_THRESHOLDS if fixed else None)
    write_metrics(metrics, thresholds, metrics_path=job.output.metrics, thresholds_path=job.output.thresholds)


def plot_dataset_inference_rule(job: Job) -> None:
    """The figure of one model's p_curve.tsv (privacy/dataset_inference_report.py)."""
    import pandas as pd

    from .dataset_inference_report import p_curve_figure

    p_curve_figure(pd.read_csv(job.input.curve, sep="\t"), job.output[0], unit=job.params.unit)


def plot_attacks_rule(job: Job) -> None:
    """The figures of one audited model."""
    from . import plots
    from .metrics import read_scores

    scores = read_scores(job.input.scores)
    out = job.output
    plots.roc_figure(scores, out.roc)
    plots.histogram_figure(scores, out.histograms)
    plots.neighbor_loss_figure(plots.read_snp_neighbor_losses(list(job.input.sequences)), out.neighbors)
    plots.snp_site_figure(scores, out.snp_sites)


def individual_haplotypes_rule(job: Job) -> None:
    """Each selected individual's two haplotype sequences per window (membership mode individuals)."""
    from .haplotypes import haplotypes_stage

    counts = haplotypes_stage(
        job.input.fasta,
        job.input.windows,
        job.params.vcf,
        params=job.params.individuals,
        max_ref_mismatch_fraction=job.params.max_ref_mismatch_fraction,
        out=dict(job.output.items()),
    )
    log = logging.getLogger("gfm_audit.privacy.haplotypes")
    for key in sorted(counts):
        log.info("%s: %d", key, counts[key])


def individuals_membership_rule(job: Job) -> None:
    """results/membership_individuals.tsv: which individuals the target and each reference model train on."""
    import pandas as pd

    from .individuals.membership import individuals_split
    from .membership import write_membership

    params = job.params.membership
    samples = pd.read_csv(job.input.samples, sep="\t", dtype={"sample": str})["sample"].tolist()
    table = individuals_split(
        samples,
        member_fraction=params["member_fraction"],
        n_references=params["reference_models"],
        seed=params["seed"],
    )
    logging.getLogger("gfm_audit.privacy.individuals").info(
        "%d individuals: %d members", len(table), int(table.target_member.sum())
    )
    write_membership(table, job.output[0])


def train_individual_model_rule(job: Job) -> None:
    """Train the target or one reference model on the haplotype windows of its member individuals."""
    import torch

    from ..fasta import read_fasta
    from ..models import ModelSpec
    from .haplotypes import read_haplotype_index
    from .individuals.membership import member_haplotypes, read_individual_membership
    from .training import train_model

    torch.set_num_threads(job.threads)
    block = dict(job.params.spec)
    spec = ModelSpec.from_config(block.pop("name"), block)
    index = read_haplotype_index(job.input.index)
    chosen = member_haplotypes(index, read_individual_membership(job.input.membership), job.params.column)
    sequences = read_fasta(job.input.haplotypes, keep=set(chosen))
    train_model(
        spec,
        [sequences[s] for s in chosen],
        params=job.params.training,
        seed=job.params.seed,
        out_dir=job.output[0],
    )


def score_individuals_rule(job: Job) -> None:
    """Per-token scores of every haplotype window under one individuals-mode model."""
    import torch

    from ..models import ModelSpec
    from .individuals.scores import score_haplotypes

    torch.set_num_threads(job.threads)
    spec = ModelSpec.from_config(job.wildcards.imodel, job.params.spec)
    score_haplotypes(
        spec,
        fasta_path=job.input.haplotypes,
        alleles_path=job.input.alleles,
        batch_size=job.params.scoring["batch_size"],
        seed=job.params.scoring["seed"],
        out_path=job.output[0],
    )


def individual_attacks_rule(job: Job) -> None:
    """Person-level membership attacks on the target: scores, metrics and the windows-per-person curve."""
    import pandas as pd

    from ..outputs import atomic_outputs, write_tsv
    from .haplotypes import read_alleles, read_haplotype_index
    from .individuals.membership import read_individual_membership
    from .individuals.person_attacks import evaluate_persons, person_scores
    from .individuals.scores import alt_offsets, sequence_features
    from .individuals.windows_curve import windows_curve

    params, target = job.params.individuals, job.params.target
    index = read_haplotype_index(job.input.index)
    offsets = alt_offsets(read_alleles(job.input.alleles))
    membership = read_individual_membership(job.input.membership)
    features = {m: sequence_features(pd.read_parquet(job.input[m]), offsets) for m in job.params.models}
    features[target] = features.pop("target", features.get(target))
    table = person_scores(features, index, membership, target=target)
    metrics = evaluate_persons(table, params=params["metrics"])
    curve = windows_curve(
        features, index, membership, target=target, repeats=params["curve_repeats"], seed=params["seed"]
    )
    with atomic_outputs(job.output.scores, job.output.metrics, job.output.curve) as (s, m, c):
        write_tsv(table, s)
        write_tsv(metrics, m)
        write_tsv(curve, c)
    log = logging.getLogger("gfm_audit.privacy.individuals")
    for row in metrics.itertuples(index=False):
        log.info("%s: AUC %.3f (%.3f-%.3f)", row.attack, row.auc, row.auc_low, row.auc_high)


def individuals_dataset_inference_rule(job: Job) -> None:
    """Rule individuals_dataset_inference: result.tsv and p_curve.tsv of the target over people."""
    import pandas as pd

    from .dataset_inference import SET_KEYWORDS
    from .haplotypes import read_alleles, read_haplotype_index
    from .individuals.dataset_inference import disjoint_people, person_set, person_table, read_individuals
    from .individuals.membership import read_individual_membership
    from .individuals.person_attacks import person_scores, sequence_statistics
    from .individuals.scores import alt_offsets, sequence_features
    from .individuals.tables import read_table

    s, target = job.params.settings, job.params.target
    index = read_haplotype_index(job.input.index)
    offsets = alt_offsets(read_alleles(job.input.alleles))
    membership = read_individual_membership(job.input.membership)
    selected = read_table(job.input.samples, dtype={"sample": str})["sample"].tolist()
    lists = {
        s[key]: read_individuals(s[key], selected=selected, key=f"dataset_inference.{key}")
        for key in ("suspect", "validation")
        if s[key] not in SET_KEYWORDS
    }
    features = {m: sequence_features(pd.read_parquet(job.input[m]), offsets) for m in job.params.models}
    per_seq = sequence_statistics(features, index, membership, target=target)
    table = person_table(per_seq, person_scores(features, index, membership, target=target))
    suspect = person_set(s["suspect"], table, key="dataset_inference.suspect", lists=lists)
    validation = person_set(s["validation"], table, key="dataset_inference.validation", lists=lists)
    names = (s["suspect"], s["validation"])
    disjoint_people(suspect, validation, table, names=names)
    _write_inference(job, table, (suspect, validation), unit="people")


def individual_ramia_rule(job: Job) -> None:
    """Rule individual_ramia: the target's range scores per (person, window), and their metrics (range labels)."""
    import pandas as pd

    from ..fasta import read_fasta
    from ..outputs import atomic_outputs, write_tsv
    from .haplotypes import read_haplotype_index
    from .individuals.membership import read_individual_membership
    from .individuals.ranges import haplotype_ranges
    from .metrics import METRIC_COLUMNS, evaluate

    trims = job.params.trim if isinstance(job.params.trim, list) else [job.params.trim]
    losses = pd.read_parquet(job.input.scores, columns=["sequence_id", "loss"]).set_index("sequence_id").loss
    membership = read_individual_membership(job.input.membership)
    table = haplotype_ranges(
        losses,
        read_haplotype_index(job.input.index),
        membership,
        sequences=read_fasta(job.input.haplotypes),
        trims=trims,
    )
    scores = [c for c in table.columns if c.startswith("ramia_")]
    shaped = table[["range_id", "member", *scores]].rename(columns={"range_id": "window_id"})
    p = job.params.metrics
    log = logging.getLogger("gfm_audit.privacy.individuals")
    shared = int(((table.member == 1) & (table.person_member == 0)).sum())
    log.info(
        "%d ranges, %d members; %d of the non-members' ranges hold a haplotype a member carries",
        len(table),
        int(table.member.sum()),
        shared,
    )
    if table.member.nunique() < 2:
        # Short windows and common haplotypes: every person may share a haplotype with some member at every
        # window. Then there is nothing to tell apart; the ranges table says so, the metrics are left empty.
        log.warning("every range has the same label (%d): no metrics", int(table.member.iloc[0]))
        metrics = pd.DataFrame(columns=[c for c in METRIC_COLUMNS if c != "rmia_population"])
    else:
        metrics = evaluate(shaped, n_boot=p["bootstrap"], seed=p["seed"], delta=p["delta"], level=p["confidence"])
        metrics = metrics.drop(columns="rmia_population")
    with atomic_outputs(job.output.ranges, job.output.metrics) as (r, m):
        write_tsv(table, r)
        write_tsv(metrics, m)
    for row in metrics.itertuples(index=False):
        log.info("%s: AUC %.3f (%.3f-%.3f)", row.attack, row.auc, row.auc_low, row.auc_high)


def genotype_inference_rule(job: Job) -> None:
    """Ask the target which allele a person carries at hidden sites; accuracy by AF bin."""
    import torch

    from ..fasta import read_fasta
    from ..models import ModelSpec
    from ..outputs import atomic_outputs, write_tsv
    from .haplotypes import read_alleles
    from .individuals.genotype_inference import DECISION_COLUMNS, genotype_queries, genotype_summary, infer_genotypes
    from .individuals.membership import read_individual_membership

    torch.set_num_threads(job.threads)
    spec = ModelSpec.from_config(job.wildcards.model, job.params.spec)
    params = job.params.genotypes
    membership = read_individual_membership(job.input.membership)
    alleles = read_alleles(job.input.alleles)
    queries = genotype_queries(alleles, membership, per_person=params["sites_per_person"], seed=params["seed"])
    sequences = read_fasta(job.input.haplotypes, keep=set(queries.seq_id))
    decisions = infer_genotypes(spec, queries, sequences, batch_size=job.params.batch_size, seed=params["seed"])
    summary = genotype_summary(decisions)
    with atomic_outputs(job.output.decisions, job.output.summary) as (d, s):
        write_tsv(decisions[list(DECISION_COLUMNS)], d)
        write_tsv(summary, s)


def plot_individuals_rule(job: Job) -> None:
    """The person-level ROC, windows-per-person and genotype-accuracy figures."""
    from . import plots
    from .individuals.tables import read_table

    plots.person_roc_figure(read_table(job.input.scores, dtype={"sample": str}), job.output.roc)
    plots.windows_curve_figure(read_table(job.input.curve), job.output.curve)
    plots.genotype_accuracy_figure(read_table(job.input.genotypes), job.output.genotypes)


def plot_token_profile_rule(job: Job) -> None:
    """Mean per-token log p by position, members vs non-members, from the kept per-token tables."""
    from . import plots
    from .membership import read_membership

    membership = read_membership(job.input.membership)
    profile = plots.token_profile(list(job.input.tokens), membership)
    plots.token_profile_figure(profile, job.output[0])


def make_canaries_rule(job: Job) -> None:
    """results/memorisation/canaries.tsv: the inserted and the never-inserted canaries."""
    import pandas as pd

    from .membership import read_membership
    from .memorisation.canaries import check_budget, random_canaries, snp_rich_canaries, write_canaries
    from .reference import read_contigs

    params = job.params.canaries
    n_members = int(read_membership(job.input.membership).target_member.sum())
    bernoulli = params.get("inclusion", "all") == "bernoulli"
    if not bernoulli:
        # The one-run audit needs many canaries, and bounds the training algorithm's epsilon whatever else the
        # training set holds: there, canaries may outnumber the member windows.
        check_budget(params["n"], params["repeats"], n_members)
    if params["kind"] == "random":
        canaries = random_canaries(
            params["n"],
            params["length"],
            repeats=params["repeats"],
            seed=params["seed"],
            inclusion=params.get("inclusion", "all"),
        )
    else:
        windows = pd.read_csv(job.input.windows, sep="\t", dtype={"window_id": str, "chrom": str})
        contigs = {c.fasta_contig: c.vcf_contig for c in read_contigs(job.input.contigs)}
        canaries = snp_rich_canaries(
            job.input.fasta, job.input.vcf, windows=windows, vcf_contigs=contigs, params=params
        )
    write_canaries(canaries, job.output[0])
    inserted = [c for c in canaries if c.group == "inserted"]
    logging.getLogger("gfm_audit.privacy.memorisation").info(
        "%d canaries inserted (%d copies beside %d member windows), %d never inserted%s",
        len(inserted),
        sum(c.repeats for c in inserted),
        n_members,
        len(canaries) - len(inserted),
        " (each by a fair coin)" if bernoulli else "",
    )


def one_run_audit_rule(job: Job) -> None:
    """results/memorisation/<model>/one_run.tsv: the one-run canary bound (Steinke et al. 2023) of the target."""
    import numpy as np
    import torch

    from ..models import ModelSpec
    from ..outputs import atomic_outputs, write_tsv
    from .memorisation.canaries import read_canaries
    from .memorisation.one_run import canary_scores, one_run_audit

    torch.set_num_threads(job.threads)
    spec = ModelSpec.from_config(job.wildcards.model, job.params.spec)
    canaries = read_canaries(job.input.canaries)
    scores = canary_scores(spec, [c.sequence for c in canaries], batch_size=job.params.batch_size)
    included = np.array([c.group == "inserted" for c in canaries])
    table = one_run_audit(scores, included, delta=job.params.delta, level=job.params.level, guesses=job.params.guesses)
    with atomic_outputs(job.output[0]) as (tmp,):
        write_tsv(table, tmp)
    row = table.iloc[0]
    logging.getLogger("gfm_audit.privacy.memorisation").info(
        "one-run bound: eps >= %.3f at delta %g (%d of %d guesses right, %d canaries; at most %.3f possible)",
        row.eps_lower_bound,
        row.delta,
        row.correct,
        row.guesses,
        row.canaries,
        row.ceiling,
    )


def canary_exposure_rule(job: Job) -> None:
    """results/memorisation/<model>/exposure.tsv."""
    import torch

    from ..models import ModelSpec
    from ..outputs import atomic_outputs, write_tsv
    from .memorisation.canaries import read_canaries
    from .memorisation.exposure import canary_exposure, model_log_perplexity

    torch.set_num_threads(job.threads)
    spec = ModelSpec.from_config(job.wildcards.model, job.params.spec)
    params = job.params.canaries
    table = canary_exposure(
        read_canaries(job.input.canaries),
        model_log_perplexity(spec, batch_size=job.params.batch_size),
        candidates=params["candidates"],
        enumerate_max=params["enumerate_max"],
        seed=params["seed"],
    )
    with atomic_outputs(job.output[0]) as (tmp,):
        write_tsv(table, tmp)
    means = table.groupby("repeats").exposure.mean()
    logging.getLogger("gfm_audit.privacy.memorisation").info(
        "mean exposure by repeats: %s", ", ".join(f"{r}: {v:.2f}" for r, v in means.items())
    )


def extraction_rule(job: Job) -> None:
    """results/memorisation/<model>/extraction.tsv."""
    import torch

    from ..fasta import read_fasta
    from ..models import ModelSpec
    from ..outputs import atomic_outputs, write_tsv
    from .membership import read_membership
    from .memorisation.canaries import read_canaries
    from .memorisation.extraction import ModelDecoder, check_decoding, run_extraction

    torch.set_num_threads(job.threads)
    spec = ModelSpec.from_config(job.wildcards.model, job.params.spec)
    params = job.params.extraction
    check_decoding(spec.kind, params["decoding"], spec.name)
    labels = read_membership(job.input.membership).set_index("window_id").target_member.to_dict()
    path = _optional_input(job, "canaries")
    canaries = read_canaries(path) if path else []
    table = run_extraction(
        ModelDecoder.load(spec),
        read_fasta(job.input.windows),
        labels,
        canaries=canaries,
        params=params,
        batch_size=job.params.batch_size,
    )
    with atomic_outputs(job.output[0]) as (tmp,):
        write_tsv(table, tmp)


def plot_exposure_rule(job: Job) -> None:
    """Exposure against repeats."""
    import pandas as pd

    from .memorisation.plots import exposure_figure

    exposure_figure(pd.read_csv(job.input[0], sep="\t"), job.output[0])


def plot_extraction_rule(job: Job) -> None:
    """Extraction rate against prefix length."""
    import pandas as pd

    from .memorisation.plots import extraction_figure

    extraction_figure(pd.read_csv(job.input[0], sep="\t"), job.output[0])
