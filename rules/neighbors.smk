rule make_neighbors:
    """Neighbor sets: SNP sites take an alternative allele with probability p, plus controls."""
    input:
        fasta="results/windows/windows.fa",
        snps="results/windows/snps.tsv.gz",
    output:
        fasta="results/neighbors/neighbors.fa",
        tsv="results/neighbors/neighbors.tsv",
    log:
        "results/logs/make_neighbors.log",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        neighbors=config["neighbors"],
    script:
        "../workflow_scripts/scripts/make_neighbors.py"
