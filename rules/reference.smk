rule prepare_reference:
    """Stage the FASTA and VCF under results/reference with indexes; map contig names."""
    input:
        fasta=config["reference"]["fasta"],
        vcf=config["reference"]["vcf"],
    output:
        **staged_reference(),
    log:
        "results/logs/prepare_reference.log",
    benchmark:
        "results/benchmarks/prepare_reference.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    script:
        "../workflow_scripts/scripts/prepare_reference.py"
