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


rule token_frequencies:
    """How often each token of a model's tokenizer occurs in the reference FASTA: dc_pdd's reference corpus."""
    input:
        unpack(staged_fasta),
        # The user's folder, not a model trained here: the tokenizer is the same, and counting need not wait.
        model=lambda w: MODELS[w.model]["path"],
    output:
        "results/reference/token_frequencies/{model}.tsv",
    log:
        "results/logs/token_frequencies/{model}.log",
    benchmark:
        "results/benchmarks/token_frequencies/{model}.tsv"
    wildcard_constraints:
        model="|".join(FREQUENCY_MODELS) or "no-model-needs-token-frequencies",
    conda:
        "../envs/models.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        # One pass over the genome; a BPE tokenizer tokenizes it all (see gfm_audit/privacy/token_frequencies).
        runtime=240,
    params:
        spec=lambda w: dict(MODELS[w.model]),
        # The pieces a BPE tokenizer's reference is cut into: the windows' length (unused for k-mer tokenizers).
        piece_length=config["windows"]["length"],
    script:
        "../workflow_scripts/scripts/token_frequencies.py"
