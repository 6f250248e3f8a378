"""Rule report: results/report/report.html."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit.report import build_report, html_image, html_table  # noqa: E402
from gfm_audit.robustness_fimba.report import fimba_section  # noqa: E402
from gfm_audit.robustness_ga.report import ga_section  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402

CAPTIONS = {
    "roc": "ROC curves of every attack (linear and log-log)",
    "histograms": "Member vs non-member scores",
    "neighbour_loss": "Per-window loss: neighbours (grey), their mean (blue), the original (red)",
    "snp_sites": "Neighbour loss difference: all tokens vs SNP-site tokens",
    "asr_vs_budget": "Attack success rate vs edit budget: GA vs random substitutions",
    "edits_histogram": "Substitutions per successful adversarial sequence",
    "progress": "Adversarial-training progress",
    "curve": "Accuracy, FP and FN against m: FIMBA and its ablations",
    "spectra": "Log power spectra: original, FIMBA, brute force",
}


def _by_name(names, files):
    return {n: f for n in names for f in files if f"/{n}/" in f}


def main(snakemake):
    models, classifiers = snakemake.params.models, snakemake.params.classifiers
    inp = snakemake.input
    figures = {m: [(f, CAPTIONS[Path(f).stem]) for f in inp.figures if f"/{m}/" in f] for m in models}
    robustness = ""
    if classifiers:
        ga_figures = {c: [(f, CAPTIONS[Path(f).stem]) for f in inp.ga_figures if f"/{c}/" in f] for c in classifiers}
        robustness = ga_section(classifiers, _by_name(classifiers, inp.ga_adversarial),
                                _by_name(classifiers, inp.ga_summary), _by_name(classifiers, inp.ga_progress),
                                ga_figures, html_table, html_image)  # fmt: skip
    fimba_models = snakemake.params.fimba_models
    if fimba_models:
        fimba_figures = {m: [(f, CAPTIONS[Path(f).stem]) for f in inp.fimba_figures if f"/{m}/" in f]
                         for m in fimba_models}  # fmt: skip
        robustness += fimba_section(fimba_models, _by_name(fimba_models, inp.fimba_curves), inp.fimba_detection[0],
                                    inp.fimba_vae[0], fimba_figures, html_table, html_image)  # fmt: skip
    leaks = build_report(
        snakemake.params.config,
        inp.windows if models else None,
        inp.neighbors if models else None,
        inp.membership if models else None,
        models,
        _by_name(models, inp.metrics),
        _by_name(models, inp.skipped),
        _by_name(models, inp.thresholds),
        figures,
        snakemake.output[0],
        robustness,
    )
    for model, leaked in leaks.items():
        logging.getLogger("gfm_audit.report").info("%s: %s", model, "leaks" if leaked else "no clear leakage")


run_rule(snakemake, main)  # noqa: F821
