rule window_features:
    """Reduce: one row per window with its own features and its neighbors' mean and std per kind and p."""
    input:
        expand("results/features/{{model}}/shard-{shard}.parquet", shard=SHARDS),
    output:
        "results/features/{model}.parquet",
    log:
        "results/logs/window_features/{model}.log",
    benchmark:
        "results/benchmarks/window_features/{model}.tsv"
    wildcard_constraints:
        model="|".join(SCORED) or "no-model-is-scored",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../workflow_scripts/scripts/window_features.py"
