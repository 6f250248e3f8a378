# Membership mode individuals: personal genomes from a phased multi-sample VCF (gfm_audit/privacy/haplotypes.py
# and the privacy/individuals package). People, not windows, are members: results/membership_individuals.tsv.


rule individual_haplotypes:
    """Each selected individual's two haplotype sequences per window (SNVs applied to the reference)."""
    input:
        fasta=STAGED.fasta,
        fai=STAGED.fai,
        windows="results/windows/windows.tsv",
        vcf=individuals_vcf(),
    output:
        fasta="results/individuals/haplotypes.fa",
        tsv="results/individuals/haplotypes.tsv",
        alleles="results/individuals/alleles.tsv.gz",
        samples="results/individuals/samples.tsv",
        counts="results/individuals/counts.tsv",
    log:
        "results/logs/individuals/haplotypes.log",
    benchmark:
        "results/benchmarks/individual_haplotypes.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        vcf=INDIVIDUALS["vcf"],
        individuals=INDIVIDUALS,
        max_ref_mismatch_fraction=config["windows"]["max_ref_mismatch_fraction"],
    script:
        "../workflow_scripts/scripts/individual_haplotypes.py"


rule individuals_membership:
    """Seeded member / non-member split of the individuals; each reference model's random half."""
    input:
        samples="results/individuals/samples.tsv",
    output:
        "results/membership_individuals.tsv",
    log:
        "results/logs/individuals/membership.log",
    benchmark:
        "results/benchmarks/individuals_membership.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        membership=MEMBERSHIP,
    script:
        "../workflow_scripts/scripts/individuals_membership.py"


rule train_individual_model:
    """The target on its member individuals' haplotype windows, ref_i on their random halves."""
    input:
        haplotypes="results/individuals/haplotypes.fa",
        index="results/individuals/haplotypes.tsv",
        membership="results/membership_individuals.tsv",
        base=lambda w: MODELS[TARGET]["path"],
    output:
        directory("results/individuals/models/{imodel}"),
    log:
        "results/logs/individuals/train/{imodel}.log",
    benchmark:
        "results/benchmarks/train_individual_model/{imodel}.tsv"
    wildcard_constraints:
        imodel="|".join(IND_MODELS) or "no-individuals-model",
    conda:
        "../envs/models.yaml"
    threads: 1
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=240,
    params:
        spec=lambda w: {**MODELS[TARGET], "name": w.imodel},
        column=lambda w: membership_column(w.imodel),
        training=MEMBERSHIP["training"],
        seed=lambda w: MEMBERSHIP["seed"] + IND_MODELS.index(w.imodel),
    script:
        "../workflow_scripts/scripts/train_individual_model.py"


rule score_individuals:
    """Per-token scores of every haplotype window under one model."""
    input:
        model="results/individuals/models/{imodel}",
        haplotypes="results/individuals/haplotypes.fa",
        alleles="results/individuals/alleles.tsv.gz",
    output:
        "results/individuals/scores/{imodel}.parquet",
    log:
        "results/logs/individuals/score/{imodel}.log",
    benchmark:
        "results/benchmarks/score_individuals/{imodel}.tsv"
    wildcard_constraints:
        imodel="|".join(IND_MODELS) or "no-individuals-model",
    conda:
        "../envs/models.yaml"
    threads: 1
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=240,
    params:
        spec=lambda w, input: individuals_spec(input.model),
        scoring=config["scoring"],
    script:
        "../workflow_scripts/scripts/score_individuals.py"


rule individual_attacks:
    """Person-level attacks: per-person scores, metrics and AUC against windows per person."""
    input:
        unpack(individual_score_inputs),
        index="results/individuals/haplotypes.tsv",
        alleles="results/individuals/alleles.tsv.gz",
        membership="results/membership_individuals.tsv",
    output:
        scores="results/individuals/attacks/{model}/person_scores.tsv",
        metrics=report_table("person_metrics", category="Individuals", subcategory="{model}"),
        curve="results/individuals/attacks/{model}/windows_curve.tsv",
    log:
        "results/logs/individuals/attacks/{model}.log",
    benchmark:
        "results/benchmarks/individual_attacks/{model}.tsv"
    wildcard_constraints:
        model=TARGET or "no-target",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        models=IND_MODELS,
        target=TARGET,
        individuals=individual_attack_params(),
    script:
        "../workflow_scripts/scripts/individual_attacks.py"


rule individuals_dataset_inference:
    """Were the listed individuals trained on (Maini et al.'s test over people), and what share of them (DUCI)."""
    input:
        unpack(individual_score_inputs),
        unpack(dataset_inference_beds),
        index="results/individuals/haplotypes.tsv",
        alleles="results/individuals/alleles.tsv.gz",
        membership="results/membership_individuals.tsv",
        samples="results/individuals/samples.tsv",
    output:
        result=report_table("dataset_inference", category="Dataset inference", subcategory="{model}"),
        curve="results/dataset_inference/{model}/p_curve.tsv",
    log:
        "results/logs/dataset_inference/{model}.log",
    benchmark:
        "results/benchmarks/dataset_inference/{model}.tsv"
    wildcard_constraints:
        model="|".join(IND_DI_MODELS) or "no-individuals-dataset-inference",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        models=IND_MODELS,
        target=TARGET,
        settings=DATASET_INFERENCE,
    script:
        "../workflow_scripts/scripts/individuals_dataset_inference.py"


rule individual_ramia:
    """RaMIA over people's haplotypes: per (person, window) range, labelled by whether the target trained on one
    of its sequences."""
    input:
        scores=lambda w: f"results/individuals/scores/{w.model}.parquet",
        haplotypes="results/individuals/haplotypes.fa",
        index="results/individuals/haplotypes.tsv",
        membership="results/membership_individuals.tsv",
    output:
        ranges="results/individuals/attacks/{model}/ramia_ranges.tsv",
        metrics="results/individuals/attacks/{model}/ramia_metrics.tsv",
    log:
        "results/logs/individuals/ramia/{model}.log",
    benchmark:
        "results/benchmarks/individual_ramia/{model}.tsv"
    wildcard_constraints:
        model="|".join(IND_RAMIA_MODELS) or "no-individuals-ramia",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        trim=config["attacks"]["ramia"]["trim"],
        metrics=config["attacks"]["metrics"],
    script:
        "../workflow_scripts/scripts/individual_ramia.py"


rule genotype_inference:
    """Hide one allele of a person at a time and ask the target which one they carry."""
    input:
        model="results/individuals/models/{model}",
        haplotypes="results/individuals/haplotypes.fa",
        alleles="results/individuals/alleles.tsv.gz",
        membership="results/membership_individuals.tsv",
    output:
        decisions="results/individuals/genotypes/{model}/decisions.tsv",
        summary=report_table("genotype_summary", category="Individuals", subcategory="{model}"),
    log:
        "results/logs/individuals/genotypes/{model}.log",
    benchmark:
        "results/benchmarks/genotype_inference/{model}.tsv"
    wildcard_constraints:
        model=TARGET or "no-target",
    conda:
        "../envs/models.yaml"
    threads: 1
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=120,
    params:
        spec=lambda w, input: individuals_spec(input.model),
        genotypes=INDIVIDUALS["genotypes"],
        batch_size=config["scoring"]["batch_size"],
    script:
        "../workflow_scripts/scripts/genotype_inference.py"


rule plot_individuals:
    """Person-level ROC, AUC against windows per person, genotype-inference accuracy by AF bin."""
    input:
        scores="results/individuals/attacks/{model}/person_scores.tsv",
        curve="results/individuals/attacks/{model}/windows_curve.tsv",
        genotypes="results/individuals/genotypes/{model}/summary.tsv",
    output:
        roc=report_figure("person_roc", category="Individuals", subcategory="{model}"),
        curve=report_figure("windows_per_person", category="Individuals", subcategory="{model}"),
        genotypes=report_figure("genotype_accuracy", category="Individuals", subcategory="{model}"),
    log:
        "results/logs/individuals/plots/{model}.log",
    benchmark:
        "results/benchmarks/plot_individuals/{model}.tsv"
    wildcard_constraints:
        model=TARGET or "no-target",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    script:
        "../workflow_scripts/scripts/plot_individuals.py"
