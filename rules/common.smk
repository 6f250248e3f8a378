# Helpers shared by every stage: config validation and staged-file names.
import sys

sys.path.insert(0, str(WORKFLOW_ROOT / "workflow_scripts"))  # set in configfile.smk

from gfm_audit.config import absolute_input_paths, check_input_paths, validate_config  # noqa: E402
from gfm_audit.errors import InputError  # noqa: E402
from gfm_audit.privacy.reference import staged_layout  # noqa: E402


def paths_get_a_prefix():
    """Whether Snakemake puts a prefix before relative paths: used as a module with `prefix:` (nested too)."""
    # Snakemake has no public call for this: its path modifier holds our module's prefix, then the outer ones.
    modifier = getattr(workflow.modifier, "path_modifier", None)
    while modifier is not None:
        if getattr(modifier, "prefix", None):
            return True
        modifier = getattr(modifier, "inner_modifier", None)
    return False


CONFIG_SOURCE = f"the workflow config ({DEFAULT_CONFIGFILE} and --config/--configfile)"
try:
    validate_config(config, source="the config given to the module" if AS_MODULE else CONFIG_SOURCE)
    # Before Snakemake's own check of missing inputs, which names the file but not the config key.
    check_input_paths(config)
except InputError as exc:
    # A one-line message, not a WorkflowError with Snakemake's traceback lines.
    sys.exit(f"gfm-audit: {exc}")
# Under a module's prefix, the user's files stay where the config says (relative to the working directory):
# absolute, they are not prefixed, and rules that pass them as params name the same files as their inputs.
if paths_get_a_prefix():
    absolute_input_paths(config)

STAGED = staged_layout(config["reference"]["fasta"], config["reference"]["vcf"], "results/reference")


def staged_reference():
    """Outputs of prepare_reference: the staged FASTA, VCF, their indexes and contigs.tsv."""
    return STAGED.outputs()


def windows_bed():
    """The BED file, as an input, only when windows come from one."""
    windows = config["windows"]
    return [windows["bed"]] if windows["placement"] == "bed" else []


# --- models, membership and scoring ---------------------------------------------
from gfm_audit.privacy.membership import reference_names  # noqa: E402

MODELS = config["models"]
TARGET = config["target"]
MEMBERSHIP = config["membership"]
MODE = MEMBERSHIP["mode"] if MODELS else "none"
# Mode genome trains its reference models too, each on a split of the genome of its own (rules/membership.smk).
REFERENCES = reference_names(MEMBERSHIP["reference_models"]) if MODE in ("finetune", "genome") else []
TRAINED = [TARGET, *REFERENCES] if MODE in ("finetune", "genome") else []
# Mode individuals trains and scores on people's haplotypes (rules/individuals.smk), not on the windows.
SCORED = [*MODELS, *REFERENCES] if MODE != "individuals" else []
SCORING = config["scoring"]
SHARDS = list(range(SCORING["shards"]))

from gfm_audit.privacy.attacks import required_features  # noqa: E402

# The per-sequence features the configured attacks read: what every scoring job computes (a parameter of an
# attack that is not run asks for none).
FEATURES = (
    required_features(config["attacks"]["names"], config["attacks"])
    if MODE in ("finetune", "regions", "genome")
    else []
)

from gfm_audit.privacy.features import needs_token_frequencies  # noqa: E402

# dc_pdd's reference corpus: the token frequencies of each audited model's tokenizer in the reference FASTA
# (rule token_frequencies), counted only when the attack is configured; a reference model shares the target's.
FREQUENCY_MODELS = list(MODELS) if needs_token_frequencies(FEATURES) else []


def token_frequency_input(wildcards):
    """The scoring job's token frequency table, as an input, only when dc_pdd is configured."""
    if not FREQUENCY_MODELS:
        return {}
    name = TARGET if wildcards.model in REFERENCES else wildcards.model
    return {"token_frequencies": f"results/reference/token_frequencies/{name}.tsv"}


def staged_fasta(wildcards):
    """The staged reference FASTA and its indexes (no VCF): what a pass over the genome reads."""
    return {k: v for k, v in staged_reference().items() if k in ("fasta", "fai", "gzi")}


from gfm_audit.privacy.features import parse_recall_feature, reference_features  # noqa: E402

# ReCaLL's prefix as (windows, seed), when recall is configured: non-member windows drawn from the membership
# (written by the recall_prefix rule), read by the audited models' scoring jobs.
RECALL = next((parse_recall_feature(f) for f in FEATURES if parse_recall_feature(f)), None)


def model_features(name):
    """The features of a model's scoring jobs: the own-pass ones (recall, gradnorm) for audited models only."""
    return FEATURES if name in MODELS else reference_features(FEATURES)


def recall_prefix_input(wildcards):
    """The prefix FASTA, as an input of an audited model's scoring jobs, only when recall is configured."""
    return {"recall_prefix": "results/attacks/recall_prefix.fa"} if RECALL and wildcards.model in MODELS else {}


# Figures drawn from per-token scores: they need scoring.keep_tokens.
TOKEN_FIGURES = config["report"]["token_figures"] if MODE in ("finetune", "regions", "genome") else []
if TOKEN_FIGURES and not SCORING["keep_tokens"]:
    sys.exit(
        f"gfm-audit: figure {TOKEN_FIGURES[0]} (report.token_figures) needs per-token scores, which "
        "scoring.keep_tokens: false does not keep; set scoring.keep_tokens: true or remove the figure"
    )


def score_shard_outputs():
    """The per-sequence features of a shard, and its per-token table when scoring.keep_tokens is on."""
    outputs = {"features": "results/features/{model}/shard-{shard}.parquet"}
    if SCORING["keep_tokens"]:
        outputs["tokens"] = "results/scores/{model}/shard-{shard}.parquet"
    return outputs


def model_folder(name):
    """Where a scored model's checkpoint lives: trained here, or the user's folder."""
    return f"results/models/{name}" if name in TRAINED else MODELS[name]["path"]


def model_spec(name, folder):
    """The config block of a scored model, read from ``folder``; reference models share the target's.

    ``folder`` is the scoring rule's input (model_folder), as Snakemake gives it: under a module's prefix.
    """
    block = dict(MODELS[TARGET] if name in REFERENCES else MODELS[name])
    block["path"] = folder
    if name in TRAINED:
        block["init"] = "pretrained"
    return block


def membership_column(name):
    return "target_member" if name == TARGET else f"{name}_member"


# --- membership mode individuals (rules/individuals.smk) ---------------------------
INDIVIDUALS = config["individuals"]
IND_MODELS = [TARGET, *reference_names(MEMBERSHIP["reference_models"])] if MODE == "individuals" else []
# RaMIA over people's haplotypes (rule individual_ramia), when ramia is among attacks.names.
IND_RAMIA_MODELS = [TARGET] if MODE == "individuals" and "ramia" in config["attacks"]["names"] else []


def individuals_vcf():
    """The phased VCF and its index, as inputs."""
    vcf = INDIVIDUALS["vcf"]
    if not vcf:
        return []
    # A missing index is the stage's one-line error, not Snakemake's missing-input message.
    return [vcf, *[i for i in (f"{vcf}.tbi", f"{vcf}.csi") if os.path.exists(i)][:1]]


def individuals_spec(folder):
    """The target's config block for a model trained here in mode individuals."""
    return {**MODELS[TARGET], "path": folder, "init": "pretrained"}


def individual_score_inputs(wildcards):
    return {m: f"results/individuals/scores/{m}.parquet" for m in IND_MODELS}


def individual_attack_params():
    return {
        "metrics": config["attacks"]["metrics"],
        "curve_repeats": INDIVIDUALS["curve_repeats"],
        "seed": INDIVIDUALS["seed"],
    }


def individuals_names():
    return [TARGET] if MODE == "individuals" else []


def membership_beds():
    return [MEMBERSHIP["member_bed"], MEMBERSHIP["nonmember_bed"]] if MODE == "regions" else []


def genome_heldout():
    """Mode genome: the held-out blocks of every trained model (rule genome_split), as an input."""
    return ["results/genome/heldout.tsv"] if MODE == "genome" else []


def genome_training_inputs():
    """Mode genome: the staged FASTA with its indexes, the contig table and the held-out blocks."""
    if MODE != "genome":
        return []
    staged = staged_reference()
    return [staged[k] for k in ("fasta", "fai", "gzi", "contigs") if k in staged] + genome_heldout()


def genome_windows_needed():
    """Mode genome: the matched windows of each class the configured attacks need (0 in the other modes)."""
    from gfm_audit.privacy.genome_split import minimum_per_class

    return minimum_per_class(config["attacks"]) if MODE == "genome" else 0


# --- robustness: GA attack on sequence classifiers ------------------------------
GA = config["robustness"]["ga"]
GA_CLASSIFIERS = GA["classifiers"]
GA_TRAINED = [n for n, s in GA_CLASSIFIERS.items() if s["kind"] != "huggingface"]


def classifier_folder(name):
    """A user's Hugging Face classifier is used in place; the others are trained under results/."""
    spec = GA_CLASSIFIERS[name]
    return spec["path"] if spec["kind"] == "huggingface" else f"results/robustness/classifiers/{name}"


def gfm_head_base(wildcards):
    """The GFM folder a gfm_head classifier starts from: its path, or its models-block model (none for other kinds)."""
    spec = GA_CLASSIFIERS[wildcards.classifier]
    if spec["kind"] != "gfm_head":
        return []
    return [spec["path"] if "path" in spec else model_folder(spec["model"])]


from gfm_audit.config import classifier_blocks, classifier_schemes  # noqa: E402


def ga_block(block):
    """A params function: the GA block ``block`` as the job's classifier runs it (its own sample size...)."""
    return lambda wildcards: classifier_blocks(GA, wildcards.classifier)[block]


def classifier_gpu(wildcards):
    """The CNN runs on CPUs; Hugging Face and GFM-head classifiers ask for a GPU."""
    return 0 if GA_CLASSIFIERS[wildcards.classifier]["kind"] == "cnn" else 1


def proposal_model_input(wildcards):
    """The language model the lm_proposal attack reads, when one is configured and the attack is wanted."""
    name = GA["comparison"]["proposal_model"]
    return [model_folder(name)] if name and "lm_proposal" in GA["comparison"]["attacks"] else []


def proposal_model_block():
    """That model's block of the models block (its kind, dtype...), or None."""
    name = GA["comparison"]["proposal_model"]
    return dict(MODELS[name]) if name else None


def ga_outputs():
    """Tables and figures of every GA classifier, {kind: one path per classifier} (what the report shows)."""
    return report_layout.section_outputs("ga", list(GA_CLASSIFIERS))


def defence_runs():
    """(classifier, progress.tsv, cost.tsv) of every scheme run on every GA classifier: the rows of the defence
    table, each classifier's first scheme (rule adversarial_training's) first."""
    runs = []
    for c in GA_CLASSIFIERS:
        first, *others = classifier_schemes(GA, c)
        folder = f"results/robustness/adv_training/{c}"
        runs.append((c, f"{folder}/progress.tsv", f"{folder}/cost.tsv"))
        for s in others:
            folder = f"results/robustness/defences/{c}/{s}"
            runs.append((c, f"{folder}/progress.tsv", f"{folder}/cost.tsv"))
    return runs


def certify_outputs():
    """The certified tables and figure of every GA classifier, when robustness.ga.certify.enabled."""
    if not GA["certify"]["enabled"]:
        return []
    files = ("certified.tsv", "certified_accuracy.tsv", "certified_accuracy.png")
    return [f"results/robustness/ga/{c}/{f}" for c in GA_CLASSIFIERS for f in files]


# --- robustness: FIMBA on gene-expression classifiers -----------------------------
FIMBA = config["robustness"]["fimba"]
FIMBA_MODELS = FIMBA["models"] if FIMBA["data"] else []


def fimba_inputs():
    """The expression file(s) FIMBA reads."""
    return [f for f in (FIMBA["data"], FIMBA["test_data"]) if f]


def fimba_outputs():
    """Tables and figures of FIMBA, per model plus the detection and VAE tables (what the report shows)."""
    return report_layout.section_outputs("fimba", FIMBA_MODELS)


# --- memorisation: canaries and extraction ----------------------------------------
MEMORISATION = config["memorisation"]
CANARIES = MEMORISATION["canaries"]
EXTRACTION = MEMORISATION["extraction"]
CANARIES_ON = MODE == "finetune" and CANARIES["n"] > 0
CANARY_TABLE = "results/memorisation/canaries.tsv"
# Canaries go into the target's training data only: exposure is measured on the target. With inclusion bernoulli
# the canaries are the one-run audit's (many, each in by a fair coin): their bound replaces exposure, whose
# candidate sets would cost m times as many forwards.
BERNOULLI = CANARIES["inclusion"] == "bernoulli"
EXPOSURE_MODELS = [TARGET] if CANARIES_ON and not BERNOULLI else []
ONE_RUN_MODELS = [TARGET] if CANARIES_ON and BERNOULLI else []
EXTRACTION_MODELS = list(MODELS) if EXTRACTION["enabled"] and MODE in ("finetune", "regions", "genome") else []


def canary_training_input(trained):
    """The canary table, as an input of every model's training: the target takes every inserted canary, a
    reference model each with probability 1/2 (canary_inclusion_seed), so that all are trained alike."""
    return [CANARY_TABLE] if CANARIES_ON else []


def canary_inclusion_seed(trained):
    """None for the target (every inserted canary); a seed of its own for each reference model."""
    return None if trained == TARGET else CANARIES["seed"] + 7919 * (1 + TRAINED.index(trained))


def memorisation_outputs():
    """Tables and figures of the memorisation stage, {kind: one path per model}."""
    return {
        **report_layout.section_outputs("exposure", EXPOSURE_MODELS),
        **report_layout.section_outputs("extraction", EXTRACTION_MODELS),
        **report_layout.section_outputs("one_run", ONE_RUN_MODELS),
    }


def one_run_delta():
    """The one-run bound's delta: the DP training's, where the target is trained with DP (the claim it is held
    against), else the membership attacks' (attacks.metrics.delta)."""
    dp = MEMBERSHIP["training"].get("dp")
    return dp["delta"] if dp else config["attacks"]["metrics"]["delta"]


# --- dataset inference (rules/dataset_inference.smk) --------------------------------
DATASET_INFERENCE = config["dataset_inference"]
DI_MODELS = list(MODELS) if DATASET_INFERENCE["enabled"] and MODE in ("finetune", "regions", "genome") else []
DI_SETS = ("members", "non_members")
# Mode individuals: the target's dataset inference over people (rules/individuals.smk); a set file is then a list
# of individuals, an input as a BED is (dataset_inference_beds).
IND_DI_MODELS = [TARGET] if DATASET_INFERENCE["enabled"] and MODE == "individuals" else []


def dataset_inference_beds(wildcards):
    """The suspect and validation BED files, as inputs: the sets not named by a membership keyword."""
    sets = {key: DATASET_INFERENCE[key] for key in ("suspect", "validation")}
    return {key: value for key, value in sets.items() if value not in DI_SETS}


from gfm_audit.config import is_fasta_path  # noqa: E402

# A FASTA suspect set (privacy/suspect_fasta.py): its windows are cut and scored by every scored model, and the
# attacks are run over them and the audit's windows together by the dataset_inference rule.
DI_FASTA = bool(DI_MODELS) and is_fasta_path(DATASET_INFERENCE["suspect"])
SUSPECT = "results/dataset_inference/suspect"


def dataset_inference_inputs(wildcards):
    """The scores the test reads: the model's scores.tsv, or with a FASTA suspect set every scored model's
    features of the audit's windows and of the suspect windows, and the membership."""
    if not DI_FASTA:
        return {"scores": f"results/attacks/{wildcards.model}/scores.tsv"}
    return {
        **attack_feature_inputs(wildcards),
        **{f"suspect_{m}": f"{SUSPECT}/features/{m}.parquet" for m in SCORED},
        "membership": "results/membership.tsv",
        "suspect_windows": f"{SUSPECT}/windows.fa",
    }


# --- the report -------------------------------------------------------------------
# Each per-name table and figure is declared once, in gfm_audit/report/layout.py: the plotting rules' outputs,
# the report rule's input keys and the HTML captions all come from there.
from gfm_audit.report import layout as report_layout  # noqa: E402


def report_figure(kind, category, subcategory=None):
    """A plotting rule's output: figure ``kind``'s template, in Snakemake's report with caption report/<kind>.rst."""
    # The caption path is relative to rules/, where every rule that calls this is defined.
    template = report_layout.FIGURES[kind].template
    return report(template, caption=f"../report/{kind}.rst", category=category, subcategory=subcategory)


def report_table(kind, category, subcategory=None):
    """A rule's output: table ``kind`` (report_layout.TABLES or SHARED), in Snakemake's report with caption
    report/<kind>.rst. Only the headline tables of each stage are marked; the path is the layout's template."""
    template = (report_layout.TABLES.get(kind) or report_layout.SHARED[kind]).template
    return report(template, caption=f"../report/{kind}.rst", category=category, subcategory=subcategory)


def report_inputs(wildcards):
    """Every file the report reads, under the keys of report_layout.input_key (never matched by name in a path)."""
    names = {
        "privacy": audited_models(),
        "ga": list(GA_CLASSIFIERS),
        "fimba": FIMBA_MODELS,
        "individuals": individuals_names(),
    }
    names |= {"exposure": EXPOSURE_MODELS, "extraction": EXTRACTION_MODELS}
    # The DP audit: the folder (for its dp.json) of each audited model trained here with DP; the one-run canary
    # bound of the target, where its canaries are the one-run audit's.
    names |= {"dp_audit": dp_audit_models(), "one_run": ONE_RUN_MODELS}
    # Dataset inference: each model's result.tsv and p-value figure, only with dataset_inference.enabled.
    names |= {"dataset_inference": DI_MODELS + IND_DI_MODELS}
    # Certificates of every GA classifier, only with robustness.ga.certify.enabled.
    names |= {"ga_certify": list(GA_CLASSIFIERS) if GA["certify"]["enabled"] else []}
    return report_layout.report_inputs(names)


def dp_audit_models():
    """Audited models whose training (membership.training.dp) writes dp.json into their folder."""
    return [m for m in audited_models() if m in TRAINED] if MEMBERSHIP["training"].get("dp") else []


def report_wanted():
    return bool(audited_models() or GA_CLASSIFIERS or FIMBA_MODELS or individuals_names())


def final_targets():
    """Everything `snakemake` builds by default."""
    targets = [
        "results/windows/windows.tsv",
        "results/windows/snps.tsv.gz",
        "results/neighbors/neighbors.tsv",
    ]
    if STUDY_POINTS:  # config study.grid (rules/study.smk): the study's audits in place of the single one
        return targets + study_targets()
    if MODE in ("finetune", "regions", "genome"):
        targets.append("results/membership.tsv")
    if MODE == "individuals":
        targets.append("results/membership_individuals.tsv")
        targets += [f for files in report_layout.section_outputs("individuals", [TARGET]).values() for f in files]
        targets += [
            f"results/individuals/attacks/{m}/ramia_{t}.tsv" for m in IND_RAMIA_MODELS for t in ("ranges", "metrics")
        ]
    targets += [f"results/features/{m}.parquet" for m in SCORED]
    targets += [f for files in ga_outputs().values() for f in files]
    targets += certify_outputs()
    targets += [f for files in fimba_outputs().values() for f in files]
    targets += [f for files in memorisation_outputs().values() for f in files]
    targets += [
        f"results/dataset_inference/{m}/{t}.tsv" for m in DI_MODELS + IND_DI_MODELS for t in ("result", "p_curve")
    ]
    targets += ["results/report/report.html"] if report_wanted() else []
    targets += [f"results/report/{m}/{figure}.png" for m in audited_models() for figure in TOKEN_FIGURES]
    # Shards are targets too, so that deleting one re-runs just that shard (and the cheap reduce).
    targets += [
        path.format(model=m, shard=i) for path in score_shard_outputs().values() for m in SCORED for i in SHARDS
    ]
    return targets


def audited_models():
    """Models the attacks and the report cover: every configured model, when membership is known."""
    return list(MODELS) if MODE in ("finetune", "regions", "genome") else []


def attack_feature_inputs(wildcards):
    """Per-window features of the attacked model and of every model an attack may compare it with."""
    return {m: f"results/features/{m}.parquet" for m in SCORED}
