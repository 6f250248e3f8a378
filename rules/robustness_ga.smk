# Robustness I: genetic-algorithm attack with hard biological constraints on DNA
# sequence classifiers, a random baseline, and adversarial training.
# Library: workflow_scripts/gfm_audit/robustness/ga/.


rule train_classifier:
    """Train the CNN, or a GFM's new head with the encoder frozen, on the training split."""
    input:
        train=GA["train"] or [],
        test=GA["test"] or [],
        base=gfm_head_base,
    output:
        directory("results/robustness/classifiers/{classifier}"),
    log:
        "results/logs/robustness/{classifier}.train.log",
    benchmark:
        "results/benchmarks/train_classifier/{classifier}.tsv"
    wildcard_constraints:
        classifier="|".join(GA_TRAINED) or "no-classifier-is-trained",
    conda:
        "../envs/models.yaml"
    threads: 2
    resources:
        gpu=classifier_gpu,
        mem_mb=8000,
        runtime=120,
    params:
        spec=lambda w: GA_CLASSIFIERS[w.classifier],
        non_acgt=GA["non_acgt"],
    script:
        "../workflow_scripts/scripts/train_classifier.py"


rule ga_attack:
    """GA attack and random baseline on a seeded sample of the test split."""
    input:
        classifier=lambda w: classifier_folder(w.classifier),
        test=GA["test"] or [],
    output:
        adversarial="results/robustness/ga/{classifier}/adversarial.tsv",
        summary=report_table("summary", category="Robustness (GA)", subcategory="{classifier}"),
    log:
        "results/logs/robustness/{classifier}.ga_attack.log",
    benchmark:
        "results/benchmarks/ga_attack/{classifier}.tsv"
    wildcard_constraints:
        classifier="|".join(GA_CLASSIFIERS) or "no-classifier",
    conda:
        "../envs/models.yaml"
    threads: 2
    resources:
        gpu=classifier_gpu,
        mem_mb=8000,
        runtime=240,
    params:
        spec=lambda w: GA_CLASSIFIERS[w.classifier],
        non_acgt=GA["non_acgt"],
        attack=ga_block("attack"),
    script:
        "../workflow_scripts/scripts/ga_attack.py"


rule compare_attacks:
    """GA, random, greedy (TextFooler-style), LM-proposal (BERT-Attack-style) and PGD under the same constraints."""
    input:
        classifier=lambda w: classifier_folder(w.classifier),
        test=GA["test"] or [],
        # The GA's and the random baseline's rows, when the comparison's sample is the GA's own.
        summary="results/robustness/ga/{classifier}/summary.tsv",
        proposal=proposal_model_input,
    output:
        comparison=report_table("ga_comparison", category="Robustness (GA)", subcategory="{classifier}"),
    log:
        "results/logs/robustness/{classifier}.compare_attacks.log",
    benchmark:
        "results/benchmarks/compare_attacks/{classifier}.tsv"
    wildcard_constraints:
        classifier="|".join(GA_CLASSIFIERS) or "no-classifier",
    conda:
        "../envs/models.yaml"
    threads: 2
    resources:
        gpu=classifier_gpu,
        mem_mb=8000,
        runtime=240,
    params:
        spec=lambda w: GA_CLASSIFIERS[w.classifier],
        non_acgt=GA["non_acgt"],
        attack=ga_block("attack"),
        comparison=ga_block("comparison"),
        proposal_name=GA["comparison"]["proposal_model"],
        proposal_block=proposal_model_block(),
    script:
        "../workflow_scripts/scripts/compare_attacks.py"


rule adversarial_training:
    """Adversarial training (iterative GA augmentation, or Madry-style on the fly) on the training split; progress
    and robust accuracy with its confidence interval and cost on a held-out test sample."""
    input:
        classifier=lambda w: classifier_folder(w.classifier),
        train=GA["train"] or [],
        test=GA["test"] or [],
    output:
        progress="results/robustness/adv_training/{classifier}/progress.tsv",
        cost="results/robustness/adv_training/{classifier}/cost.tsv",
        model=directory("results/robustness/adv_training/{classifier}/model"),
    log:
        "results/logs/robustness/{classifier}.adversarial_training.log",
    benchmark:
        "results/benchmarks/adversarial_training/{classifier}.tsv"
    wildcard_constraints:
        classifier="|".join(GA_CLASSIFIERS) or "no-classifier",
    conda:
        "../envs/models.yaml"
    threads: 2
    resources:
        gpu=classifier_gpu,
        mem_mb=8000,
        runtime=480,
    params:
        spec=lambda w: GA_CLASSIFIERS[w.classifier],
        non_acgt=GA["non_acgt"],
        attack=ga_block("attack"),
        settings=ga_block("adversarial_training"),
    script:
        "../workflow_scripts/scripts/adversarial_training.py"


rule ga_defence:
    """A further adversarial-training scheme (robustness.ga.adversarial_training.compare, or a classifier's
    adversarial_schemes after the first) on the same classifier and held-out sample as rule adversarial_training,
    with the scheme's own settings (adversarial_training.schemes)."""
    input:
        classifier=lambda w: classifier_folder(w.classifier),
        train=GA["train"] or [],
        test=GA["test"] or [],
    output:
        progress="results/robustness/defences/{classifier}/{scheme}/progress.tsv",
        cost="results/robustness/defences/{classifier}/{scheme}/cost.tsv",
        model=directory("results/robustness/defences/{classifier}/{scheme}/model"),
    log:
        "results/logs/robustness/{classifier}.{scheme}.defence.log",
    benchmark:
        "results/benchmarks/ga_defence/{classifier}.{scheme}.tsv"
    wildcard_constraints:
        classifier="|".join(GA_CLASSIFIERS) or "no-classifier",
        scheme="iterative|madry|freelb|adfar",
    conda:
        "../envs/models.yaml"
    threads: 2
    resources:
        gpu=classifier_gpu,
        mem_mb=8000,
        runtime=480,
    params:
        spec=lambda w: GA_CLASSIFIERS[w.classifier],
        non_acgt=GA["non_acgt"],
        attack=ga_block("attack"),
        settings=lambda w: classifier_blocks(GA, w.classifier, w.scheme)["adversarial_training"],
    script:
        "../workflow_scripts/scripts/ga_defence.py"


rule ga_defence_table:
    """The defence rows: GA success before / after every scheme run on every classifier, Wilson intervals."""
    input:
        progress=[r[1] for r in defence_runs()],
        cost=[r[2] for r in defence_runs()],
    output:
        report_table("defence_table", category="Robustness (GA)"),
    log:
        "results/logs/robustness/defence_table.log",
    benchmark:
        "results/benchmarks/ga_defence_table.tsv"
    conda:
        "../envs/models.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        names=[r[0] for r in defence_runs()],
    script:
        "../workflow_scripts/scripts/ga_defence_table.py"


rule ga_attack_table:
    """The GenoArmory-style table: one row per classifier, one column per attack, ASR at the full budget."""
    input:
        comparisons=expand("results/robustness/ga/{c}/comparison.tsv", c=GA_CLASSIFIERS),
        classifiers=[classifier_folder(c) for c in GA_CLASSIFIERS],
    output:
        report_table("attack_table", category="Robustness (GA)"),
    log:
        "results/logs/robustness/attack_table.log",
    benchmark:
        "results/benchmarks/ga_attack_table.tsv"
    conda:
        "../envs/models.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        names=list(GA_CLASSIFIERS),
        specs=GA_CLASSIFIERS,
    script:
        "../workflow_scripts/scripts/ga_attack_table.py"


rule plot_ga:
    """ASR vs edit budget (GA vs random; every compared attack), the histogram of edits, adversarial-training progress."""
    input:
        adversarial="results/robustness/ga/{classifier}/adversarial.tsv",
        summary="results/robustness/ga/{classifier}/summary.tsv",
        progress="results/robustness/adv_training/{classifier}/progress.tsv",
        cost="results/robustness/adv_training/{classifier}/cost.tsv",
        comparison="results/robustness/ga/{classifier}/comparison.tsv",
    output:
        asr=report_figure("asr_vs_budget", category="Robustness (GA)", subcategory="{classifier}"),
        comparison=report_figure("attack_comparison", category="Robustness (GA)", subcategory="{classifier}"),
        edits=report_figure("edits_histogram", category="Robustness (GA)", subcategory="{classifier}"),
        progress=report_figure("training_progress", category="Robustness (GA)", subcategory="{classifier}"),
    log:
        "results/logs/robustness/{classifier}.plots.log",
    benchmark:
        "results/benchmarks/plot_ga/{classifier}.tsv"
    wildcard_constraints:
        classifier="|".join(GA_CLASSIFIERS) or "no-classifier",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    script:
        "../workflow_scripts/scripts/plot_ga.py"


rule certify_ga:
    """Certified radius of each sequence of the GA's sample under randomised substitution smoothing (tight l0
    certificate), and certified accuracy by radius beside the base classifier's robust accuracy by budget on that
    sample (standard criterion: GA with delta -inf, plus HotFlip on one-hot classifiers)."""
    input:
        classifier=lambda w: classifier_folder(w.classifier),
        test=GA["test"] or [],
    output:
        certified="results/robustness/ga/{classifier}/certified.tsv",
        accuracy="results/robustness/ga/{classifier}/certified_accuracy.tsv",
    log:
        "results/logs/robustness/{classifier}.certify_ga.log",
    benchmark:
        "results/benchmarks/certify_ga/{classifier}.tsv"
    wildcard_constraints:
        classifier="|".join(GA_CLASSIFIERS) or "no-classifier",
    conda:
        "../envs/models.yaml"
    threads: 2
    resources:
        gpu=classifier_gpu,
        mem_mb=8000,
        runtime=240,
    params:
        spec=lambda w: GA_CLASSIFIERS[w.classifier],
        non_acgt=GA["non_acgt"],
        attack=ga_block("attack"),
        # Read when a job is made: the rules are requested (certify_outputs, rules/common.smk) only when enabled.
        certify=lambda w: GA["certify"],
    script:
        "../workflow_scripts/scripts/certify_ga.py"


rule plot_certified:
    """Certified accuracy against radius beside the base classifier's robust accuracy against budget."""
    input:
        accuracy="results/robustness/ga/{classifier}/certified_accuracy.tsv",
    output:
        "results/robustness/ga/{classifier}/certified_accuracy.png",
    log:
        "results/logs/robustness/{classifier}.plot_certified.log",
    benchmark:
        "results/benchmarks/plot_certified/{classifier}.tsv"
    wildcard_constraints:
        classifier="|".join(GA_CLASSIFIERS) or "no-classifier",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    script:
        "../workflow_scripts/scripts/plot_certified.py"
