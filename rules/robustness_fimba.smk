# Robustness II: FIMBA on gene-expression classifiers, its ablations, spectral
# detection and VAE poisoning. Library: workflow_scripts/gfm_audit/robustness/fimba/.


rule fimba_model:
    """Train one classifier, explain it with black-box SHAP, sweep m for FIMBA and its ablations, detect."""
    input:
        fimba_inputs(),
    output:
        curve=report_table("curve", category="Robustness (FIMBA)", subcategory="{fmodel}"),
        detection="results/robustness/fimba/{fmodel}/detection.tsv",
        spectra="results/robustness/fimba/{fmodel}/spectra.npz",
        model="results/robustness/fimba/{fmodel}/model.joblib",
    log:
        "results/logs/robustness/fimba_{fmodel}.log",
    benchmark:
        "results/benchmarks/fimba_model/{fmodel}.tsv"
    conda:
        "../envs/models.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        settings=FIMBA,
    script:
        "../workflow_scripts/scripts/fimba_model.py"


rule fimba_detection:
    """The spectral-detection rows of every model in one table."""
    input:
        expand("results/robustness/fimba/{m}/detection.tsv", m=FIMBA_MODELS),
    output:
        report_table("detection", category="Robustness (FIMBA)"),
    log:
        "results/logs/robustness/fimba_detection.log",
    benchmark:
        "results/benchmarks/fimba_detection.tsv"
    conda:
        "../envs/models.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../workflow_scripts/scripts/fimba_detection.py"


rule fimba_vae:
    """Train a VAE on the training split; poison by latent interpolation; label the results with every model."""
    input:
        data=fimba_inputs(),
        models=expand("results/robustness/fimba/{m}/model.joblib", m=FIMBA_MODELS),
    output:
        report_table("vae", category="Robustness (FIMBA)"),
    log:
        "results/logs/robustness/fimba_vae.log",
    benchmark:
        "results/benchmarks/fimba_vae.tsv"
    conda:
        "../envs/models.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        settings=FIMBA,
        names=FIMBA_MODELS,
    script:
        "../workflow_scripts/scripts/fimba_vae.py"


rule plot_fimba:
    """Accuracy / FP / FN vs m (FIMBA and ablations) and the power spectra of one model."""
    input:
        curve="results/robustness/fimba/{fmodel}/curve.tsv",
        spectra="results/robustness/fimba/{fmodel}/spectra.npz",
    output:
        curve=report_figure("accuracy_vs_m", category="Robustness (FIMBA)", subcategory="{fmodel}"),
        spectra=report_figure("spectra", category="Robustness (FIMBA)", subcategory="{fmodel}"),
    log:
        "results/logs/robustness/fimba_{fmodel}.plots.log",
    benchmark:
        "results/benchmarks/plot_fimba/{fmodel}.tsv"
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    script:
        "../workflow_scripts/scripts/plot_fimba.py"


rule fimba_comparison:
    """FIMBA beside ART's ZOO, HopSkipJump, FGSM and Auto-PGD at FIMBA's L2 budgets, for one classifier."""
    input:
        data=fimba_inputs(),
        model="results/robustness/fimba/{fmodel}/model.joblib",
        curve="results/robustness/fimba/{fmodel}/curve.tsv",
    output:
        "results/robustness/fimba/{fmodel}/comparison.tsv",
    log:
        "results/logs/robustness/fimba_{fmodel}.comparison.log",
    benchmark:
        "results/benchmarks/fimba_comparison/{fmodel}.tsv"
    conda:
        "../envs/models.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        settings=FIMBA,
    script:
        "../workflow_scripts/scripts/fimba_comparison.py"


rule fimba_comparison_table:
    """The comparison rows of every model in one table."""
    input:
        expand("results/robustness/fimba/{m}/comparison.tsv", m=FIMBA_MODELS),
    output:
        report_table("comparison", category="Robustness (FIMBA)"),
    log:
        "results/logs/robustness/fimba_comparison.log",
    benchmark:
        "results/benchmarks/fimba_comparison_table.tsv"
    conda:
        "../envs/models.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../workflow_scripts/scripts/fimba_comparison_table.py"


rule plot_fimba_comparison:
    """Accuracy against the L2 budget, one line per attack, for one classifier."""
    input:
        "results/robustness/fimba/{fmodel}/comparison.tsv",
    output:
        report_figure("fimba_comparison", category="Robustness (FIMBA)", subcategory="{fmodel}"),
    log:
        "results/logs/robustness/fimba_{fmodel}.comparison_plot.log",
    benchmark:
        "results/benchmarks/plot_fimba_comparison/{fmodel}.tsv"
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    script:
        "../workflow_scripts/scripts/plot_fimba_comparison.py"
