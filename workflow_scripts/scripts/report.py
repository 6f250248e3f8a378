"""Rule report: results/report/report.html."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gfm_audit import report_layout  # noqa: E402
from gfm_audit.privacy.report import build_report  # noqa: E402
from gfm_audit.robustness.fimba.report import fimba_section  # noqa: E402
from gfm_audit.robustness.ga.report import ga_section  # noqa: E402
from gfm_audit.rule_script import run_rule  # noqa: E402


def main(snakemake):
    # Files by input key (report_layout.input_key), as Snakemake resolved them: a module's prefix included.
    inputs = dict(snakemake.input.items())
    models, classifiers = snakemake.params.models, snakemake.params.classifiers
    fimba_models = snakemake.params.fimba_models
    robustness = ""
    if classifiers:
        ga = report_layout.collect(inputs, "ga", classifiers)
        robustness = ga_section(classifiers, ga.tables["adversarial"], ga.tables["summary"], ga.tables["progress"],
                                ga.figures)  # fmt: skip
    if fimba_models:
        fimba = report_layout.collect(inputs, "fimba", fimba_models)
        robustness += fimba_section(fimba_models, fimba.tables["curve"], fimba.shared["detection"],
                                    fimba.shared["vae"], fimba.figures)  # fmt: skip
    privacy = report_layout.collect(inputs, "privacy", models)
    leaks = build_report(
        snakemake.params.config,
        privacy.shared.get("windows"),
        privacy.shared.get("neighbors"),
        privacy.shared.get("membership"),
        models,
        privacy.tables["metrics"],
        privacy.tables["skipped"],
        privacy.tables["thresholds"],
        privacy.figures,
        snakemake.output[0],
        robustness,
    )
    for model, leaked in leaks.items():
        logging.getLogger("gfm_audit.privacy.report").info("%s: %s", model, "leaks" if leaked else "no clear leakage")


run_rule(snakemake, main)  # noqa: F821
