"""What each robustness-GA rule does: ``<rule>_rule(job)`` per rule, taking the rule's Snakemake job
(as in ``privacy/stages.py``), and the stages they run as plain functions, which the tests call."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from ...outputs import atomic_outputs, write_tsv
from ...rule_script import Job
from .adversarial_training import adversarial_training
from .attack import adversarial_table, attack_sequences, sample_rows, settings_from_config, summary_table
from .classifiers import Classifier, load_classifier, new_classifier, save_classifier
from .data import (
    LabelledSequences,
    check_labels,
    check_length,
    check_two_classes,
    encode,
    read_labelled_csv,
    same_length,
    without_sequences_of,
)

log = logging.getLogger(__name__)


def load_splits(train_csv: str, test_csv: str, non_acgt: str) -> tuple[LabelledSequences, LabelledSequences]:
    """Both splits, with training rows that repeat a test sequence dropped (no test sequence is ever trained on),
    each holding both classes."""
    test = read_labelled_csv(test_csv, non_acgt)
    train = without_sequences_of(read_labelled_csv(train_csv, non_acgt), test)
    check_two_classes(train)
    check_two_classes(test)
    return train, test


def check_fits(clf: Classifier, *splits: LabelledSequences) -> None:
    for split in splits:
        check_length(split, clf.fixed_length, clf.name)
        same_length(split)
        check_labels(split, clf.num_labels, clf.name)


def train_classifier_stage(
    name: str,
    spec: Mapping[str, Any],
    *,
    train_csv: str,
    test_csv: str,
    non_acgt: str,
    base_folder: str | None,
    out_dir: str | os.PathLike,
) -> None:
    from .classifiers import accuracy

    train, test = load_splits(train_csv, test_csv, non_acgt)
    length = same_length(train)
    clf = new_classifier(name, spec, base_folder=base_folder, length=length, seed=spec["seed"])
    check_fits(clf, train, test)
    losses = clf.fit(encode(train.sequences), train.labels, training=spec["training"], seed=spec["seed"])
    log.info("classifier %s: clean test accuracy %.4f", name, accuracy(clf, encode(test.sequences), test.labels))
    save_classifier(clf, losses, out_dir)


def ga_attack_stage(
    name: str,
    spec: Mapping[str, Any],
    *,
    folder: str,
    test_csv: str,
    non_acgt: str,
    attack: Mapping[str, Any],
    adversarial_tsv: str,
    summary_tsv: str,
) -> None:
    test = read_labelled_csv(test_csv, non_acgt)
    clf = load_classifier(name, folder, spec)
    check_fits(clf, test)
    constraints, params = settings_from_config(attack)
    chosen = test.subset(sample_rows(len(test), attack["n_sequences"], attack["seed"]))
    run = attack_sequences(clf, chosen, constraints=constraints, params=params, seed=attack["seed"])
    with atomic_outputs(adversarial_tsv, summary_tsv) as (adv_tmp, sum_tmp):
        write_tsv(adversarial_table(run), adv_tmp)
        write_tsv(summary_table(run, constraints.max_edits), sum_tmp)


def compare_attacks_stage(
    name: str,
    spec: Mapping[str, Any],
    *,
    folder: str,
    test_csv: str,
    non_acgt: str,
    attack: Mapping[str, Any],
    comparison: Mapping[str, Any],
    proposal: tuple[str, Mapping[str, Any], str] | None,
    comparison_tsv: str,
    summary_tsv: str | None = None,
) -> None:
    """GA, random, greedy, LM-proposal and PGD on one seeded sample of the test split (``comparison.n_sequences``
    rows drawn with the attack's seed). When that is the GA's own sample (the same n_sequences) and ``summary_tsv``
    is given, the GA's and the random baseline's rows are read from it instead of running them again."""
    import pandas as pd

    from .comparison import compare_attacks, comparison_params, comparison_table, load_proposer

    test = read_labelled_csv(test_csv, non_acgt)
    clf = load_classifier(name, folder, spec)
    check_fits(clf, test)
    constraints, params = settings_from_config(attack)
    settings = comparison_params(comparison)
    proposer = None
    if proposal is not None and "lm_proposal" in settings.attacks:
        proposer = load_proposer(*proposal)
    chosen = test.subset(sample_rows(len(test), settings.n_sequences, attack["seed"]))
    reuse = summary_tsv is not None and settings.n_sequences == attack["n_sequences"]
    result = compare_attacks(
        clf,
        chosen,
        constraints=constraints,
        ga_params=params,
        params=settings,
        seed=attack["seed"],
        proposer=proposer,
        rerun_ga=not reuse,
    )
    summary = pd.read_csv(summary_tsv, sep="\t") if reuse else None
    with atomic_outputs(comparison_tsv) as (tmp,):
        write_tsv(comparison_table(result, max_edits=constraints.max_edits, summary=summary), tmp)


def adversarial_training_stage(
    name: str,
    spec: Mapping[str, Any],
    *,
    folder: str,
    train_csv: str,
    test_csv: str,
    non_acgt: str,
    attack: Mapping[str, Any],
    settings: Mapping[str, Any],
    progress_tsv: str,
    cost_tsv: str,
    model_dir: str,
) -> None:
    train, test = load_splits(train_csv, test_csv, non_acgt)
    clf = load_classifier(name, folder, spec)
    check_fits(clf, train, test)
    constraints, params = settings_from_config(attack)
    progress, cost = adversarial_training(
        clf, train, test, constraints=constraints, params=params, settings=settings, training=spec["training"]
    )
    with atomic_outputs(progress_tsv, cost_tsv) as (tmp, cost_tmp):
        write_tsv(progress, tmp)
        write_tsv(cost, cost_tmp)
        save_classifier(clf, [], model_dir)


def describe_classifier(spec: Mapping[str, Any], folder: str | os.PathLike) -> str:
    """What a classifier is, for the attack table: the CNN, or the GFM family (masked / causal) under a head."""
    import json
    from pathlib import Path

    from ...gfm import registry
    from .classifiers import CLASSIFIER_FILE

    meta_file = Path(folder) / CLASSIFIER_FILE
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {"kind": "huggingface"}
    if meta["kind"] == "cnn":
        return "CNN on one-hot bases, trained here"
    if meta["kind"] == "gfm_head":
        family = registry.family_module(meta["architecture"])
        return f"{meta['architecture']} ({family.KINDS[0]}) + linear head, encoder frozen"
    if spec["kind"] == "gfm_head":
        return "transformers GFM + sequence-classification head, encoder frozen"
    return "Hugging Face sequence classifier (user's)"


def attack_table_stage(
    comparison_paths: Mapping[str, str],
    *,
    folders: Mapping[str, str],
    specs: Mapping[str, Mapping[str, Any]],
    out_tsv: str,
) -> None:
    """results/robustness/attack_table.tsv: one row per classifier, one ASR column per attack."""
    from .report import attack_table

    models = {name: describe_classifier(specs[name], folders[name]) for name in comparison_paths}
    with atomic_outputs(out_tsv) as (tmp,):
        write_tsv(attack_table(comparison_paths, models=models), tmp)


def train_classifier_rule(job: Job) -> None:
    """results/robustness/classifiers/<classifier>/."""
    base = job.input.base
    train_classifier_stage(
        job.wildcards.classifier,
        job.params.spec,
        train_csv=job.input.train,
        test_csv=job.input.test,
        non_acgt=job.params.non_acgt,
        base_folder=base[0] if base else None,
        out_dir=job.output[0],
    )


def ga_attack_rule(job: Job) -> None:
    """results/robustness/ga/<classifier>/adversarial.tsv and summary.tsv."""
    ga_attack_stage(
        job.wildcards.classifier,
        job.params.spec,
        folder=job.input.classifier,
        test_csv=job.input.test,
        non_acgt=job.params.non_acgt,
        attack=job.params.attack,
        adversarial_tsv=job.output.adversarial,
        summary_tsv=job.output.summary,
    )


def compare_attacks_rule(job: Job) -> None:
    """results/robustness/ga/<classifier>/comparison.tsv."""
    proposal = job.input.proposal
    compare_attacks_stage(
        job.wildcards.classifier,
        job.params.spec,
        folder=job.input.classifier,
        test_csv=job.input.test,
        non_acgt=job.params.non_acgt,
        attack=job.params.attack,
        comparison=job.params.comparison,
        proposal=(job.params.proposal_name, job.params.proposal_block, proposal[0]) if proposal else None,
        comparison_tsv=job.output.comparison,
        summary_tsv=job.input.summary,
    )


def adversarial_training_rule(job: Job) -> None:
    """results/robustness/adv_training/<classifier>/progress.tsv and model/."""
    adversarial_training_stage(
        job.wildcards.classifier,
        job.params.spec,
        folder=job.input.classifier,
        train_csv=job.input.train,
        test_csv=job.input.test,
        non_acgt=job.params.non_acgt,
        attack=job.params.attack,
        settings=job.params.settings,
        progress_tsv=job.output.progress,
        cost_tsv=job.output.cost,
        model_dir=job.output.model,
    )


def ga_attack_table_rule(job: Job) -> None:
    """results/robustness/attack_table.tsv."""
    names = list(job.params.names)
    attack_table_stage(
        dict(zip(names, job.input.comparisons, strict=True)),
        folders=dict(zip(names, job.input.classifiers, strict=True)),
        specs=job.params.specs,
        out_tsv=job.output[0],
    )


def plot_ga_rule(job: Job) -> None:
    """The robustness figures of one classifier."""
    import pandas as pd

    from . import plots  # here, not at the top: matplotlib is in the plotting rule's conda env only

    summary = pd.read_csv(job.input.summary, sep="\t")
    adversarial = pd.read_csv(job.input.adversarial, sep="\t")
    plots.asr_vs_budget_figure(summary, job.output.asr)
    plots.comparison_figure(pd.read_csv(job.input.comparison, sep="\t"), job.output.comparison)
    plots.edits_histogram_figure(adversarial, job.output.edits)
    cost = pd.read_csv(job.input.cost, sep="\t")
    plots.progress_figure(pd.read_csv(job.input.progress, sep="\t"), job.output.progress, cost)
