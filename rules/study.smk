# Study mode (config study.grid): one privacy audit per grid point under results/study/<point>/, sharing the
# windows and neighbors (and the staged reference), and one table and figures over all points (study_summary).
# The audits run the privacy stages' own scripts with each point's config (gfm_audit/privacy/study/grid.py).


include: "study_common.smk"


wildcard_constraints:
    point="|".join(re.escape(p) for p in STUDY) or "no-study-point",


rule study_genome_split:
    """Mode genome: a point's seeded held-out blocks of its target and reference models (its seed, its share)."""
    input:
        contigs="results/reference/contigs.tsv",
    output:
        "results/study/{point}/genome/heldout.tsv",
    log:
        "results/logs/study/{point}/genome_split.log",
    benchmark:
        "results/benchmarks/study/{point}/genome_split.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        genome=lambda w: STUDY_CONFIG[w.point]["membership"]["genome"],
        seed=lambda w: STUDY[w.point].seed,
        models=lambda w: study_trained(w.point),
    script:
        "../workflow_scripts/scripts/study_genome_split.py"


rule study_membership:
    """A grid point's membership: the seeded member / reference split with the point's member_fraction and seed."""
    input:
        unpack(lambda w: {"neighbors": "results/neighbors/neighbors.tsv"} if TRAIN_ON_NEIGHBOR else {}),
        windows="results/windows/windows.tsv",
        contigs="results/reference/contigs.tsv",
        heldout=study_heldout,
    output:
        "results/study/{point}/membership.tsv",
    log:
        "results/logs/study/{point}/membership_labels.log",
    benchmark:
        "results/benchmarks/study/{point}/membership_labels.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        membership=lambda w: STUDY_CONFIG[w.point]["membership"],
        mode=MODE,
        needed=genome_windows_needed(),
    script:
        "../workflow_scripts/scripts/study_membership.py"


rule study_base_model:
    """A point's target folder with its config.json size keys (study.grid model_config.<key>; init scratch)."""
    input:
        base=lambda w: MODELS[STUDY[w.point].target]["path"],
    output:
        directory("results/study/{point}/base/{model}"),
    log:
        "results/logs/study/{point}/base_model/{model}.log",
    benchmark:
        "results/benchmarks/study/{point}/base_model/{model}.tsv"
    conda:
        "../envs/models.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        overrides=lambda w: model_config_overrides(STUDY[w.point]),
    script:
        "../workflow_scripts/scripts/study_base_model.py"


rule study_train_model:
    """A point's target on its member windows (each duplication times an epoch), ref_i on their random halves; mode
    genome: from scratch on the genome outside the model's held-out blocks of the point."""
    input:
        windows="results/windows/windows.fa",
        membership="results/study/{point}/membership.tsv",
        base=study_base,
        canaries=[],
        neighbors=(expand("results/neighbors/shard-{shard}.fa", shard=SHARDS) if TRAIN_ON_NEIGHBOR else []),
        genome=study_genome_inputs,
    output:
        directory("results/study/{point}/models/{model}"),
    log:
        "results/logs/study/{point}/train_model/{model}.log",
    benchmark:
        "results/benchmarks/study/{point}/train_model/{model}.tsv"
    wildcard_constraints:
        model=r"[^/]+",
    conda:
        "../envs/models.yaml"
    # As train_model: one thread for bit-reproducible CPU sums; one GPU job per training on a cluster.
    threads: 1
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=240,
    params:
        spec=lambda w, input: {**MODELS[STUDY[w.point].target], "path": input.base, "name": w.model},
        column=lambda w: "target_member" if w.model == STUDY[w.point].target else f"{w.model}_member",
        training=lambda w: STUDY_CONFIG[w.point]["membership"]["training"],
        seed=lambda w: STUDY[w.point].seed + study_trained(w.point).index(w.model),
        canary_inclusion_seed=None,
        mode=MODE,
        genome=lambda w: STUDY_CONFIG[w.point]["membership"]["genome"],
    script:
        "../workflow_scripts/scripts/study_train_model.py"


rule study_score_shard:
    """Score one shard with one of a point's models (one GPU job): its per-sequence features."""
    input:
        unpack(study_token_frequencies),
        unpack(lambda w: {f"reference_{k}": v for k, v in staged_fasta(w).items()} if SCORING["context"] else {}),
        model="results/study/{point}/models/{model}",
        windows="results/windows/shard-{shard}.fa",
        neighbors_fasta="results/neighbors/shard-{shard}.fa",
        neighbors_tsv="results/neighbors/shard-{shard}.tsv",
        snps="results/windows/shard-{shard}.snps.tsv.gz",
    output:
        features="results/study/{point}/features/{model}/shard-{shard}.parquet",
    log:
        "results/logs/study/{point}/score/{model}/shard-{shard}.log",
    benchmark:
        "results/benchmarks/study/{point}/score_shard/{model}/shard-{shard}.tsv"
    conda:
        "../envs/models.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=240,
    params:
        spec=lambda w, input: {**MODELS[STUDY[w.point].target], "path": input.model, "init": "pretrained"},
        features=lambda w: model_features(w.model),
        batch_size=SCORING["batch_size"],
        seed=SCORING["seed"],
        chunk_size=SCORING["chunk_size"],
        max_excluded_share=SCORING["max_excluded_share"],
        context=SCORING["context"],
    script:
        "../workflow_scripts/scripts/study_score_shard.py"


rule study_window_features:
    """Reduce a point's model's shards: one row per window with its neighbors' statistics."""
    input:
        expand("results/study/{{point}}/features/{{model}}/shard-{shard}.parquet", shard=SHARDS),
    output:
        "results/study/{point}/features/{model}.parquet",
    log:
        "results/logs/study/{point}/window_features/{model}.log",
    benchmark:
        "results/benchmarks/study/{point}/window_features/{model}.tsv"
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        ranges=RANGES,
    script:
        "../workflow_scripts/scripts/study_window_features.py"


rule study_run_attacks:
    """A point's membership-inference attack scores on its target, its reference models as the attacks' own."""
    input:
        unpack(lambda w: {m: f"results/study/{w.point}/features/{m}.parquet" for m in study_trained(w.point)}),
        membership="results/study/{point}/membership.tsv",
    output:
        scores="results/study/{point}/attacks/{model}/scores.tsv",
        skipped="results/study/{point}/attacks/{model}/skipped.tsv",
    log:
        "results/logs/study/{point}/attacks/{model}.log",
    benchmark:
        "results/benchmarks/study/{point}/run_attacks/{model}.tsv"
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        attacks=config["attacks"],
        scored=lambda w: study_trained(w.point),
        references=lambda w: STUDY_REFERENCES[w.point],
    script:
        "../workflow_scripts/scripts/study_run_attacks.py"


rule study_evaluate_attacks:
    """A point's attack metrics: AUC with CI, TPR at low FPR, balanced accuracy, epsilon lower bound."""
    input:
        "results/study/{point}/attacks/{model}/scores.tsv",
    output:
        metrics="results/study/{point}/attacks/{model}/metrics.tsv",
        thresholds="results/study/{point}/attacks/{model}/neighborhood_thresholds.tsv",
    log:
        "results/logs/study/{point}/attacks/{model}.metrics.log",
    benchmark:
        "results/benchmarks/study/{point}/evaluate_attacks/{model}.tsv"
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
        "../workflow_scripts/scripts/study_evaluate_attacks.py"


rule study_summary:
    """One table over the grid (point x attack: AUC with CI, TPR at low FPR, epsilon) and AUC figures."""
    input:
        metrics=[f"results/study/{p.name}/attacks/{p.target}/metrics.tsv" for p in STUDY_POINTS],
    output:
        table=report("results/study/summary.tsv", caption="../report/study_summary.rst", category="Study"),
        epochs=report("results/study/auc_vs_epochs.png", caption="../report/study_auc.rst", category="Study"),
        duplication=report("results/study/auc_vs_duplication.png", caption="../report/study_auc.rst", category="Study"),
    log:
        "results/logs/study/summary.log",
    benchmark:
        "results/benchmarks/study/summary.tsv"
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        points=[{"name": p.name, "values": p.values} for p in STUDY_POINTS],
    script:
        "../workflow_scripts/scripts/study_summary.py"


rule study_report:
    """The study's HTML page: the grid, the summary table, the AUC figures and one sentence reading the curve."""
    input:
        table="results/study/summary.tsv",
        epochs="results/study/auc_vs_epochs.png",
        duplication="results/study/auc_vs_duplication.png",
    output:
        report("results/study/report.html", caption="../report/study_report.rst", category="Study"),
    log:
        "results/logs/study/report.log",
    benchmark:
        "results/benchmarks/study/report.tsv"
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        config=config,
        points=study_report_points(),
    script:
        "../workflow_scripts/scripts/study_report.py"
