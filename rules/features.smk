from gfm_audit.privacy.attacks import required_reductions

# Per-window statistics beyond the neighbor means that the configured attacks read (ramia's trimmed means over
# each window's range); none unless such an attack is configured.
RANGES = (
    required_reductions(config["attacks"]["names"], config["attacks"])
    if MODE in ("finetune", "regions", "genome")
    else []
)


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
    params:
        ranges=RANGES,
    script:
        "../workflow_scripts/scripts/window_features.py"
