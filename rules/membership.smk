# membership.train_on neighbor: every trained model takes a seeded snp neighbor of each member window instead of it.
TRAIN_ON_NEIGHBOR = MODE == "finetune" and MEMBERSHIP["train_on"] == "neighbor"


rule membership_labels:
    """Membership ground truth: seeded member / reference splits, or labels from BED regions."""
    input:
        # The neighbor table, to draw each window's trained neighbor among those that change a base.
        unpack(lambda w: {"neighbors": "results/neighbors/neighbors.tsv"} if TRAIN_ON_NEIGHBOR else {}),
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
