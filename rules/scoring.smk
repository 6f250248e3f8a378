rule score_shard:
    """Score one shard of windows and their neighbors (one GPU job): per-sequence features, per-token table if kept."""
    input:
        model=lambda w: model_folder(w.model),
        windows="results/windows/shard-{shard}.fa",
        neighbors_fasta="results/neighbors/shard-{shard}.fa",
        neighbors_tsv="results/neighbors/shard-{shard}.tsv",
        snps="results/windows/shard-{shard}.snps.tsv.gz",
    output:
        **score_shard_outputs(),
    log:
        "results/logs/score/{model}/shard-{shard}.log",
    benchmark:
        "results/benchmarks/score_shard/{model}/shard-{shard}.tsv"
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
        # Only what changes the numbers: a new attack parameter re-scores only when it needs a new feature.
        features=FEATURES,
        batch_size=config["scoring"]["batch_size"],
        seed=config["scoring"]["seed"],
        chunk_size=config["scoring"]["chunk_size"],
        max_excluded_share=config["scoring"]["max_excluded_share"],
    script:
        "../workflow_scripts/scripts/score_shard.py"
