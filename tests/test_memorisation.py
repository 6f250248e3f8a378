"""Memorisation beyond membership: canaries and their exposure, extraction, the k-mer baseline."""

import itertools
import math
import re

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import demo_sequence
from gfm_audit.config import validate_config
from gfm_audit.errors import InputError
from gfm_audit.models import ModelSpec, load_model, load_tokenizer
from gfm_audit.privacy.memorisation.canaries import (
    Canary,
    canary_training_copies,
    check_budget,
    random_canaries,
    read_canaries,
    training_copies,
    write_canaries,
)
from gfm_audit.privacy.memorisation.exposure import canary_exposure, model_log_perplexity
from gfm_audit.privacy.memorisation.extraction import ModelDecoder, check_decoding, match_metrics, run_extraction
from gfm_audit.privacy.memorisation.kmer import KmerModel

torch.set_num_threads(1)


def _independent_model(length: int, seed: int = 0):
    """Known likelihoods: each position draws its base independently from its own distribution."""
    probs = np.random.default_rng(seed).dirichlet(np.ones(4), size=length)
    code = {b: i for i, b in enumerate("ACGT")}

    def log_perplexity(seqs):
        return np.array([-sum(math.log2(probs[i, code[b]]) for i, b in enumerate(s)) for s in seqs])

    return log_perplexity


def _brute_force_exposure(canary: str, log_perplexity) -> float:
    """log2 |R| - log2 rank, every candidate of the format scored and ranked by hand."""
    everything = ["".join(c) for c in itertools.product("ACGT", repeat=len(canary))]
    scores = dict(zip(everything, log_perplexity(everything), strict=True))
    rank = 1 + sum(1 for s in everything if scores[s] < scores[canary])
    return 2 * len(canary) - math.log2(rank)


def test_exposure_by_enumeration_equals_the_brute_force_rank():
    lp = _independent_model(6)
    canaries = random_canaries(3, 6, repeats=[1, 4], seed=1)
    table = canary_exposure(canaries, lp, candidates=100, enumerate_max=4**6, seed=0)
    assert (table.method == "exact").all() and (table.candidates == 4096).all()
    expected = [_brute_force_exposure(c.sequence, lp) for c in canaries]
    np.testing.assert_allclose(table.exposure, expected, atol=1e-12)
    assert table.log2_space.eq(12).all()


def test_extrapolated_exposure_matches_the_brute_force_rank_and_never_overstates_it():
    """The skew-normal extrapolation of Carlini et al. 2019 against the true rank among all 4^10 candidates.

    Within the bulk (exposure up to 6 bits) it agrees to half a bit; in the far tail it is conservative,
    since these log-perplexities have a hard lower bound that a skew-normal does not.
    """
    length = 10
    probs = np.random.default_rng(3).dirichlet(np.full(4, 5.0), size=length)
    nll = -np.log2(probs)
    code = {b: i for i, b in enumerate("ACGT")}

    def lp(seqs):
        return np.array([sum(nll[i, code[b]] for i, b in enumerate(s)) for s in seqs])

    # Every candidate's log-perplexity, in itertools.product order, as outer sums over the positions.
    every = np.zeros(1)
    for i in range(length):
        every = np.add.outer(every, nll[i]).ravel()
    order = np.argsort(every, kind="stable")
    # np.add.outer puts position 0 slowest, so a flat index's base-4 digits are the bases, first position first.
    picked = ["".join("ACGT"[d] for d in np.unravel_index(order[2**k - 1], (4,) * length)) for k in range(2, 20, 2)]
    canaries = [
        Canary(f"c{i}", "inserted", 1, s, tuple(range(length)), ("ACGT",) * length) for i, s in enumerate(picked)
    ]
    table = canary_exposure(canaries, lp, candidates=4000, enumerate_max=1, seed=0)
    assert (table.method == "extrapolated").all()
    truth = np.array([2 * length - math.log2(1 + np.sum(every < v)) for v in lp(picked)])
    estimate = table.exposure.to_numpy()
    bulk = truth <= 6
    assert bulk.sum() >= 3 and np.abs(estimate - truth)[bulk].max() < 0.5
    assert (estimate <= truth + 0.25).all()
    assert (np.diff(truth) < 0).all() and (np.diff(estimate) < 0).all()  # the same order as the true ranks


def _hand_log_perplexity(folder, seqs):
    """log2-perplexity of each sequence under a causal model: one unbatched forward pass each, summed by hand."""
    tok = load_tokenizer(ModelSpec("m", str(folder), "causal"))
    model = load_model(ModelSpec("m", str(folder), "causal"))
    out = []
    with torch.no_grad():
        for s in seqs:
            ids = torch.tensor([tok(s)["input_ids"]])
            logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].double(), dim=-1)
            out.append(-float(logp.gather(1, ids[0, 1:, None]).sum()) / math.log(2))
    return np.array(out)


def test_exposure_of_a_tiny_causal_model_equals_brute_force_over_its_candidates(tiny_causal):
    spec = ModelSpec("tiny", str(tiny_causal), "causal")
    canaries = random_canaries(1, 4, repeats=[1], seed=2)
    lp = model_log_perplexity(spec, batch_size=64, device="cpu")
    everything = ["".join(c) for c in itertools.product("ACGT", repeat=4)]
    hand = _hand_log_perplexity(tiny_causal, everything)
    np.testing.assert_allclose(lp(everything), hand, atol=1e-3)
    table = canary_exposure(canaries, lp, candidates=50, enumerate_max=256, seed=0)
    for c, got in zip(canaries, table.exposure, strict=True):
        rank = 1 + int(np.sum(hand < hand[everything.index(c.sequence)] - 1e-3))
        assert abs(got - (8 - math.log2(rank))) < 0.1


def test_masked_model_log_perplexity_is_the_exact_pseudo_log_likelihood(tiny_masked):
    """Every base masked in turn (Salazar et al. 2020), even where the model's config says sampled."""
    spec = ModelSpec("m", str(tiny_masked), "masked", masking="sampled", mask_fraction=0.1)
    seqs = [demo_sequence(100, 112), demo_sequence(900, 909)]
    got = model_log_perplexity(spec, batch_size=5, device="cpu")(seqs)
    tok, model = load_tokenizer(spec), load_model(spec)
    for seq, value in zip(seqs, got, strict=True):
        ids = tok(seq)["input_ids"]
        total = 0.0
        with torch.no_grad():
            for i, t in enumerate(ids):
                if t in tok.all_special_ids:
                    continue
                masked = list(ids)
                masked[i] = tok.mask_token_id
                logp = torch.log_softmax(model(input_ids=torch.tensor([masked])).logits[0, i].double(), dim=-1)
                total -= float(logp[t]) / math.log(2)
        assert value == pytest.approx(total, abs=1e-3)


def test_greedy_decoding_equals_a_hand_written_loop(tiny_causal):
    spec = ModelSpec("tiny", str(tiny_causal), "causal")
    decoder = ModelDecoder.load(spec, device="cpu")
    prefixes = [demo_sequence(i * 500, i * 500 + 20) for i in range(5)]
    batched = decoder.continue_prefixes(prefixes, 12, batch_size=2)
    tok, model = load_tokenizer(spec), load_model(spec)
    bases = tok.convert_tokens_to_ids(list("ACGT"))
    for prefix, got in zip(prefixes, batched, strict=True):
        ids = tok(prefix)["input_ids"]
        text = ""
        with torch.no_grad():
            for _ in range(12):
                logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
                best = max(range(4), key=lambda j: float(logits[bases[j]]))
                ids.append(bases[best])
                text += "ACGT"[best]
        assert got == text


def test_iterative_unmasking_equals_a_hand_written_loop(tiny_masked):
    spec = ModelSpec("m", str(tiny_masked), "masked")
    decoder = ModelDecoder.load(spec, device="cpu")
    prefixes = [demo_sequence(i * 700, i * 700 + 16) for i in range(3)]
    batched = decoder.continue_prefixes(prefixes, 6, batch_size=3)
    tok, model = load_tokenizer(spec), load_model(spec)
    bases = tok.convert_tokens_to_ids(list("ACGT"))
    for prefix, got in zip(prefixes, batched, strict=True):
        ids = tok(prefix + "AAAAAA")["input_ids"]
        slots = [i for i, t in enumerate(ids) if t == bases[0]][-6:]
        for i in slots:
            ids[i] = tok.mask_token_id
        filled = {}
        with torch.no_grad():
            for _ in range(6):
                probs = torch.softmax(model(input_ids=torch.tensor([ids])).logits[0][:, bases], dim=-1)
                best = max((s for s in slots if s not in filled), key=lambda s: float(probs[s].max()))
                filled[best] = int(probs[best].argmax())
                ids[best] = bases[filled[best]]
        assert got == "".join("ACGT"[filled[s]] for s in slots)


def test_kmer_baseline_continues_a_known_repeat():
    unit = "ACGTTGCA"
    model = KmerModel.fit([unit * 20, "GGGGCCCC"], 3)
    prefix = unit * 2 + "ACG"
    assert model.continue_sequence(prefix, 13) == (unit * 4)[19 : 19 + 13]
    # ACG starts each of the 20 units and is followed by T every time: (20 + 1) / (20 + 4).
    np.testing.assert_allclose(model.probabilities("ACG"), np.array([1, 1, 1, 21]) / 24)
    # Left out, the repeat leaves only GGGGCCCC's five transitions: GCC once followed by C; ACG never seen.
    alone = model.without(unit * 20)
    np.testing.assert_allclose(alone.probabilities("GCC"), np.array([1, 2, 1, 1]) / 5)
    np.testing.assert_allclose(alone.probabilities("ACG"), np.full(4, 0.25))
    assert alone.counts.sum() == len("GGGGCCCC") - 3


def test_match_metrics_count_runs_and_accuracy_by_hand():
    assert match_metrics("ACGTACGT", "ACGTACGT") == (True, 8, 1.0)
    assert match_metrics("ACGAACGT", "ACGTACGT") == (False, 4, 7 / 8)
    assert match_metrics("TTTT", "AAAA") == (False, 0, 0.0)


def test_target_takes_every_inserted_canary_and_a_reference_model_a_seeded_half(tmp_path):
    canaries = random_canaries(2, 32, repeats=[1, 4, 16], seed=0)
    assert [c.repeats for c in canaries] == [1, 1, 4, 4, 16, 16] + [0] * 6
    copies = training_copies(canaries)
    assert len(copies) == 2 * 21
    assert not {c.sequence for c in canaries if c.group == "reference"} & set(copies)
    inserted = [c for c in canaries if c.group == "inserted"]
    # A reference model: each inserted canary in or out by one Bernoulli(1/2) draw, with all its copies.
    halves = [training_copies(canaries, inclusion_seed=seed) for seed in range(200)]
    assert halves[3] == training_copies(canaries, inclusion_seed=3) and halves[3] != halves[4]
    taken = np.array([[c.sequence in half for c in inserted] for half in halves])
    for half in halves:
        assert all(half.count(c.sequence) in (0, c.repeats) for c in inserted)
        assert not {c.sequence for c in canaries if c.group == "reference"} & set(half)
    # 200 draws per canary: a share outside 0.5 +- 0.12 (over 3 binomial standard deviations) would be a bias.
    assert np.all(np.abs(taken.mean(axis=0) - 0.5) < 0.12)
    windows = {f"w{i}": demo_sequence(i * 1000, i * 1000 + 256) for i in range(40)}
    assert not any(c.sequence in w for c in canaries for w in windows.values())
    write_canaries(canaries, tmp_path / "canaries.tsv")
    assert read_canaries(tmp_path / "canaries.tsv") == canaries


def test_seeds_give_identical_canaries_exposures_and_extractions(tiny_causal):
    a, b = random_canaries(2, 36, repeats=[1, 4], seed=5), random_canaries(2, 36, repeats=[1, 4], seed=5)
    assert a == b and a != random_canaries(2, 36, repeats=[1, 4], seed=6)
    spec = ModelSpec("tiny", str(tiny_causal), "causal")
    lp = model_log_perplexity(spec, batch_size=32, device="cpu")
    first = canary_exposure(a, lp, candidates=60, enumerate_max=1, seed=0)
    pd.testing.assert_frame_equal(first, canary_exposure(a, lp, candidates=60, enumerate_max=1, seed=0))
    windows = {f"w{i}": demo_sequence(i * 300, i * 300 + 64) for i in range(8)}
    labels = {w: i % 2 for i, w in enumerate(windows)}
    params = {
        "decoding": "auto",
        "prefix_lengths": [16, 32],
        "suffix_length": 8,
        "windows": 3,
        "samples": 2,
        "temperature": 1.0,
        "kmer_order": 2,
        "seed": 0,
    }
    decoder = ModelDecoder.load(spec, device="cpu")
    one = run_extraction(decoder, windows, labels, canaries=a, params=params, batch_size=4)
    two = run_extraction(decoder, windows, labels, canaries=a, params=params, batch_size=4)
    pd.testing.assert_frame_equal(one, two)
    assert set(one.group) == {"member", "nonmember", "canary_r4", "canary_r1", "canary_reference"}
    assert set(one.decoder) == {"model", "kmer_baseline"} and set(one.method) == {"greedy", "sampling"}
    assert (one[one.group == "member"].n_sequences == 3).all()
    # 36-bp canaries hold a 16-base prefix and 8 more, not a 32-base one.
    assert set(one[one.group.str.startswith("canary")].prefix_length) == {16}
    reseeded = run_extraction(decoder, windows, labels, canaries=a, params={**params, "seed": 1}, batch_size=4)
    assert not reseeded.equals(one)


def test_canary_longer_than_the_model_takes_fails_naming_the_setting(tmp_path, tiny_causal):
    write_canaries(random_canaries(1, 400, repeats=[1], seed=0), tmp_path / "c.tsv")
    spec = ModelSpec("tiny", str(tiny_causal), "causal")
    with pytest.raises(InputError, match=r"memorisation\.canaries\.length=400 gives canaries of 401 tokens.*\(300\)"):
        canary_training_copies(spec, tmp_path / "c.tsv")


def test_more_canary_copies_than_member_windows_fail_naming_the_setting():
    check_budget(4, [1, 4, 16], 84)
    with pytest.raises(InputError, match=r"84 inserted copies, more than the target's 80 member windows.*canaries\.n"):
        check_budget(4, [1, 4, 16], 80)


def test_greedy_extraction_on_a_masked_model_fails_naming_the_setting(tiny_masked):
    with pytest.raises(InputError, match=r"^memorisation\.extraction\.decoding is greedy, but model 'm' is masked"):
        check_decoding("masked", "greedy", "m")
    config = {
        "reference": {"fasta": "x.fa", "vcf": "x.vcf.gz"},
        "models": {"m": {"path": str(tiny_masked), "kind": "masked"}},
        "target": "m",
        "membership": {"mode": "regions", "member_bed": "a.bed", "nonmember_bed": "b.bed"},
        "memorisation": {"extraction": {"enabled": True, "decoding": "greedy"}},
    }
    with pytest.raises(InputError, match=r"memorisation\.extraction\.decoding is greedy, which model 'm' \(masked\)"):
        validate_config(config)
    assert check_decoding("masked", "auto", "m") == "iterative"


def test_canaries_outside_finetune_mode_fail_naming_the_setting(tiny_causal):
    config = {
        "reference": {"fasta": "x.fa", "vcf": "x.vcf.gz"},
        "models": {"t": {"path": str(tiny_causal), "kind": "causal"}},
        "target": "t",
        "membership": {"mode": "regions", "member_bed": "a.bed", "nonmember_bed": "b.bed"},
        "memorisation": {"canaries": {"n": 2}},
    }
    with pytest.raises(InputError, match=r"memorisation\.canaries\.n > 0 needs membership\.mode finetune"):
        validate_config(config)


@pytest.mark.workflow
def test_memorisation_rules_write_exposure_extraction_figures_and_report_section(model_run):
    """On the shared tiny-model run (conftest.model_run): canaries in the target, extraction on every model."""
    from gfm_audit.fasta import read_fasta
    from gfm_audit.privacy.memorisation import exposure, extraction
    from test_workflow import snakemake

    workdir, config = model_run
    out = workdir / "results/memorisation/tiny"
    table = pd.read_csv(out / "exposure.tsv", sep="\t")
    assert list(table.columns) == list(exposure.COLUMNS)
    assert table.repeats.tolist() == [1, 2, 0, 0] and (table.method == "extrapolated").all()
    assert (table.log2_space == 48).all() and table.exposure.between(0, 48).all()
    rates = pd.read_csv(out / "extraction.tsv", sep="\t")
    assert list(rates.columns) == list(extraction.COLUMNS)
    assert set(rates.group) == {"member", "nonmember", "canary_r2", "canary_r1", "canary_reference"}
    assert set(rates.prefix_length) == {16, 32} and (rates.suffix_length == 8).all()
    for png in ("exposure_vs_repeats", "extraction_vs_prefix"):
        assert (workdir / f"results/report/tiny/{png}.png").read_bytes()[:4] == b"\x89PNG"
    page = (workdir / "results/report/report.html").read_text()
    assert "Memorisation: canaries and extraction" in page and page.count("<img") == 6
    # Canaries reach the target's training data and nothing else.
    canaries = pd.read_csv(workdir / "results/memorisation/canaries.tsv", sep="\t")
    windows = read_fasta(workdir / "results/windows/windows.fa")
    assert not any(c in w for c in canaries.sequence for w in windows.values())
    logs = workdir / "results/logs/train_model"
    assert "2 canaries inserted, 3 copies trained on in batches of their own" in (logs / "tiny.log").read_text()
    for ref in ("ref_0", "ref_1"):  # a seeded half of them each
        assert re.search(r"[0-2] canaries inserted, [0-3] copies", (logs / f"{ref}.log").read_text())
    # Re-runs: nothing to do; an extraction setting re-runs extraction only, never training or exposure.
    again = snakemake(workdir, "--dry-run", config=config)
    assert "Nothing to be done" in again.stdout + again.stderr
    changed = {
        **config,
        "memorisation": {
            **config["memorisation"],
            "extraction": {"enabled": True, "samples": 0, "prefix_lengths": [16], "suffix_length": 8, "windows": 4},
        },
    }
    plan = snakemake(workdir, "--dry-run", config=changed)
    text = plan.stdout + plan.stderr
    assert plan.returncode == 0 and "rule extraction" in text and "rule report" in text
    for rule in ("train_model", "canary_exposure", "make_canaries", "score_shard"):
        assert f"rule {rule}" not in text
    # An exposure setting re-runs the exposure only: the canaries, hence the target, stay.
    fewer = {**config, "memorisation": {**config["memorisation"], "canaries": {**config["memorisation"]["canaries"]}}}
    fewer["memorisation"]["canaries"]["candidates"] = 50
    plan = snakemake(workdir, "--dry-run", config=fewer)
    text = plan.stdout + plan.stderr
    assert plan.returncode == 0 and "rule canary_exposure" in text
    for rule in ("train_model", "make_canaries", "extraction", "score_shard"):
        assert f"rule {rule}" not in text


def test_snp_rich_canaries_are_real_segments_outside_the_windows_with_vcf_alleles(tmp_path, small_reference):
    from conftest import run_windows
    from gfm_audit.privacy.memorisation.canaries import snp_rich_canaries
    from gfm_audit.privacy.reference import read_contigs

    fasta, vcf, records = small_reference
    layout, out, _ = run_windows(tmp_path, fasta, vcf, length=500, n=20)
    windows = pd.read_csv(out / "windows.tsv", sep="\t", dtype={"chrom": str})
    contigs = {c.fasta_contig: c.vcf_contig for c in read_contigs(layout.contigs)}
    params = {"n": 2, "length": 100, "repeats": [1, 3], "seed": 0}
    canaries = snp_rich_canaries(
        str(layout.fasta), str(layout.vcf), windows=windows, vcf_contigs=contigs, params=params
    )
    assert [c.repeats for c in canaries] == [1, 1, 3, 3, 0, 0, 0, 0]
    assert canaries == snp_rich_canaries(
        str(layout.fasta), str(layout.vcf), windows=windows, vcf_contigs=contigs, params=params
    )
    alleles = {}
    for r in records:
        f = r.split("\t")
        if len(f[3]) == 1:
            alleles.setdefault(int(f[1]) - 1, set()).update([f[3], *[a for a in f[4].split(",") if len(a) == 1]])
    genome = demo_sequence(0, 60_000).upper()
    for c in canaries:
        assert c.secret_offsets and len(c.sequence) == 100
        # Its segment: where the genome equals the canary outside the secret sites, and those sites are SNVs.
        (start,) = [
            s
            for s in range(len(genome) - 100)
            if all(genome[s + i] == b for i, b in enumerate(c.sequence) if i not in c.secret_offsets)
            and all(s + o in alleles for o in c.secret_offsets)
        ]
        assert all((windows.end <= start) | (windows.start >= start + 100))
        for o, choice in zip(c.secret_offsets, c.choices, strict=True):
            assert set(choice) == alleles[start + o] and c.sequence[o] in choice
