"""The study's own rule functions (rules/study.smk); its audits reuse the privacy stages' functions."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from ...rule_script import Job

log = logging.getLogger("gfm_audit.study")


def study_base_model_rule(job: Job) -> None:
    """A scratch model's folder with the point's config.json keys (``model_config.<key>``): the checkpoint
    folder's files copied, config.json rewritten with the overrides. Only init: scratch models get here (grid.py),
    so no weights are copied that the new sizes would not fit."""
    from ...outputs import atomic_directory

    source, overrides = Path(job.input.base), dict(job.params.overrides)
    with atomic_directory(job.output[0]) as out:
        for item in sorted(source.iterdir()):
            if item.is_file() and item.name != "config.json":
                shutil.copy2(item, Path(out) / item.name)
        config = json.loads((source / "config.json").read_text())
        for key, value in overrides.items():
            log.info("%s: %s -> %s", key, config.get(key), value)
            config[key] = value
        (Path(out) / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def study_summary_rule(job: Job) -> None:
    """summary.tsv (grid point x attack) and the AUC figures against epochs and duplication."""
    from ...outputs import write_tsv
    from .summary import auc_figure, summary_table

    table = summary_table(list(job.params.points), list(job.input.metrics))
    write_tsv(table, job.output.table)
    auc_figure(table, "epochs", job.output.epochs)
    auc_figure(table, "duplication", job.output.duplication)
    log.info("%d points, %d rows", len(job.params.points), len(table))


# A grid point's audit runs the single audit's stage functions on the point's inputs and parameters
# (rules/study.smk passes each the params its single-audit rule passes, from the point's config).


def study_genome_split_rule(job: Job) -> None:
    """A point's held-out blocks (mode genome): genome_split with the point's seed and genome block."""
    from ..stages import genome_split_rule

    genome_split_rule(job)


def study_membership_rule(job: Job) -> None:
    """A point's membership.tsv: membership_labels with the point's member fraction, seed (or held-out blocks)."""
    from ..stages import membership_labels_rule

    membership_labels_rule(job)


def study_train_model_rule(job: Job) -> None:
    """One of a point's models: train_model with the point's epochs, duplication and seed."""
    from ..stages import train_model_rule

    train_model_rule(job)


def study_score_shard_rule(job: Job) -> None:
    """One shard scored with one of a point's models: score_shard."""
    from ..stages import score_shard_rule

    score_shard_rule(job)


def study_window_features_rule(job: Job) -> None:
    """A point's model's per-window table: window_features."""
    from ..stages import window_features_rule

    window_features_rule(job)


def study_run_attacks_rule(job: Job) -> None:
    """A point's attack scores on its target, its own reference models as the attacks': run_attacks."""
    from ..stages import run_attacks_rule

    run_attacks_rule(job)


def study_evaluate_attacks_rule(job: Job) -> None:
    """A point's attack metrics: evaluate_attacks."""
    from ..stages import evaluate_attacks_rule

    evaluate_attacks_rule(job)
