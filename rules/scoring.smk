rule score_shard:
    """Score one shard of windows and their neighbors (one GPU job): per-sequence features, per-token table if kept."""
    input:
        unpack(token_frequency_input),
        unpack(recall_prefix_input),
        # The staged FASTA, whose flanks the job reads, only with scoring.context > 0.
        unpack(lambda w: {f"reference_{k}": v for k, v in staged_fasta(w).items()} if SCORING["context"] else {}),
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
        # The features of ReCaLL and gradnorm only on the audited models: no attack reads a reference model's.
        features=lambda w: model_features(w.model),
        batch_size=config["scoring"]["batch_size"],
        seed=config["scoring"]["seed"],
        chunk_size=config["scoring"]["chunk_size"],
        max_excluded_share=config["scoring"]["max_excluded_share"],
        context=config["scoring"]["context"],
    script:
        "../workflow_scripts/scripts/score_shard.py"


rule recall_prefix:
    """ReCaLL's prefix: a seeded draw of non-member windows of the target's membership, their sequences in order."""
    input:
        windows="results/windows/windows.fa",
        membership="results/membership.tsv",
    output:
        "results/attacks/recall_prefix.fa",
    log:
        "results/logs/recall_prefix.log",
    benchmark:
        "results/benchmarks/recall_prefix.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        prefix_windows=RECALL[0] if RECALL else 0,
        seed=RECALL[1] if RECALL else 0,
    script:
        "../workflow_scripts/scripts/recall_prefix.py"
