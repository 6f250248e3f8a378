# The privacy figures and the HTML report. Library: workflow_scripts/gfm_audit/privacy/plots.py (figures),
# workflow_scripts/gfm_audit/report/ (the page).


rule plot_attacks:
    """ROC (linear and log-log), score histograms, the neighbor-loss figure of the original HyenaDNA membership-inference benchmark, SNP-site signal."""
    input:
        scores="results/attacks/{model}/scores.tsv",
        # Per-sequence features (the neighbor-loss figure draws each neighbor), never per-token data.
        sequences=expand("results/features/{{model}}/shard-{shard}.parquet", shard=SHARDS),
    output:
        roc=report_figure("roc", category="Figures", subcategory="{model}"),
        histograms=report_figure("histograms", category="Figures", subcategory="{model}"),
        neighbors=report_figure("neighbor_loss", category="Figures", subcategory="{model}"),
        snp_sites=report_figure("snp_sites", category="Figures", subcategory="{model}"),
    log:
        "results/logs/report/{model}.plots.log",
    benchmark:
        "results/benchmarks/plot_attacks/{model}.tsv"
    wildcard_constraints:
        model="|".join(MODELS) or "no-model-is-audited",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    script:
        "../workflow_scripts/scripts/plot_attacks.py"


rule plot_token_profile:
    """Per-token figure (report.token_figures): mean log p by position, members vs non-members (needs keep_tokens)."""
    input:
        tokens=expand("results/scores/{{model}}/shard-{shard}.parquet", shard=SHARDS),
        membership="results/membership.tsv",
    output:
        report(
            "results/report/{model}/token_profile.png",
            caption="../report/token_profile.rst",
            category="Figures",
            subcategory="{model}",
        ),
    log:
        "results/logs/report/{model}.token_profile.log",
    benchmark:
        "results/benchmarks/plot_token_profile/{model}.tsv"
    wildcard_constraints:
        model="|".join(MODELS) or "no-model-is-audited",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    script:
        "../workflow_scripts/scripts/plot_token_profile.py"


rule report:
    """One self-contained HTML page: privacy verdicts, metrics and figures per model; robustness results."""
    input:
        # One key per file and name (gfm_audit/report/layout.py), so the script never looks for a name in a path.
        unpack(report_inputs),
    output:
        report("results/report/report.html", caption="../report/report.rst", category="Report"),
    log:
        "results/logs/report/report.log",
    benchmark:
        "results/benchmarks/report.tsv"
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        config=config,
        models=audited_models(),
        classifiers=list(GA_CLASSIFIERS),
        fimba_models=FIMBA_MODELS,
        individuals=individuals_names(),
    script:
        "../workflow_scripts/scripts/report.py"
