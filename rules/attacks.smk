rule run_attacks:
    """Membership-inference attack scores, one column per attack variant."""
    input:
        unpack(attack_feature_inputs),
        membership="results/membership.tsv",
    output:
        scores="results/attacks/{model}/scores.tsv",
        skipped="results/attacks/{model}/skipped.tsv",
    log:
        "results/logs/attacks/{model}.log",
    benchmark:
        "results/benchmarks/run_attacks/{model}.tsv"
    wildcard_constraints:
        model="|".join(MODELS) or "no-model-is-audited",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        attacks=config["attacks"],
        scored=SCORED,
        references=REFERENCES,
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
    log:
        "results/logs/attacks/{model}.metrics.log",
    benchmark:
        "results/benchmarks/evaluate_attacks/{model}.tsv"
    wildcard_constraints:
        model="|".join(MODELS) or "no-model-is-audited",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        metrics=config["attacks"]["metrics"],
        thresholds=config["attacks"]["neighborhood"]["thresholds"],
    script:
        "../workflow_scripts/scripts/evaluate_attacks.py"
