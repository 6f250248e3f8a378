rule make_neighbors:
    """Neighbor sets of one shard's windows: SNP sites take an alternative allele with probability p, plus controls."""
    input:
        fasta="results/windows/shard-{shard}.fa",
        snps="results/windows/shard-{shard}.snps.tsv.gz",
    output:
        fasta="results/neighbors/shard-{shard}.fa",
        tsv="results/neighbors/shard-{shard}.tsv",
    log:
        "results/logs/make_neighbors/shard-{shard}.log",
    benchmark:
        "results/benchmarks/make_neighbors/shard-{shard}.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        neighbors=config["neighbors"],
    script:
        "../workflow_scripts/scripts/make_neighbors.py"


rule merge_neighbors:
    """One table of every neighbor (streamed, shard after shard): what the report summarises."""
    input:
        expand("results/neighbors/shard-{shard}.tsv", shard=SHARDS),
    output:
        "results/neighbors/neighbors.tsv",
    log:
        "results/logs/merge_neighbors.log",
    benchmark:
        "results/benchmarks/merge_neighbors.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    script:
        "../workflow_scripts/scripts/merge_neighbors.py"
