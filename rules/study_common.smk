# Study mode's points and the functions of its rules (rules/study.smk): the grid expanded and checked at start-up.
import re

from gfm_audit.privacy.study.grid import expand_grid, model_config_overrides, point_config  # noqa: E402
from gfm_audit.privacy.study.report import member_passes  # noqa: E402

try:
    STUDY_POINTS = expand_grid(config) if MODELS else []
    STUDY = {p.name: p for p in STUDY_POINTS}
    # Each point's config, checked like the workflow's: a value the schema refuses names its point.
    STUDY_CONFIG = {
        p.name: validate_config(point_config(config, p), source=f"study point {p.name}") for p in STUDY_POINTS
    }
    if STUDY_POINTS and RECALL:
        raise InputError(
            "config error: attacks.names has recall, whose prefix is drawn from one membership; a study has one "
            "membership per point: remove recall from attacks.names or study.grid"
        )
except InputError as exc:
    sys.exit(f"gfm-audit: {exc}")

STUDY_REFERENCES = {n: reference_names(c["membership"]["reference_models"]) for n, c in STUDY_CONFIG.items()}


def study_trained(point):
    """The models a point trains: its target, then its reference models."""
    return [STUDY[point].target, *STUDY_REFERENCES[point]]


def study_base(wildcards):
    """Where a point's models start: the target's folder, or its copy with the point's config.json keys."""
    point = STUDY[wildcards.point]
    if model_config_overrides(point):
        return f"results/study/{point.name}/base/{point.target}"
    return MODELS[point.target]["path"]


def study_targets():
    """The study's outputs: its table, figures and page, and every point's metrics (the per-point audits)."""
    if not STUDY_POINTS:
        return []
    metrics = [f"results/study/{p.name}/attacks/{p.target}/metrics.tsv" for p in STUDY_POINTS]
    return [*metrics, *STUDY_SUMMARY]


STUDY_SUMMARY = [
    f"results/study/{f}" for f in ("summary.tsv", "auc_vs_epochs.png", "auc_vs_duplication.png", "report.html")
]


def study_report_points():
    """The points as the study's page lists them: name, grid values, target, seed and member passes."""
    return [
        {
            "name": p.name,
            "values": p.values,
            "target": p.target,
            "seed": p.seed,
            "passes": member_passes(STUDY_CONFIG[p.name]),
        }
        for p in STUDY_POINTS
    ]


def study_heldout(wildcards):
    """Mode genome: the point's held-out blocks (rule study_genome_split), as an input; none in finetune."""
    return [f"results/study/{wildcards.point}/genome/heldout.tsv"] if MODE == "genome" else []


def study_genome_inputs(wildcards):
    """Mode genome: the staged FASTA with its indexes, the contig table and the point's held-out blocks (in the
    order the training job reads them: FASTA first, contigs and held-out blocks last)."""
    if MODE != "genome":
        return []
    staged = staged_reference()
    return [staged[k] for k in ("fasta", "fai", "gzi", "contigs") if k in staged] + study_heldout(wildcards)


def study_token_frequencies(wildcards):
    """dc_pdd's token frequencies of the point's target tokenizer (shared with the single audit's)."""
    if not FREQUENCY_MODELS:
        return {}
    return {"token_frequencies": f"results/reference/token_frequencies/{STUDY[wildcards.point].target}.tsv"}
