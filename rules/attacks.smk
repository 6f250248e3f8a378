rule run_attacks:
    """Membership-inference attack scores, one column per attack variant."""
    input:
        unpack(attack_score_inputs),
        membership="results/membership.tsv",
        windows="results/windows/windows.fa",
    output:
        scores="results/attacks/{model}/scores.tsv",
        skipped="results/attacks/{model}/skipped.tsv",
    wildcard_constraints:
        model="|".join(MODELS) or "no-model-is-audited",
    params:
        attacks=config["attacks"],
        scored=SCORED,
        references=REFERENCES,
    log:
        "results/logs/attacks/{model}.log",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../workflow_scripts/scripts/run_attacks.py"


rule evaluate_attacks:
    """AUC with CI, TPR at low FPR (FPR <= and < alpha), balanced accuracy, epsilon lower bound, threshold table."""
    input:
        "results/attacks/{model}/scores.tsv",
    output:
        metrics=report(
            "results/attacks/{model}/metrics.tsv",
            caption="../report/metrics.rst",
            category="Attacks",
            subcategory="{model}",
        ),
        thresholds="results/attacks/{model}/neighborhood_thresholds.tsv",
    wildcard_constraints:
        model="|".join(MODELS) or "no-model-is-audited",
    params:
        metrics=config["attacks"]["metrics"],
        thresholds=config["attacks"]["neighborhood"]["thresholds"],
    log:
        "results/logs/attacks/{model}.metrics.log",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    script:
        "../workflow_scripts/scripts/evaluate_attacks.py"
