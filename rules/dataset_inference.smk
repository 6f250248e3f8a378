rule dataset_inference:
    """Was the suspect set trained on (Maini et al.'s test of every attack's scores against a validation set), and
    what share of it (DUCI)."""
    input:
        unpack(dataset_inference_beds),
        scores="results/attacks/{model}/scores.tsv",
        windows="results/windows/windows.tsv",
        contigs="results/reference/contigs.tsv",
    output:
        result=report_table("dataset_inference", category="Dataset inference", subcategory="{model}"),
        curve="results/dataset_inference/{model}/p_curve.tsv",
    log:
        "results/logs/dataset_inference/{model}.log",
    benchmark:
        "results/benchmarks/dataset_inference/{model}.tsv"
    wildcard_constraints:
        model="|".join(DI_MODELS) or "no-model-has-dataset-inference",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        settings=DATASET_INFERENCE,
    script:
        "../workflow_scripts/scripts/dataset_inference.py"


rule plot_dataset_inference:
    """The p-value and the power of the dataset inference test against the number of suspect windows."""
    input:
        curve="results/dataset_inference/{model}/p_curve.tsv",
    output:
        report_figure("dataset_inference_curve", category="Dataset inference", subcategory="{model}"),
    log:
        "results/logs/dataset_inference/{model}.plot.log",
    benchmark:
        "results/benchmarks/plot_dataset_inference/{model}.tsv"
    wildcard_constraints:
        model="|".join(DI_MODELS + IND_DI_MODELS) or "no-model-has-dataset-inference",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../workflow_scripts/scripts/plot_dataset_inference.py"
