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
include: "rules/reference.smk"
include: "rules/windows.smk"
include: "rules/neighbors.smk"
include: "rules/membership.smk"
include: "rules/training.smk"
include: "rules/scoring.smk"
include: "rules/attacks.smk"
include: "rules/robustness_ga.smk"
include: "rules/robustness_fimba.smk"
include: "rules/report.smk"


rule all:
    input:
        final_targets(),
    default_target: True
