"""Every file the HTML report reads, declared once: its path template and, for a figure, its caption.

The plotting rules take their outputs from :data:`FIGURES`, the report rule its inputs from :func:`report_inputs`
(one input key per file and name) and the report (:mod:`.build`) its tables, figures and captions from
:func:`collect`.
Files are found by key, never by looking for a name inside a path: a model named ``report`` is inside every
figure's path, a classifier named ``ga`` inside every GA table's, ``cnn`` inside ``cnn2``'s.

Each figure's caption for Snakemake's own report (``snakemake --report``) is ``report/<kind>.rst`` at the top of
the repository; it starts with the caption given here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Sections of the report and the wildcard that carries the name in their templates.
WILDCARDS = {
    "privacy": "model",
    "ga": "classifier",
    "ga_certify": "classifier",
    "fimba": "fmodel",
    "exposure": "model",
    "extraction": "model",
    "individuals": "model",
    "dp_audit": "model",
    "one_run": "model",
    "dataset_inference": "model",
}


@dataclass(frozen=True)
class ReportFile:
    """A file of a section: one per name when ``template`` has the section's wildcard; a figure has a caption."""

    section: str
    template: str
    caption: str = ""

    def path(self, name: str) -> str:
        return self.template.format(**{WILDCARDS[self.section]: name})


# One file for the whole section (when it has a name at all).
SHARED = {
    "windows": ReportFile("privacy", "results/windows/windows.tsv"),
    "neighbors": ReportFile("privacy", "results/neighbors/neighbors.tsv"),
    "membership": ReportFile("privacy", "results/membership.tsv"),
    "detection": ReportFile("fimba", "results/robustness/fimba/detection.tsv"),
    "vae": ReportFile("fimba", "results/robustness/fimba/vae.tsv"),
    "comparison": ReportFile("fimba", "results/robustness/fimba/comparison.tsv"),
    # Not under results/robustness/ga/, where each classifier has a folder of its own name.
    "attack_table": ReportFile("ga", "results/robustness/attack_table.tsv"),
    # The defence rows of that table: GA success before / after every adversarial-training scheme run.
    "defence_table": ReportFile("ga", "results/robustness/defence_table.tsv"),
    "haplotype_counts": ReportFile("individuals", "results/individuals/counts.tsv"),
    "membership_individuals": ReportFile("individuals", "results/membership_individuals.tsv"),
}

# One file per name.
TABLES = {
    "metrics": ReportFile("privacy", "results/attacks/{model}/metrics.tsv"),
    "skipped": ReportFile("privacy", "results/attacks/{model}/skipped.tsv"),
    "thresholds": ReportFile("privacy", "results/attacks/{model}/neighborhood_thresholds.tsv"),
    "adversarial": ReportFile("ga", "results/robustness/ga/{classifier}/adversarial.tsv"),
    "summary": ReportFile("ga", "results/robustness/ga/{classifier}/summary.tsv"),
    "progress": ReportFile("ga", "results/robustness/adv_training/{classifier}/progress.tsv"),
    "ga_comparison": ReportFile("ga", "results/robustness/ga/{classifier}/comparison.tsv"),
    "training_cost": ReportFile("ga", "results/robustness/adv_training/{classifier}/cost.tsv"),
    # Certified accuracy by radius beside the GA's robust accuracy by budget, with robustness.ga.certify.enabled.
    "certified_accuracy": ReportFile("ga_certify", "results/robustness/ga/{classifier}/certified_accuracy.tsv"),
    "curve": ReportFile("fimba", "results/robustness/fimba/{fmodel}/curve.tsv"),
    "exposure": ReportFile("exposure", "results/memorisation/{model}/exposure.tsv"),
    "extraction": ReportFile("extraction", "results/memorisation/{model}/extraction.tsv"),
    "person_metrics": ReportFile("individuals", "results/individuals/attacks/{model}/person_metrics.tsv"),
    "windows_curve": ReportFile("individuals", "results/individuals/attacks/{model}/windows_curve.tsv"),
    "genotype_summary": ReportFile("individuals", "results/individuals/genotypes/{model}/summary.tsv"),
    # A DP-trained model's folder, for the dp.json inside (privacy/dp_report.py): train_model's directory output,
    # of which a file cannot be an input of its own. Asked for only where training writes dp.json.
    "dp_model": ReportFile("dp_audit", "results/models/{model}"),
    # The one-run canary bound of the target (privacy/memorisation/one_run.py), when its canaries are included by
    # a fair coin each (memorisation.canaries.inclusion: bernoulli).
    "one_run_bound": ReportFile("one_run", "results/memorisation/{model}/one_run.tsv"),
    # Was the suspect set trained on, and what share of it (privacy/dataset_inference.py), with
    # dataset_inference.enabled.
    "dataset_inference": ReportFile("dataset_inference", "results/dataset_inference/{model}/result.tsv"),
}

# In the order the report shows them within a section.
FIGURES = {
    "roc": ReportFile("privacy", "results/report/{model}/roc.png", "ROC curves of every attack (linear and log-log)"),
    "histograms": ReportFile("privacy", "results/report/{model}/histograms.png", "Member vs non-member scores"),
    "neighbor_loss": ReportFile(
        "privacy",
        "results/report/{model}/neighbor_loss.png",
        "Per-window loss: neighbors (grey), their mean (blue), the original (red)",
    ),
    "snp_sites": ReportFile(
        "privacy", "results/report/{model}/snp_sites.png", "Neighbor loss difference: all tokens vs SNP-site tokens"
    ),
    "asr_vs_budget": ReportFile(
        "ga",
        "results/report/robustness/{classifier}/asr_vs_budget.png",
        "Attack success rate vs edit budget: GA vs random substitutions",
    ),
    "attack_comparison": ReportFile(
        "ga",
        "results/report/robustness/{classifier}/attack_comparison.png",
        "Attack success rate vs edit budget: GA, random, greedy, LM-proposal and PGD under the same constraints",
    ),
    "edits_histogram": ReportFile(
        "ga",
        "results/report/robustness/{classifier}/edits_histogram.png",
        "Substitutions per successful adversarial sequence",
    ),
    "training_progress": ReportFile(
        "ga", "results/robustness/adv_training/{classifier}/progress.png", "Adversarial-training progress"
    ),
    "accuracy_vs_m": ReportFile(
        "fimba",
        "results/report/robustness/fimba/{fmodel}/curve.png",
        "Accuracy, FP and FN against m: FIMBA and its ablations",
    ),
    "spectra": ReportFile(
        "fimba",
        "results/report/robustness/fimba/{fmodel}/spectra.png",
        "Log power spectra: original, FIMBA, brute force",
    ),
    "fimba_comparison": ReportFile(
        "fimba",
        "results/report/robustness/fimba/{fmodel}/comparison.png",
        "Accuracy against the L2 budget: FIMBA vs ZOO, HopSkipJump, FGSM, Auto-PGD (ART)",
    ),
    "exposure_vs_repeats": ReportFile(
        "exposure",
        "results/report/{model}/exposure_vs_repeats.png",
        "Canary exposure against the number of insertions, beside never-inserted canaries",
    ),
    "extraction_vs_prefix": ReportFile(
        "extraction",
        "results/report/{model}/extraction_vs_prefix.png",
        "Extraction against prefix length: members, non-members and the k-mer baseline",
    ),
    "dataset_inference_curve": ReportFile(
        "dataset_inference",
        "results/report/{model}/dataset_inference_curve.png",
        "Dataset inference: p-value and power against the suspect set size (windows; people in individuals mode)",
    ),
    "person_roc": ReportFile(
        "individuals",
        "results/report/individuals/{model}/person_roc.png",
        "Person-level ROC curves: one score per individual (linear and log-log)",
    ),
    "windows_per_person": ReportFile(
        "individuals",
        "results/report/individuals/{model}/windows_per_person.png",
        "Person-level AUC against the number of windows per person",
    ),
    "genotype_accuracy": ReportFile(
        "individuals",
        "results/report/individuals/{model}/genotype_accuracy.png",
        "Genotype inference: accuracy by allele-frequency bin, members vs non-members vs baselines",
    ),
}


def input_key(kind: str, name: str | None = None) -> str:
    """The report rule's input key of ``kind`` for ``name`` (a shared file's key is its kind).

    Kinds are distinct and none holds ``__``, so two (kind, name) pairs never share a key.
    """
    return kind if name is None else f"{kind}__{name}"


def names_in(inputs: Mapping[str, str], kind: str) -> list[str]:
    """The names that the report rule's ``inputs`` hold a file of ``kind`` for, in their order (none: [])."""
    return [key.split("__", 1)[1] for key in inputs if key.startswith(input_key(kind, ""))]


def section_outputs(section: str, names: Sequence[str]) -> dict[str, list[str]]:
    """{kind: paths} of every file of ``section``: one per name, a shared file once (none without names)."""
    per_name = {**TABLES, **FIGURES}
    outputs = {kind: [spec.path(n) for n in names] for kind, spec in per_name.items() if spec.section == section}
    outputs |= {kind: [spec.template] for kind, spec in SHARED.items() if spec.section == section and names}
    return outputs


def report_inputs(names: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """{input key: path} of every file of every name; ``names`` maps each section to its names."""
    inputs = {}
    for section, section_names in names.items():
        for kind, paths in section_outputs(section, section_names).items():
            keys = [input_key(kind)] if kind in SHARED else [input_key(kind, n) for n in section_names]
            inputs |= dict(zip(keys, paths, strict=True))
    return inputs


@dataclass(frozen=True)
class Section:
    """The files of one section: shared ones by kind; per name, each table's path and each figure's (path, caption)."""

    shared: dict[str, str]
    tables: dict[str, dict[str, str]]
    figures: dict[str, list[tuple[str, str]]]


def collect(inputs: Mapping[str, str], section: str, names: Sequence[str]) -> Section:
    """The files of ``section`` for ``names``, looked up by key in the report rule's ``inputs``.

    The paths come from ``inputs`` (where Snakemake has applied a module's prefix), never from the templates.
    """
    shared = {kind: str(inputs[input_key(kind)]) for kind, spec in SHARED.items() if spec.section == section and names}
    tables = {
        kind: {name: str(inputs[input_key(kind, name)]) for name in names}
        for kind, spec in TABLES.items()
        if spec.section == section
    }
    figures = {
        name: [
            (str(inputs[input_key(kind, name)]), spec.caption)
            for kind, spec in FIGURES.items()
            if spec.section == section
        ]
        for name in names
    }
    return Section(shared, tables, figures)
