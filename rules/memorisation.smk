# Memorisation beyond membership: planted canaries and their exposure, extraction of training windows.
# Library: workflow_scripts/gfm_audit/privacy/memorisation/.


rule make_canaries:
    """Canaries: n per repeat count for the target's training data, as many never inserted (the reference set)."""
    input:
        **staged_reference(),
        windows="results/windows/windows.tsv",
        membership="results/membership.tsv",
    output:
        CANARY_TABLE,
    log:
        "results/logs/memorisation/make_canaries.log",
    benchmark:
        "results/benchmarks/make_canaries.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        # Only what decides the canaries: an exposure setting must not retrain the target.
        canaries={k: CANARIES[k] for k in ("n", "length", "repeats", "kind", "seed", "inclusion")},
    script:
        "../workflow_scripts/scripts/make_canaries.py"


rule canary_exposure:
    """Exposure of every canary under the target (one GPU job): enumerated or extrapolated rank."""
    input:
        model=lambda w: model_folder(w.model),
        canaries=CANARY_TABLE,
    output:
        report_table("exposure", category="Memorisation", subcategory="{model}"),
    log:
        "results/logs/memorisation/{model}.exposure.log",
    benchmark:
        "results/benchmarks/canary_exposure/{model}.tsv"
    wildcard_constraints:
        model="|".join(EXPOSURE_MODELS) or "no-model-has-canaries",
    conda:
        "../envs/models.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=240,
    params:
        spec=lambda w, input: model_spec(w.model, input.model),
        canaries=CANARIES,
        batch_size=config["scoring"]["batch_size"],
    script:
        "../workflow_scripts/scripts/canary_exposure.py"


rule one_run_audit:
    """The one-run canary bound on the target's epsilon (one GPU job): which of the canaries, each inserted by a
    fair coin, went in, guessed from their loss."""
    input:
        model=lambda w: model_folder(w.model),
        canaries=CANARY_TABLE,
    output:
        report_table("one_run_bound", category="Memorisation", subcategory="{model}"),
    log:
        "results/logs/memorisation/{model}.one_run.log",
    benchmark:
        "results/benchmarks/one_run_audit/{model}.tsv"
    wildcard_constraints:
        model="|".join(ONE_RUN_MODELS) or "no-model-has-one-run-canaries",
    conda:
        "../envs/models.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=60,
    params:
        spec=lambda w, input: model_spec(w.model, input.model),
        batch_size=config["scoring"]["batch_size"],
        delta=one_run_delta(),
        level=config["attacks"]["metrics"]["confidence"],
        guesses=CANARIES["guesses"],
    script:
        "../workflow_scripts/scripts/one_run_audit.py"


rule extraction:
    """Prefix-to-suffix extraction of member and non-member windows (and canaries), with the k-mer baseline."""
    input:
        model=lambda w: model_folder(w.model),
        windows="results/windows/windows.fa",
        membership="results/membership.tsv",
        canaries=lambda w: [CANARY_TABLE] if w.model in EXPOSURE_MODELS else [],
    output:
        report_table("extraction", category="Memorisation", subcategory="{model}"),
    log:
        "results/logs/memorisation/{model}.extraction.log",
    benchmark:
        "results/benchmarks/extraction/{model}.tsv"
    wildcard_constraints:
        model="|".join(EXTRACTION_MODELS) or "no-model-is-extracted",
    conda:
        "../envs/models.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=240,
    params:
        spec=lambda w, input: model_spec(w.model, input.model),
        extraction=EXTRACTION,
        batch_size=config["scoring"]["batch_size"],
    script:
        "../workflow_scripts/scripts/extraction.py"


rule plot_exposure:
    """Exposure against repeats, beside the never-inserted canaries."""
    input:
        "results/memorisation/{model}/exposure.tsv",
    output:
        report_figure("exposure_vs_repeats", category="Memorisation", subcategory="{model}"),
    log:
        "results/logs/memorisation/{model}.plot_exposure.log",
    benchmark:
        "results/benchmarks/plot_exposure/{model}.tsv"
    wildcard_constraints:
        model="|".join(EXPOSURE_MODELS) or "no-model-has-canaries",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    script:
        "../workflow_scripts/scripts/plot_exposure.py"


rule plot_extraction:
    """Extraction rate against prefix length: members, non-members, canaries and the k-mer baseline."""
    input:
        "results/memorisation/{model}/extraction.tsv",
    output:
        report_figure("extraction_vs_prefix", category="Memorisation", subcategory="{model}"),
    log:
        "results/logs/memorisation/{model}.plot_extraction.log",
    benchmark:
        "results/benchmarks/plot_extraction/{model}.tsv"
    wildcard_constraints:
        model="|".join(EXTRACTION_MODELS) or "no-model-is-extracted",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    script:
        "../workflow_scripts/scripts/plot_extraction.py"
