rule select_windows:
    """SNP-aligned windows: coordinates, sequences and the SNVs inside them."""
    input:
        **staged_reference(),
        bed=windows_bed(),
    output:
        tsv="results/windows/windows.tsv",
        fasta="results/windows/windows.fa",
        snps="results/windows/snps.tsv.gz",
    log:
        "results/logs/select_windows.log",
    benchmark:
        "results/benchmarks/select_windows.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        windows=config["windows"],
        # Messages name the user's files, not the staged links under results/reference.
        fasta_name=config["reference"]["fasta"],
        vcf_name=config["reference"]["vcf"],
    script:
        "../workflow_scripts/scripts/select_windows.py"


rule shard_windows:
    """Windows and their SNVs, one FASTA and one table per shard (shard = CRC-32 of the window id mod shards)."""
    input:
        fasta="results/windows/windows.fa",
        snps="results/windows/snps.tsv.gz",
    output:
        fasta=expand("results/windows/shard-{shard}.fa", shard=SHARDS),
        snps=expand("results/windows/shard-{shard}.snps.tsv.gz", shard=SHARDS),
    log:
        "results/logs/shard_windows.log",
    benchmark:
        "results/benchmarks/shard_windows.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=60,
    params:
        shards=len(SHARDS),
    script:
        "../workflow_scripts/scripts/shard_windows.py"
