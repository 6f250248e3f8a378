rule score_shard:
    """Per-token log-probabilities of one shard of windows and their neighbors (one GPU job)."""
    input:
        model=lambda w: model_folder(w.model),
        windows="results/windows/windows.fa",
        neighbors_fasta="results/neighbors/neighbors.fa",
        neighbors_tsv="results/neighbors/neighbors.tsv",
        snps="results/windows/snps.tsv.gz",
    output:
        "results/scores/{model}/shard-{shard}.parquet",
    log:
        "results/logs/score/{model}/shard-{shard}.log",
    wildcard_constraints:
        model="|".join(SCORED) or "no-model-is-scored",
    conda:
        "../envs/models.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=240,
    params:
        # The folder as Snakemake gives the input: a trained model's is prefixed when used as a module.
        spec=lambda w, input: model_spec(w.model, input.model),
        scoring=config["scoring"],
    script:
        "../workflow_scripts/scripts/score_shard.py"


rule merge_scores:
    """One table per model: the shards in order."""
    input:
        expand("results/scores/{{model}}/shard-{shard}.parquet", shard=SHARDS),
    output:
        "results/scores/{model}.parquet",
    log:
        "results/logs/score/{model}/merge.log",
    wildcard_constraints:
        model="|".join(SCORED) or "no-model-is-scored",
    conda:
        "../envs/models.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../workflow_scripts/scripts/merge_scores.py"
