"""Rule evaluate_attacks: metrics.tsv and the neighbor threshold table."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.privacy.metrics import (  # noqa: E402
    HYENADNA_BENCHMARK_THRESHOLDS,
    evaluate,
    read_scores,
    threshold_table,
    write_metrics,
)
from gfm_audit.rule_script import run_rule  # noqa: E402


def main(snakemake):
    p = snakemake.params.metrics
    scores = read_scores(snakemake.input[0])
    metrics = evaluate(scores, p["bootstrap"], p["seed"], p["delta"], p["confidence"])
    fixed = snakemake.params.thresholds == "fixed"
    thresholds = threshold_table(scores, HYENADNA_BENCHMARK_THRESHOLDS if fixed else None)
    write_metrics(metrics, thresholds, snakemake.output.metrics, snakemake.output.thresholds)


run_rule(snakemake, main)  # noqa: F821
