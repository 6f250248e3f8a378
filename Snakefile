# gfm-audit: privacy (membership inference) and robustness audits of genomic
# foundation models. Stages live in rules/<stage>.smk, their science in
# workflow_scripts/gfm_audit/privacy/<stage>.py and robustness/{ga,fimba}/.
from snakemake.utils import min_version

min_version("9.0")


# What `snakemake --report report.zip` says about the workflow; each figure's caption is report/<figure>.rst.
report: "report/workflow.rst"


# config/config.yaml, with the line of a YAML mistake named.
include: "rules/configfile.smk"
include: "rules/common.smk"


# Wildcards that mean one set in every rule. Two stay per rule because their set depends on the rule:
# `model` (SCORED in scoring.smk, MODELS in attacks.smk and report.smk) and `classifier` (GA_TRAINED in
# train_classifier, all of GA_CLASSIFIERS in the other GA rules).
wildcard_constraints:
    shard=r"\d+",
    trained="|".join(TRAINED) or "no-model-is-trained",
    fmodel="|".join(FIMBA_MODELS) or "no-fimba-model",


include: "rules/reference.smk"
include: "rules/windows.smk"
include: "rules/neighbors.smk"
include: "rules/membership.smk"
include: "rules/training.smk"
include: "rules/scoring.smk"
include: "rules/features.smk"
include: "rules/attacks.smk"
include: "rules/memorisation.smk"
include: "rules/dataset_inference.smk"
include: "rules/individuals.smk"
include: "rules/robustness_ga.smk"
include: "rules/robustness_fimba.smk"
include: "rules/study.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        final_targets(),
