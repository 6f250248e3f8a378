rule membership_labels:
    """Membership ground truth: seeded member / reference splits, or labels from BED regions."""
    input:
        windows="results/windows/windows.tsv",
        contigs="results/reference/contigs.tsv",
        beds=membership_beds(),
    output:
        "results/membership.tsv",
    log:
        "results/logs/membership_labels.log",
    benchmark:
        "results/benchmarks/membership_labels.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        membership=MEMBERSHIP,
        mode=MODE,
    script:
        "../workflow_scripts/scripts/membership_labels.py"
