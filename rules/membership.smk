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
        # Mode genome: every model's held-out blocks, which decide the windows' labels.
        heldout=genome_heldout(),
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
        # Mode genome refuses a split that leaves fewer matched windows of a class than the attacks need; a number,
        # not the attacks block, so that changing the attacks does not relabel (and retrain) anything.
        needed=genome_windows_needed(),
    script:
        "../workflow_scripts/scripts/membership_labels.py"


rule genome_split:
    """Mode genome: the seeded held-out blocks of the target and of each reference model."""
    input:
        contigs="results/reference/contigs.tsv",
    output:
        "results/genome/heldout.tsv",
    log:
        "results/logs/genome_split.log",
    benchmark:
        "results/benchmarks/genome_split.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        genome=MEMBERSHIP["genome"],
        seed=MEMBERSHIP["seed"],
        models=TRAINED,
    script:
        "../workflow_scripts/scripts/genome_split.py"
