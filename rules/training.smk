rule train_model:
    """Controlled fine-tune: the target on member windows, ref_i on their random halves."""
    input:
        windows="results/windows/windows.fa",
        membership="results/membership.tsv",
        base=lambda w: MODELS[TARGET]["path"],
        canaries=lambda w: canary_training_input(w.trained),
    output:
        directory("results/models/{trained}"),
    log:
        "results/logs/train_model/{trained}.log",
    benchmark:
        "results/benchmarks/train_model/{trained}.tsv"
    conda:
        "../envs/models.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=240,
    params:
        spec=lambda w: {**MODELS[TARGET], "name": w.trained},
        column=lambda w: membership_column(w.trained),
        training=MEMBERSHIP["training"],
        seed=lambda w: MEMBERSHIP["seed"] + TRAINED.index(w.trained),
    script:
        "../workflow_scripts/scripts/train_model.py"
