rule plot_attacks:
    """ROC (linear and log-log), score histograms, the neighbor-loss figure of the original HyenaDNA membership-inference benchmark, SNP-site signal."""
    input:
        scores="results/attacks/{model}/scores.tsv",
        target_scores="results/scores/{model}.parquet",
    output:
        roc=report_figure("roc", category="Figures", subcategory="{model}"),
        histograms=report_figure("histograms", category="Figures", subcategory="{model}"),
        neighbors=report_figure("neighbor_loss", category="Figures", subcategory="{model}"),
        snp_sites=report_figure("snp_sites", category="Figures", subcategory="{model}"),
    log:
        "results/logs/report/{model}.plots.log",
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


rule report:
    """One self-contained HTML page: privacy verdicts, metrics and figures per model; robustness results."""
    input:
        # One key per file and name (gfm_audit/report_layout.py), so the script never looks for a name in a path.
        unpack(report_inputs),
    output:
        report("results/report/report.html", caption="../report/report.rst", category="Report"),
    log:
        "results/logs/report/report.log",
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
