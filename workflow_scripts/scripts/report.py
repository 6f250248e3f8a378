"""Rule report: results/report/report.html."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.report import build_report  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

CAPTIONS = {
    "roc": "ROC curves of every attack (linear and log-log)",
    "histograms": "Member vs non-member scores",
    "neighbour_loss": "Per-window loss: neighbours (grey), their mean (blue), the original (red)",
    "snp_sites": "Neighbour loss difference: all tokens vs SNP-site tokens",
}


def main(snakemake):
    models = snakemake.params.models
    by_model = lambda files: {m: f for m in models for f in files if f"/{m}/" in f}  # noqa: E731
    figures = {m: [(f, CAPTIONS[Path(f).stem]) for f in snakemake.input.figures if f"/{m}/" in f] for m in models}
    leaks = build_report(
        snakemake.params.config,
        snakemake.input.windows,
        snakemake.input.neighbors,
        snakemake.input.membership,
        models,
        by_model(snakemake.input.metrics),
        by_model(snakemake.input.skipped),
        by_model(snakemake.input.thresholds),
        figures,
        snakemake.output[0],
    )
    for model, leaked in leaks.items():
        logging.getLogger("gfm_audit.report").info("%s: %s", model, "leaks" if leaked else "no clear leakage")


run_rule(snakemake, main)  # noqa: F821
