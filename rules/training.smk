rule train_model:
    """Controlled fine-tune: the target on member windows, ref_i on their random halves (mode genome: from scratch
    on the genome outside each model's held-out blocks)."""
    input:
        windows="results/windows/windows.fa",
        membership="results/membership.tsv",
        base=lambda w: MODELS[TARGET]["path"],
        canaries=lambda w: canary_training_input(w.trained),
        # membership.train_on neighbor: the neighbor FASTAs, where the trained_neighbor of each window is read.
        neighbors=(expand("results/neighbors/shard-{shard}.fa", shard=SHARDS) if TRAIN_ON_NEIGHBOR else []),
        # Mode genome: the staged FASTA its chunks are read from, and the held-out blocks they avoid.
        genome=genome_training_inputs(),
    output:
        directory("results/models/{trained}"),
    log:
        "results/logs/train_model/{trained}.log",
    benchmark:
        "results/benchmarks/train_model/{trained}.tsv"
    conda:
        "../envs/models.yaml"
    # One: CPU training runs on one intra-op thread for bit-reproducible sums (determinism.single_cpu_thread),
    # so the target and a reference model train side by side on two cores; a GPU job needs one host thread.
    threads: 1
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=240,
    params:
        spec=lambda w: {**MODELS[TARGET], "name": w.trained},
        column=lambda w: membership_column(w.trained),
        training=MEMBERSHIP["training"],
        seed=lambda w: MEMBERSHIP["seed"] + TRAINED.index(w.trained),
        canary_inclusion_seed=lambda w: canary_inclusion_seed(w.trained),
        mode=MODE,
        genome=MEMBERSHIP["genome"],
    script:
        "../workflow_scripts/scripts/train_model.py"
