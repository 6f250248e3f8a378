"""Shared fixtures: real slices of the bundled demo data, written as small files."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import pysam
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow_scripts"))

DEMO = REPO / "resources" / "demo"
DEMO_FASTA = DEMO / "z.fa"
DEMO_VCF = DEMO / "z.vcf.gz"


def demo_vcf_lines() -> tuple[list[str], list[str]]:
    """(header lines, record lines) of the demo VCF, without newlines."""
    with gzip.open(DEMO_VCF, "rt") as fh:
        lines = fh.read().splitlines()
    return [x for x in lines if x.startswith("#")], [x for x in lines if not x.startswith("#")]


def demo_sequence(start: int = 0, end: int | None = None) -> str:
    with pysam.FastaFile(str(DEMO_FASTA)) as fa:
        return fa.fetch("z", start, end)


def write_vcf(path: Path, header: list[str], records: list[str], *, bgzip: bool = True, index: bool = True) -> Path:
    """Write a VCF from text lines; bgzip and tabix-index it with htslib (pysam)."""
    path = Path(path)
    plain = path.with_suffix("") if path.suffix == ".gz" else path
    plain.write_text("\n".join(header + records) + "\n")
    if not bgzip:
        return plain
    pysam.tabix_compress(str(plain), str(path), force=True)
    plain.unlink()
    if index:
        pysam.tabix_index(str(path), preset="vcf", force=True)
    return path


def write_fasta(path: Path, contigs: dict[str, str], *, index: bool = True, width: int = 60) -> Path:
    with open(path, "w") as fh:
        for name, seq in contigs.items():
            fh.write(f">{name}\n")
            for i in range(0, len(seq), width):
                fh.write(seq[i : i + width] + "\n")
    if index:
        pysam.faidx(str(path))
    return Path(path)


def rename_records(records: list[str], contig: str) -> list[str]:
    return [contig + r[r.index("\t") :] for r in records]


@pytest.fixture(scope="session")
def demo_lines() -> tuple[list[str], list[str]]:
    return demo_vcf_lines()


@pytest.fixture
def small_reference(tmp_path, demo_lines):
    """The first 60 kb of the demo as its own FASTA + VCF (real sequence, real variants)."""
    header, records = demo_lines
    records = [r for r in records if int(r.split("\t")[1]) <= 60_000]
    fasta = write_fasta(tmp_path / "ref.fa", {"z": demo_sequence(0, 60_000)})
    vcf = write_vcf(tmp_path / "snps.vcf.gz", header, records)
    return fasta, vcf, records


def _schema_defaults(block: str) -> dict:
    from gfm_audit.config import validate_config

    return validate_config({"reference": {"fasta": "unused.fa", "vcf": "unused.vcf.gz"}})[block]


# The schema's defaults, with smaller windows and more neighbor settings for fast tests.
WINDOW_PARAMS = {**_schema_defaults("windows"), "length": 1000, "n": 10}
NEIGHBOR_PARAMS = {**_schema_defaults("neighbors"), "probs": [0.1, 0.5, 1.0], "per_prob": 2}


def run_prepare(tmp_path: Path, fasta: Path, vcf: Path):
    """prepare_reference through the library, into tmp_path/reference; returns the layout."""
    from gfm_audit.privacy.reference import prepare_reference, staged_layout

    layout = staged_layout(str(fasta), str(vcf), tmp_path / "reference")
    prepare_reference(str(fasta), str(vcf), layout)
    return layout


def run_windows(tmp_path: Path, fasta: Path, vcf: Path, **overrides):
    """prepare_reference + select_windows; returns (layout, outdir, counts)."""
    from gfm_audit.privacy.windows import select_windows

    layout = run_prepare(tmp_path, fasta, vcf)
    out = tmp_path / "windows"
    out.mkdir(exist_ok=True)
    params = {**WINDOW_PARAMS, **overrides}
    counts = select_windows(
        str(layout.fasta),
        str(layout.vcf),
        str(layout.contigs),
        params=params,
        out_tsv=out / "windows.tsv",
        out_fasta=out / "windows.fa",
        out_snps=out / "snps.tsv.gz",
    )
    return layout, out, counts


# --- tiny models, built from a config and saved like a user's checkpoint -------


def save_kmer_tokenizer(path: Path, k: int = 3) -> Path:
    """A Nucleotide-Transformer-style k-mer tokenizer (EsmTokenizer, slow, no offsets)."""
    import itertools

    from transformers import EsmTokenizer

    path.mkdir(parents=True, exist_ok=True)
    specials = ["<unk>", "<pad>", "<mask>", "<cls>", "<eos>", "<bos>"]
    kmers = ["".join(p) for p in itertools.product("ACGT", repeat=k)]
    vocab = path / "vocab.txt"
    vocab.write_text("\n".join(specials + kmers + list("ACGTN")) + "\n")
    tok = EsmTokenizer(
        str(vocab), unk_token="<unk>", cls_token="<cls>", pad_token="<pad>", mask_token="<mask>", eos_token="<eos>"
    )
    tok.save_pretrained(path)
    return path


def save_bpe_tokenizer(path: Path) -> Path:
    """A DNABERT-2-style BPE tokenizer trained on demo sequence (fast, with offsets)."""
    from tokenizers import Tokenizer, models, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    seq = demo_sequence(0, 200_000)
    trainer = trainers.BpeTrainer(vocab_size=256, special_tokens=specials, initial_alphabet=list("ACGTN"))
    tok.train_from_iterator([seq[i : i + 1000] for i in range(0, len(seq), 1000)], trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    fast.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_causal(tmp_path_factory) -> Path:
    from gfm_audit.char_lm import save_char_causal_lm

    return save_char_causal_lm(
        tmp_path_factory.mktemp("causal"), hidden=32, layers=2, heads=2, max_positions=300, weights_seed=0
    )


@pytest.fixture(scope="session")
def tiny_masked(tmp_path_factory) -> Path:
    from gfm_audit.char_lm import save_char_masked_lm

    return save_char_masked_lm(tmp_path_factory.mktemp("masked"), hidden=32, layers=2, heads=2, weights_seed=0)


# --- one Snakemake run of the whole privacy chain, shared by test_workflow and test_memorisation ------------------


@pytest.fixture(scope="session")
def model_run(tmp_path_factory):
    """The whole chain with a tiny from-scratch causal LM, two references, two score shards, canaries and extraction.

    One run serves the tests of every stage it contains (each chain costs minutes of Python processes); the tests
    that change the config only dry-run, or rerun what they deleted.
    """
    from test_workflow import snakemake, tiny_model_config

    workdir = tmp_path_factory.mktemp("models")
    config = tiny_model_config(workdir, shards=2)
    config["attacks"] = {"metrics": {"bootstrap": 50}}
    config["memorisation"] = {
        "canaries": {"n": 1, "length": 24, "repeats": [1, 2], "candidates": 100},
        "extraction": {"enabled": True, "prefix_lengths": [16, 32], "suffix_length": 8, "windows": 4, "samples": 1},
    }
    # Two runs' worth of jobs: the same 20-minute limit as the families run (tests/test_gfm_workflow.py).
    result = snakemake(workdir, config=config, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, config


# Modules whose tests compare numbers between implementations (golden files of the original code, scoring against a
# direct forward pass): CI runs them again under each CPU capability PyTorch can pick (.ci/numerics.sh).
NUMERIC_MODULES = {
    "test_dp_training",
    "test_gfm_caduceus",
    "test_gfm_dnabert2",
    "test_gfm_evo1",
    "test_gfm_evo2",
    "test_gfm_families",
    "test_gfm_gena_lm",
    "test_gfm_hyenadna",
    "test_gfm_loader",
    "test_gfm_nt_v2",
    "test_gfm_nt_v3",
    "test_scoring",
    "test_training",
}


# The modules that read the session's `model_run`: `make test` runs the suite in parallel workers (pytest-xdist,
# --dist loadfile), and these share one worker so that the run is made once.
MODEL_RUN_MODULES = {"test_memorisation", "test_snakemake_report", "test_workflow"}


def _worker_group(nodeid: str) -> str:
    """The unit of work one xdist worker takes whole: a test module, or the modules of one shared workflow run."""
    module = nodeid.split("::", 1)[0]
    return "model_run" if Path(module).stem in MODEL_RUN_MODULES else module


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """--dist loadfile, with the model_run modules as one unit (xdist's own loadgroup marks are not read under
    pytest 9, whose node ids can no longer be suffixed with the group)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _worker_group(nodeid)

    return ModuleGroups(config, log)


def pytest_collection_modifyitems(config, items):
    heavy = set()
    for item in items:
        if item.module is not None and item.module.__name__ in NUMERIC_MODULES:
            item.add_marker(pytest.mark.numerics)
        if item.get_closest_marker("workflow") or item.get_closest_marker("slow"):
            heavy.add(_worker_group(item.nodeid))
    # The units that run Snakemake or train for minutes go to the workers first, the shared run first of all
    # (make test passes --no-loadscope-reorder, so xdist keeps this order): a worker that picked one of them up last
    # would keep the suite waiting on it alone. The sort is stable: the order within a module stays as written.
    items.sort(key=lambda item: (_worker_group(item.nodeid) != "model_run", _worker_group(item.nodeid) not in heavy))
