rule plot_attacks:
    """ROC (linear and log-log), score histograms, the pilot's neighbour-loss figure, SNP-site signal."""
    input:
        scores="results/attacks/{model}/scores.tsv",
        target_scores="results/scores/{model}.parquet",
    output:
        roc=report("results/report/{model}/roc.png", category="Figures", subcategory="{model}"),
        histograms=report("results/report/{model}/histograms.png", category="Figures", subcategory="{model}"),
        neighbours=report("results/report/{model}/neighbour_loss.png", category="Figures", subcategory="{model}"),
        snp_sites=report("results/report/{model}/snp_sites.png", category="Figures", subcategory="{model}"),
    wildcard_constraints:
        model="|".join(MODELS) or "no-model-is-audited",
    log:
        "results/logs/report/{model}.plots.log",
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
        windows="results/windows/windows.tsv" if audited_models() else [],
        neighbors="results/neighbors/neighbors.tsv" if audited_models() else [],
        membership="results/membership.tsv" if audited_models() else [],
        metrics=expand("results/attacks/{model}/metrics.tsv", model=audited_models()),
        skipped=expand("results/attacks/{model}/skipped.tsv", model=audited_models()),
        thresholds=expand("results/attacks/{model}/neighborhood_thresholds.tsv", model=audited_models()),
        figures=expand(
            "results/report/{model}/{figure}.png",
            model=audited_models(),
            figure=["roc", "histograms", "neighbour_loss", "snp_sites"],
        ),
        ga_adversarial=ga_outputs()["adversarial"],
        ga_summary=ga_outputs()["summary"],
        ga_progress=ga_outputs()["progress"],
        ga_figures=ga_outputs()["figures"],
        fimba_curves=fimba_outputs()["curves"],
        fimba_detection=fimba_outputs()["detection"],
        fimba_vae=fimba_outputs()["vae"],
        fimba_figures=fimba_outputs()["figures"],
    output:
        report("results/report/report.html", category="Report"),
    params:
        config=config,
        models=audited_models(),
        classifiers=list(GA_CLASSIFIERS),
        fimba_models=FIMBA_MODELS,
    log:
        "results/logs/report/report.log",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    script:
        "../workflow_scripts/scripts/report.py"
