rule suspect_windows:
    """The suspect FASTA cut into windows of windows.length, apart from the validation set, as a scoring shard."""
    input:
        unpack(lambda w: {k: v for k, v in dataset_inference_beds(w).items() if k == "validation"}),
        fasta=DATASET_INFERENCE["suspect"] if DI_FASTA else [],
        membership="results/membership.tsv",
        windows_fasta="results/windows/windows.fa",
        windows="results/windows/windows.tsv",
        contigs="results/reference/contigs.tsv",
    output:
        windows_fasta=f"{SUSPECT}/windows.fa",
        neighbors_fasta=f"{SUSPECT}/neighbors.fa",
        neighbors_tsv=f"{SUSPECT}/neighbors.tsv",
        snps=f"{SUSPECT}/snps.tsv.gz",
        counts=f"{SUSPECT}/counts.tsv",
    log:
        "results/logs/dataset_inference/suspect_windows.log",
    benchmark:
        "results/benchmarks/dataset_inference/suspect_windows.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        length=config["windows"]["length"],
        max_n_fraction=config["windows"]["max_n_fraction"],
        max_windows=DATASET_INFERENCE["fasta"]["max_windows"],
        seed=DATASET_INFERENCE["seed"],
        validation=DATASET_INFERENCE["validation"],
    script:
        "../workflow_scripts/scripts/suspect_windows.py"


rule score_suspect:
    """The suspect windows scored by one model as the scoring jobs score a shard, and reduced to windows."""
    input:
        unpack(token_frequency_input),
        unpack(recall_prefix_input),
        model=lambda w: model_folder(w.model),
        windows=f"{SUSPECT}/windows.fa",
        neighbors_fasta=f"{SUSPECT}/neighbors.fa",
        neighbors_tsv=f"{SUSPECT}/neighbors.tsv",
        snps=f"{SUSPECT}/snps.tsv.gz",
    output:
        sequences=f"{SUSPECT}/sequences/{{model}}.parquet",
        features=f"{SUSPECT}/features/{{model}}.parquet",
    log:
        "results/logs/dataset_inference/score_suspect/{model}.log",
    benchmark:
        "results/benchmarks/dataset_inference/score_suspect/{model}.tsv"
    wildcard_constraints:
        model="|".join(SCORED) if DI_FASTA else "no-model-scores-a-suspect-fasta",
    conda:
        "../envs/models.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=240,
    params:
        spec=lambda w, input: model_spec(w.model, input.model),
        features=lambda w: model_features(w.model),
        batch_size=config["scoring"]["batch_size"],
        seed=config["scoring"]["seed"],
        chunk_size=config["scoring"]["chunk_size"],
        max_excluded_share=config["scoring"]["max_excluded_share"],
        ranges=RANGES,
    script:
        "../workflow_scripts/scripts/score_suspect.py"


rule dataset_inference:
    """Was the suspect set trained on (Maini et al.'s test of every attack's scores against a validation set), and
    what share of it (DUCI)."""
    input:
        unpack(dataset_inference_beds),
        unpack(dataset_inference_inputs),
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
        attacks=config["attacks"],
        scored=SCORED,
        references=REFERENCES,
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
    params:
        # What a row of the test is: a person in membership.mode individuals.
        unit="people" if MODE == "individuals" else "windows",
    script:
        "../workflow_scripts/scripts/plot_dataset_inference.py"
