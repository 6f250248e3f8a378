"""Membership mode individuals: haplotypes of real 1000 Genomes people, splits, person-level attacks, genotypes."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pysam
import pytest
from conftest import DEMO_FASTA, REPO, write_vcf
from gfm_audit.errors import InputError
from gfm_audit.privacy.haplotypes import ALLELE_COLUMNS, build_haplotypes, read_alleles, select_samples, sequence_id
from gfm_audit.privacy.individuals.genotype_inference import (
    allele_frequencies,
    candidate_sequences,
    decide_alleles,
    major_allele,
)
from gfm_audit.privacy.individuals.membership import individuals_split
from gfm_audit.privacy.individuals.person_attacks import person_scores
from gfm_audit.privacy.individuals.scores import sequence_features
from gfm_audit.privacy.individuals.windows_curve import window_counts

PHASED = REPO / "resources" / "individuals" / "phased_snvs.vcf.gz"
PARAMS = {"samples": "all", "n": None, "seed": 0, "phasing": "phased"}
# Three of the demo's SNV-dense windows (resources/individuals/dense_snvs.bed) and one plain one.
WINDOWS = pd.DataFrame(
    {
        "window_id": ["w000000", "w000001", "w000002", "w000003"],
        "chrom": "z",
        "start": [90529, 339910, 500000, 934877],
        "end": [90785, 340166, 500256, 935133],
    }
)


def _build(vcf, samples="all", windows=WINDOWS, **params):
    with pysam.FastaFile(str(DEMO_FASTA)) as fasta:
        return build_haplotypes(
            str(vcf),
            windows,
            fasta=fasta,
            params={**PARAMS, "samples": str(samples), **params},
            max_ref_mismatch_fraction=0.01,
        )


def test_haplotypes_equal_string_edits_of_the_reference_from_pysam_records(tmp_path):
    chosen = ["HG00096", "HG00097", "HG00243", "NA06986"]
    (tmp_path / "samples.txt").write_text("\n".join(chosen) + "\n")
    samples, seqs, alleles, counts = _build(PHASED, tmp_path / "samples.txt")
    assert samples == chosen  # VCF order
    with pysam.VariantFile(str(PHASED)) as vcf, pysam.FastaFile(str(DEMO_FASTA)) as fasta:
        for w in WINDOWS.itertuples():
            ref = fasta.fetch("z", w.start, w.end)
            for i, sample in enumerate(chosen):
                for h in (0, 1):
                    expected = list(ref)
                    for rec in vcf.fetch("z", w.start, w.end):
                        allele = rec.samples[sample]["GT"][h]
                        if allele:
                            expected[rec.pos - 1 - w.start] = rec.alleles[allele]
                    assert seqs[sequence_id(i, h, w.window_id)] == "".join(expected), (sample, h, w.window_id)
    changed = sum(a != b for s in seqs.values() for a, b in zip(s, ref, strict=False))
    assert changed > 0 and counts["snv_applied"] > 10
    carried = alleles[alleles.allele != alleles.ref]
    assert len(carried) == sum(
        sum(a != b for a, b in zip(seqs[sid], _ref(w), strict=True))
        for w in WINDOWS.itertuples()
        for sid in seqs
        if sid.endswith(w.window_id)
    )


def _ref(w) -> str:
    with pysam.FastaFile(str(DEMO_FASTA)) as fasta:
        return fasta.fetch("z", w.start, w.end)


# --- bad inputs ------------------------------------------------------------------------------------------------


def _header(samples: list[str], *, sites_only: bool = False) -> list[str]:
    with gzip.open(PHASED, "rt") as fh:
        meta = [line.rstrip("\n") for line in fh if line.startswith("##")]
    cols = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"
    return [*meta, cols if sites_only else cols + "\tFORMAT\t" + "\t".join(samples)]


SAMPLES5 = ["p1", "p2", "p3", "p4", "p5"]
# Real positions and alleles of window w000001 (z:339911-340166).
SITE = ("339949", "C", "T")


def _vcf(tmp_path, gts: list[str], *, ref: str = SITE[1], samples=SAMPLES5) -> Path:
    record = f"z\t{SITE[0]}\trs4813097\t{ref}\t{SITE[2]}\t.\t.\tAF=0.633201\tGT\t" + "\t".join(gts)
    return write_vcf(tmp_path / "t.vcf.gz", _header(samples), [record])


ONE_WINDOW = WINDOWS.iloc[[1]]


def test_sites_only_vcf_is_refused_with_one_line(tmp_path):
    record = f"z\t{SITE[0]}\t.\t{SITE[1]}\t{SITE[2]}\t.\t.\tAF=0.5"
    vcf = write_vcf(tmp_path / "s.vcf.gz", _header([], sites_only=True), [record])
    with pytest.raises(InputError, match="no sample columns"):
        _build(vcf, windows=ONE_WINDOW)


def test_sample_names_absent_from_the_vcf_are_named(tmp_path):
    (tmp_path / "s.txt").write_text("HG00096\nNOT_A_SAMPLE\n")
    with pytest.raises(InputError, match="NOT_A_SAMPLE"):
        _build(PHASED, tmp_path / "s.txt", windows=ONE_WINDOW)


def test_unphased_heterozygous_stops_unless_phasing_random(tmp_path):
    vcf = _vcf(tmp_path, ["0/1", "0|0", "1/1", "0|1", "1|0"])
    with pytest.raises(InputError, match=r"sample p1 .* unphased .*phasing: random"):
        _build(vcf, windows=ONE_WINDOW)
    runs = [_build(vcf, windows=ONE_WINDOW, phasing="random") for _ in range(2)]
    assert runs[0][1] == runs[1][1]  # seeded
    _, seqs, _, counts = runs[0]
    assert counts["unphased_randomly_assigned"] == 1
    offset = int(SITE[0]) - 1 - 339910
    p1 = {seqs[sequence_id(0, h, "w000001")][offset] for h in (0, 1)}
    assert p1 == {"C", "T"}  # one allele on each haplotype, whichever order
    # Homozygous unphased needs no phase: both haplotypes carry T.
    assert {seqs[sequence_id(2, h, "w000001")][offset] for h in (0, 1)} == {"T"}


def test_missing_alleles_keep_the_reference_and_are_no_query(tmp_path):
    vcf = _vcf(tmp_path, ["./.", "1|.", "0|1", "1|1", "0|0"])
    _, seqs, alleles, counts = _build(vcf, windows=ONE_WINDOW)
    offset = int(SITE[0]) - 1 - 339910
    assert [seqs[sequence_id(0, h, "w000001")][offset] for h in (0, 1)] == ["C", "C"]
    assert [seqs[sequence_id(1, h, "w000001")][offset] for h in (0, 1)] == ["T", "C"]
    assert counts["missing_alleles"] == 3
    assert set(alleles.seq_id) == {sequence_id(i, h, "w000001") for i in range(5) for h in (0, 1)} - {
        sequence_id(0, 0, "w000001"),
        sequence_id(0, 1, "w000001"),
        sequence_id(1, 1, "w000001"),
    }


def test_haploid_calls_are_applied_to_both_haplotypes(tmp_path):
    vcf = _vcf(tmp_path, ["1", "0", "0|1", "1|1", "0|0"])
    _, seqs, _, counts = _build(vcf, windows=ONE_WINDOW)
    offset = int(SITE[0]) - 1 - 339910
    assert [seqs[sequence_id(0, h, "w000001")][offset] for h in (0, 1)] == ["T", "T"]
    assert [seqs[sequence_id(1, h, "w000001")][offset] for h in (0, 1)] == ["C", "C"]
    assert counts["haploid_calls"] == 2


def test_ref_that_disagrees_with_the_fasta_stops_the_run(tmp_path):
    vcf = _vcf(tmp_path, ["0|1"] * 5, ref="G")
    with pytest.raises(InputError, match=r"REF alleles .* differ from the FASTA .*z:339949 REF=G FASTA=C"):
        _build(vcf, windows=ONE_WINDOW)


def test_fewer_than_four_individuals_is_refused():
    with pytest.raises(InputError, match="at least 4"):
        select_samples(["a", "b", "c"], samples="all", n=None, seed=0, vcf_name="x.vcf.gz")
    with pytest.raises(InputError, match="at least 4"):
        _build(PHASED, windows=ONE_WINDOW, n=3)
    with pytest.raises(InputError, match="at least 4"):
        individuals_split(["a", "b", "c"], member_fraction=0.5, n_references=2, seed=0)


# --- splits ------------------------------------------------------------------------------------------------------


def test_seeds_give_identical_splits_and_samples():
    people = [f"HG{i:05d}" for i in range(40)]
    a = individuals_split(people, member_fraction=0.5, n_references=3, seed=7)
    b = individuals_split(people, member_fraction=0.5, n_references=3, seed=7)
    c = individuals_split(people, member_fraction=0.5, n_references=3, seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert not a.target_member.equals(c.target_member)
    assert list(a.columns) == ["sample", "target_member", "ref_0_member", "ref_1_member", "ref_2_member"]
    assert a.target_member.sum() == 20 and all(a[f"ref_{i}_member"].sum() == 20 for i in range(3))
    # Adding references leaves the target's split and the earlier references as they were.
    more = individuals_split(people, member_fraction=0.5, n_references=5, seed=7)
    pd.testing.assert_frame_equal(more[a.columns], a)
    draw = [select_samples(people, samples="all", n=10, seed=3, vcf_name="v") for _ in range(2)]
    assert (
        draw[0] == draw[1]
        and len(draw[0]) == 10
        and draw[0] != select_samples(people, samples="all", n=10, seed=4, vcf_name="v")
    )


# --- person-level aggregation ---------------------------------------------------------------------------------------


def _features(loss: dict[str, float], alt: dict[str, tuple[float, int]]) -> pd.DataFrame:
    rows = [(s, v, alt.get(s, (0.0, 0))[0], alt.get(s, (0.0, 0))[1], -v * 10) for s, v in loss.items()]
    return pd.DataFrame(rows, columns=["seq_id", "loss", "alt_logprob", "alt_tokens", "logprob"]).set_index("seq_id")


def test_person_scores_aggregate_a_hand_made_score_table():
    # Two people x two windows x two haplotypes; ref_0 trained on A, ref_1 on B; the target on A.
    index = pd.DataFrame(
        [(f"{p}{h}{w}", p, h, w, 0) for p in "AB" for w in ("w0", "w1") for h in (0, 1)],
        columns=["seq_id", "sample", "haplotype", "window_id", "n_alt"],
    )
    membership = pd.DataFrame(
        {"sample": ["A", "B"], "target_member": [1, 0], "ref_0_member": [1, 0], "ref_1_member": [0, 1]}
    )
    seqs = index.seq_id.tolist()
    target = dict(zip(seqs, [1.0, 1.2, 1.4, 1.6, 2.0, 2.0, 2.0, 2.0], strict=True))
    ref0 = dict(zip(seqs, [1.1, 1.3, 1.5, 1.7, 2.2, 2.4, 2.6, 2.8], strict=True))
    ref1 = dict(zip(seqs, [1.5, 1.5, 1.5, 1.5, 1.9, 1.9, 1.9, 1.9], strict=True))
    alt = {"A0w0": (-2.0, 2), "A1w1": (-1.0, 1), "B0w0": (-6.0, 2)}
    alt0 = {"A0w0": (-3.0, 2), "A1w1": (-1.0, 1), "B0w0": (-5.0, 2)}
    alt1 = {"A0w0": (-4.0, 2), "A1w1": (-2.5, 1), "B0w0": (-4.0, 2)}
    features = {"t": _features(target, alt), "ref_0": _features(ref0, alt0), "ref_1": _features(ref1, alt1)}
    table = person_scores(features, index, membership, target="t", centre=False).set_index("sample")
    # Person A: only ref_1 is OUT. mean(L_ref1 - L_t) = mean(0.5, 0.3, 0.1, -0.1) = 0.2
    assert table.loc["A", "loss_difference"] == pytest.approx(0.2)
    # Person B: only ref_0 is OUT. mean(0.2, 0.4, 0.6, 0.8) = 0.5
    assert table.loc["B", "loss_difference"] == pytest.approx(0.5)
    # Alt tokens: A: ((-2 - -4) + (-1 - -2.5)) / 3 tokens; B: (-6 - -5) / 2.
    assert table.loc["A", "alt_alleles"] == pytest.approx(3.5 / 3)
    assert table.loc["B", "alt_alleles"] == pytest.approx(-0.5)
    assert table.loc["A", "alt_tokens"] == 3 and table.loc["B", "member"] == 0
    # LiRA online: the sum over the person's four sequences of the per-sequence log-likelihood ratios.
    from gfm_audit.privacy.attacks.lira import lira_scores

    ref_in = np.array([[1, 1, 1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1, 1, 1]], bool)
    stat_r = -np.array([[ref0[s] for s in seqs], [ref1[s] for s in seqs]])
    per_seq = lira_scores(-np.array([target[s] for s in seqs]), stat_r, ref_in, fixed_variance="auto")
    assert table.loc["A", "lira_online"] == pytest.approx(per_seq["lira_online"][:4].sum())
    assert table.loc["B", "lira_online"] == pytest.approx(per_seq["lira_online"][4:].sum())
    # Offline: Stouffer's sum of z / sqrt(4) with mu_out = the OUT reference's statistic, pooled sd.
    resid = np.r_[stat_r[1, :4] - stat_r[1, :4], stat_r[0, 4:] - stat_r[0, 4:]]
    assert np.allclose(resid, 0)  # one OUT model per sequence: the pooled residual is 0, sd floors at 1e-6
    z_a = (-np.array([target[s] for s in seqs[:4]]) - stat_r[1, :4]) / 1e-6
    assert table.loc["A", "lira_offline"] == pytest.approx(z_a.sum() / 2)
    # Restricted to window w1 only the w1 sequences count.
    only = person_scores(features, index, membership, target="t", windows=["w1"], centre=False).set_index("sample")
    assert only.loc["B", "loss_difference"] == pytest.approx(0.7) and only.loc["B", "n_sequences"] == 2
    assert np.isnan(only.loc["B", "alt_alleles"])  # no alt allele of B in w1
    # Centred per window and model (loss minus the window mean of that model):
    centred = person_scores(features, index, membership, target="t").set_index("sample")
    # s(x) - window mean, per model. w0 rows: A0,A1,B0,B1; target w0 mean = (1.0+1.2+2+2)/4 = 1.55,
    # ref_1 w0 mean = 1.7; ref_0 w0 mean = (1.1+1.3+2.2+2.4)/4 = 1.75; w1: target 1.75, ref_1 1.7, ref_0 2.15.
    # A (OUT: ref_1): mean over (w0: (1.5-1.7)-(1.0-1.55), (1.5-1.7)-(1.2-1.55); w1: (1.5-1.7)-(1.4-1.75), ...)
    a = np.mean(
        [(1.5 - 1.7) - (1.0 - 1.55), (1.5 - 1.7) - (1.2 - 1.55), (1.5 - 1.7) - (1.4 - 1.75), (1.5 - 1.7) - (1.6 - 1.75)]
    )
    b = np.mean(
        [
            (2.2 - 1.75) - (2.0 - 1.55),
            (2.4 - 1.75) - (2.0 - 1.55),
            (2.6 - 2.15) - (2.0 - 1.75),
            (2.8 - 2.15) - (2.0 - 1.75),
        ]
    )
    assert centred.loc["A", "loss_difference"] == pytest.approx(a)
    assert centred.loc["B", "loss_difference"] == pytest.approx(b)


def test_sequence_features_read_log_probs_of_tokens_over_the_offsets():
    scores = pd.DataFrame(
        {
            "sequence_id": ["s"],
            "loss": [0.5],
            "token_logprob": [np.array([-0.1, -0.2, -0.3, -0.4], np.float16)],
            "token_start": [np.array([0, 2, 4, 6])],
            "token_end": [np.array([2, 4, 6, 8])],
        }
    )
    f = sequence_features(scores, {"s": np.array([3, 5])}).loc["s"]
    assert f.alt_logprob == pytest.approx(-0.5, abs=1e-3) and f.alt_tokens == 2
    assert f.logprob == pytest.approx(-1.0, abs=1e-3)


def test_window_counts_grow_by_four_up_to_all():
    assert window_counts(1) == [1]
    assert window_counts(16) == [1, 4, 16]
    assert window_counts(40) == [1, 4, 16, 40]


# --- genotype inference ---------------------------------------------------------------------------------------------


def test_genotype_decision_follows_the_likelihoods():
    queries = pd.DataFrame({"seq_id": ["x", "x"], "offset": [1, 2], "ref": ["A", "C"], "alts": ["G", "T,G"]})
    cands = candidate_sequences(queries, {"x": "AACA"})
    assert [(i, a, s) for i, a, s in cands] == [
        (0, "A", "AACA"),
        (0, "G", "AGCA"),
        (1, "C", "AACA"),
        (1, "T", "AATA"),
        (1, "G", "AAGA"),
    ]
    assert decide_alleles(queries, cands, np.array([-5.0, -4.0, -3.0, -3.0, -9.0])) == ["G", "C"]  # tie: REF


def _infer_genotypes(
    spec: dict, *, fasta: Path, alleles: Path, membership: Path, params: dict, batch_size: int, out_dir: Path
) -> dict[str, Path]:
    """genotype_inference_rule as Snakemake runs it, on model ``spec`` (``path``, ``kind``); returns its outputs."""
    from types import SimpleNamespace

    from gfm_audit.privacy.stages import genotype_inference_rule

    out = {"decisions": out_dir / "d.tsv", "summary": out_dir / "s.tsv"}
    job = SimpleNamespace(
        threads=1,
        wildcards=SimpleNamespace(model="t"),
        input=SimpleNamespace(haplotypes=str(fasta), alleles=str(alleles), membership=str(membership)),
        params=SimpleNamespace(spec=spec, genotypes=params, batch_size=batch_size),
        output=SimpleNamespace(**{k: str(v) for k, v in out.items()}),
    )
    genotype_inference_rule(job)
    return out


def test_genotype_inference_asks_a_tiny_model_whose_preference_is_known(tmp_path, tiny_causal):
    """A causal LM trained only on sequences with G at offset 20 must say G there, whatever the truth."""
    import torch
    from gfm_audit.models import ModelSpec
    from gfm_audit.privacy.training import train_model

    torch.set_num_threads(1)
    base = "ACGTTGCAAC" * 4
    with_g = base[:20] + "G" + base[21:]
    spec = ModelSpec.from_config("t", {"path": str(tiny_causal), "kind": "causal"})
    train_model(
        spec,
        [with_g] * 32,
        params={"epochs": 15, "learning_rate": 0.01, "batch_size": 8, "weight_decay": 0.0},
        seed=0,
        out_dir=tmp_path / "m",
        device="cpu",
    )
    people = [f"p{i}" for i in range(4)]
    rows, fasta = [], []
    for i, p in enumerate(people):
        for h in (0, 1):
            sid = sequence_id(i, h, "w0")
            carries = (i + h) % 2 == 0
            fasta.append(f">{sid}\n{with_g if carries else base}\n")
            rows.append((sid, p, h, "w0", 20, 1021, base[20], "G", "G" if carries else base[20], 0.3, "0.3"))
    (tmp_path / "h.fa").write_text("".join(fasta))
    cols = list(ALLELE_COLUMNS)
    pd.DataFrame(rows, columns=cols).to_csv(tmp_path / "a.tsv.gz", sep="\t", index=False)
    pd.DataFrame({"sample": people, "target_member": [1, 1, 0, 0]}).to_csv(tmp_path / "m.tsv", sep="\t", index=False)
    out = _infer_genotypes(
        {"path": str(tmp_path / "m"), "kind": "causal"},
        fasta=tmp_path / "h.fa",
        alleles=tmp_path / "a.tsv.gz",
        membership=tmp_path / "m.tsv",
        params={"sites_per_person": 2, "seed": 0},
        batch_size=4,
        out_dir=tmp_path,
    )
    decisions = pd.read_csv(out["decisions"], sep="\t")
    assert len(decisions) == 8 and set(decisions.predicted) == {"G"}
    assert decisions.correct.sum() == (decisions.allele == "G").sum() == 4
    summary = pd.read_csv(out["summary"], sep="\t")
    alt = summary[summary.truth == "alt"]
    assert set(alt.accuracy_model) == {1.0} and set(alt.accuracy_major_allele) == {0.0}
    assert alt.accuracy_af_sampling.tolist() == pytest.approx([0.3, 0.3])


def test_masked_genotype_inference_masks_the_site_and_picks_the_likelier_base(tmp_path, tiny_masked):
    """Masked model: the decision is the base with the highest p(base | site masked), computed here directly."""
    import torch
    from gfm_audit.models import ModelSpec, load_model, load_tokenizer
    from gfm_audit.tokens import encode

    torch.set_num_threads(1)
    spec = ModelSpec.from_config("m", {"path": str(tiny_masked), "kind": "masked"})
    seq = "ACGTTGCAACGGATCCATGCAAGT" * 2
    people = [f"p{i}" for i in range(4)]
    offsets = [3, 10, 17, 30]
    rows, fasta = [], []
    for i, p in enumerate(people):
        sid = sequence_id(i, 0, "w0")
        fasta.append(f">{sid}\n{seq}\n")
        o = offsets[i]
        alt = "A" if seq[o] != "A" else "C"
        rows.append((sid, p, 0, "w0", o, o + 1, seq[o], alt, seq[o], 0.3, "0.3"))
    (tmp_path / "h.fa").write_text("".join(fasta))
    cols = list(ALLELE_COLUMNS)
    alleles = pd.DataFrame(rows, columns=cols)
    alleles.to_csv(tmp_path / "a.tsv.gz", sep="\t", index=False)
    pd.DataFrame({"sample": people, "target_member": [1, 1, 0, 0]}).to_csv(tmp_path / "m.tsv", sep="\t", index=False)
    out = _infer_genotypes(
        {"path": str(tiny_masked), "kind": "masked"},
        fasta=tmp_path / "h.fa",
        alleles=tmp_path / "a.tsv.gz",
        membership=tmp_path / "m.tsv",
        params={"sites_per_person": 2, "seed": 0},
        batch_size=4,
        out_dir=tmp_path,
    )
    decisions = pd.read_csv(out["decisions"], sep="\t")
    tokenizer, model = load_tokenizer(spec), load_model(spec).eval()
    expected = []
    for r in alleles.itertuples():
        enc = encode(tokenizer, seq)
        t = int(np.flatnonzero((enc.start <= r.offset) & (r.offset < enc.end))[0])
        ids = torch.tensor(enc.ids)[None].clone()
        ids[0, t] = tokenizer.mask_token_id
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids).logits[0, t].float(), -1)
        score = {b: float(logp[tokenizer.convert_tokens_to_ids(b)]) for b in (r.ref, r.alts)}
        expected.append(r.alts if score[r.alts] > score[r.ref] else r.ref)
    assert decisions.sort_values("pos").predicted.tolist() == expected


def test_vcf_without_index_is_refused_with_one_line(tmp_path):
    from gfm_audit.privacy.haplotypes import haplotypes_stage

    vcf = write_vcf(tmp_path / "p.vcf.gz", _header(SAMPLES5), [], index=False)
    (tmp_path / "w.tsv").write_text(ONE_WINDOW.to_csv(sep="\t", index=False))
    out = {k: tmp_path / k for k in ("fasta", "tsv", "alleles", "samples", "counts")}
    with pytest.raises(InputError, match=r"has no index .*tabix -p vcf"):
        haplotypes_stage(
            str(DEMO_FASTA), str(tmp_path / "w.tsv"), str(vcf), params=PARAMS, max_ref_mismatch_fraction=0.01, out=out
        )
    assert not any(p.exists() for p in out.values())


def _stage(tmp_path, vcf, windows=ONE_WINDOW, fasta=DEMO_FASTA, **params):
    """haplotypes_stage as the rule runs it; returns (outputs, counts)."""
    from gfm_audit.privacy.haplotypes import haplotypes_stage

    (tmp_path / "w.tsv").write_text(windows.to_csv(sep="\t", index=False))
    names = {"fasta": "h.fa", "tsv": "h.tsv", "alleles": "alleles.tsv.gz", "samples": "s.tsv", "counts": "c.tsv"}
    out = {k: tmp_path / name for k, name in names.items()}
    counts = haplotypes_stage(
        str(fasta),
        str(tmp_path / "w.tsv"),
        str(vcf),
        params={**PARAMS, **params},
        max_ref_mismatch_fraction=0.01,
        out=out,
    )
    return out, counts


def test_vcf_contig_absent_from_fasta_stops_naming_both(tmp_path):
    record = f"chr20\t{SITE[0]}\trs4813097\t{SITE[1]}\t{SITE[2]}\t.\t.\tAF=0.6\tGT\t" + "\t".join(["0|1"] * 5)
    vcf = write_vcf(tmp_path / "chr20.vcf.gz", _header(SAMPLES5), [record])
    with pytest.raises(InputError) as err:
        _stage(tmp_path, vcf)
    message = str(err.value)
    assert "\n" not in message
    assert f"VCF {vcf}" in message and f"FASTA {DEMO_FASTA}" in message
    assert "'z'" in message and "chr20" in message and "rename" in message
    assert not any(p.name != "w.tsv" and not p.name.startswith("chr20.vcf") for p in tmp_path.iterdir())


def test_vcf_without_records_in_any_window_stops_instead_of_reference_only_haplotypes(tmp_path):
    # The contig matches but every record lies outside the windows: each person would be the plain reference.
    record = "z\t100\trs1\t" + _ref_base(99) + "\tA\t.\t.\tAF=0.6\tGT\t" + "\t".join(["0|1"] * 5)
    vcf = write_vcf(tmp_path / "far.vcf.gz", _header(SAMPLES5), [record])
    with pytest.raises(InputError, match=r"no SNV .* in the 1 window"):
        _stage(tmp_path, vcf)


def _ref_base(offset: int) -> str:
    with pysam.FastaFile(str(DEMO_FASTA)) as fasta:
        base = fasta.fetch("z", offset, offset + 1)
    return base if base != "A" else "C"


def test_empty_genotype_summary_gives_one_line_not_a_pandas_error(tmp_path):
    from types import SimpleNamespace

    from gfm_audit.privacy.individuals.genotype_inference import genotype_summary
    from gfm_audit.privacy.stages import plot_individuals_rule

    # No queries (no alt alleles anywhere) still writes a table with its header.
    summary = genotype_summary(pd.DataFrame(columns=["af_bin", "carries_alt", "member", "correct"]))
    assert list(summary.columns) == [
        "af_bin",
        "truth",
        "group",
        "queries",
        "accuracy_model",
        "accuracy_major_allele",
        "accuracy_af_sampling",
    ]
    scores = tmp_path / "person_scores.tsv"
    pd.DataFrame({"sample": ["a", "b"], "member": [1, 0], "loss_difference": [0.2, 0.1]}).assign(
        n_sequences=2, alt_tokens=0
    ).to_csv(scores, sep="\t", index=False)
    curve = tmp_path / "curve.tsv"
    pd.DataFrame({"attack": ["loss_difference"], "windows": [1], "auc_mean": [0.5], "auc_sd": [0.0]}).to_csv(
        curve, sep="\t", index=False
    )
    empty = tmp_path / "summary.tsv"
    empty.write_text("")
    job = SimpleNamespace(
        input=SimpleNamespace(scores=str(scores), curve=str(curve), genotypes=str(empty)),
        output=SimpleNamespace(**{k: str(tmp_path / f"{k}.png") for k in ("roc", "curve", "genotypes")}),
    )
    with pytest.raises(InputError) as err:
        plot_individuals_rule(job)
    assert str(empty) in str(err.value) and "\n" not in str(err.value)


SPLIT_POS = int(SITE[0])


def _split_site_vcf(tmp_path, *, joined: bool) -> Path:
    """z:339949 C>T and C>G: as one multi-allelic record, or split in two (as bcftools norm -m- writes it)."""
    first = ["1|0", "0|0", "1|1", "0|0", "0|1"]
    second = ["0|1", "0|0", "0|0", "1|0", "0|0"]
    head = f"z\t{SITE[0]}\trs4813097\tC\t"
    if joined:
        # A haplotype carries T (allele 1) from the first record or G (allele 2) from the second.
        gts = [
            "|".join(_joined(a, b) for a, b in zip(f.split("|"), t.split("|"), strict=True))
            for f, t in zip(first, second, strict=True)
        ]
        records = [head + "T,G\t.\t.\tAF=0.3,0.2\tGT\t" + "\t".join(gts)]
    else:
        records = [
            head + "T\t.\t.\tAF=0.3\tGT\t" + "\t".join(first),
            head + "G\t.\t.\tAF=0.2\tGT\t" + "\t".join(second),
        ]
    return write_vcf(tmp_path / ("joined.vcf.gz" if joined else "split.vcf.gz"), _header(SAMPLES5), records)


def _joined(first: str, second: str) -> str:
    return "1" if first == "1" else "2" if second == "1" else "0"


def test_split_multiallelic_site_gives_one_allele_row_per_haplotype_carrying_its_real_base(tmp_path, tiny_causal):
    from gfm_audit.fasta import read_fasta
    from gfm_audit.privacy.haplotypes import read_alleles

    split_dir, joined_dir = tmp_path / "split", tmp_path / "joined"
    split_dir.mkdir(), joined_dir.mkdir()
    out, counts = _stage(split_dir, _split_site_vcf(split_dir, joined=False))
    joined, _ = _stage(joined_dir, _split_site_vcf(joined_dir, joined=True))
    alleles, seqs = read_alleles(out["alleles"]), read_fasta(out["fasta"])
    site = alleles[alleles.pos == SPLIT_POS]
    assert not site.duplicated(["seq_id", "pos"]).any() and len(site) == 10
    offset = SPLIT_POS - 1 - 339910
    assert all(r.allele == seqs[r.seq_id][offset] for r in site.itertuples())
    assert set(site.alts) == {"T,G"}
    carried = site.set_index("seq_id").allele
    assert carried[sequence_id(0, 0, "w000001")] == "T" and carried[sequence_id(0, 1, "w000001")] == "G"
    # The split VCF reads exactly as the same site written as one multi-allelic record.
    pd.testing.assert_frame_equal(alleles, read_alleles(joined["alleles"]))
    assert read_fasta(joined["fasta"]) == seqs
    assert counts["duplicate_position_merged"] == 1
    # Genotype inference is graded against the base the haplotype carries.
    membership = tmp_path / "m.tsv"
    pd.DataFrame({"sample": SAMPLES5, "target_member": [1, 1, 0, 0, 1]}).to_csv(membership, sep="\t", index=False)
    decisions = _infer_genotypes(
        {"path": str(tiny_causal), "kind": "causal"},
        fasta=out["fasta"],
        alleles=out["alleles"],
        membership=membership,
        params={"sites_per_person": 4, "seed": 0},
        batch_size=8,
        out_dir=tmp_path,
    )
    graded = pd.read_csv(decisions["decisions"], sep="\t")
    # Every haplotype once: p1 is asked about its T and its G, never about a REF it does not carry.
    assert len(graded) == 10 and sorted(graded[graded["sample"] == "p1"].allele) == ["G", "T"]
    truth = [
        {seqs[sequence_id(SAMPLES5.index(r.sample), h, "w000001")][offset] for h in (0, 1)} for r in graded.itertuples()
    ]
    assert all(r.allele in t for r, t in zip(graded.itertuples(), truth, strict=True))
    assert (graded.correct == (graded.predicted == graded.allele)).all()
    # Frequencies (AF=0.3 for T, 0.2 for G, so REF 0.5): an ALT carrier is binned by its own ALT's frequency, a REF
    # carrier by the ALTs' together; the baselines use the frequency of the allele carried.
    # (INFO AF is a float32 in the VCF: 0.3 reads as 0.30000001192..., in af and alt_afs alike.)
    assert all([float(f) for f in afs.split(",")] == pytest.approx([0.3, 0.2]) for afs in site.alt_afs)
    expected_af = {"T": 0.3, "G": 0.2, "C": 0.5}
    assert graded.site_af.tolist() == pytest.approx([expected_af[a] for a in graded.allele])
    assert (graded.major_correct == (graded.allele == "C")).all()
    summary = pd.read_csv(decisions["summary"], sep="\t")
    for row in summary.itertuples():
        carried = graded[(graded.af_bin == row.af_bin) & ((graded.allele != "C") == (row.truth == "alt"))]
        carried = carried[carried.member == (row.group == "member")]
        # summary.tsv keeps 6 significant digits: the tolerance is that rounding.
        assert row.accuracy_af_sampling == pytest.approx(np.mean([expected_af[a] for a in carried.allele]), abs=5e-6)


def test_major_allele_of_a_multiallelic_site_weighs_every_alt_and_ref_gets_the_rest():
    # REF 0.2, T 0.3, G 0.5: the most frequent allele is the second ALT, not REF nor the first ALT.
    freqs = allele_frequencies("C", "T,G", "0.3,0.5")
    assert freqs == pytest.approx({"C": 0.2, "T": 0.3, "G": 0.5})
    assert major_allele(freqs) == "G"
    # Bi-allelic: the ALT only above 0.5; a tie goes to REF, as before.
    assert major_allele(allele_frequencies("A", "G", "0.6")) == "G"
    assert major_allele(allele_frequencies("A", "G", "0.5")) == "A"
    # Frequencies of different sources may sum past 1: REF gets 0, not a negative frequency.
    assert allele_frequencies("A", "C,G", "0.7,0.4")["A"] == 0.0


def test_alleles_table_of_an_older_version_stops_with_one_line_saying_what_to_rerun(tmp_path):
    old = tmp_path / "alleles.tsv.gz"
    pd.DataFrame([("s", "p", 0, "w", 1, 2, "A", "G", "G", 0.3)], columns=list(ALLELE_COLUMNS[:-1])).to_csv(
        old, sep="\t", index=False
    )
    with pytest.raises(InputError, match=r"alleles.tsv.gz lacks column\(s\) alt_afs .* --forcerun individual_hap"):
        read_alleles(old)


def test_triploid_genotype_stops_with_one_line_naming_record_and_sample(tmp_path):
    vcf = _vcf(tmp_path, ["0|0", "0|1|1", "0|1", "1|1", "0|0"])
    with pytest.raises(InputError) as err:
        _build(vcf, windows=ONE_WINDOW)
    message = str(err.value)
    assert "\n" not in message
    assert str(vcf) in message and f"z:{SITE[0]}" in message and "sample p2" in message and "0|1|1" in message
    assert "only diploid phased genotypes" in message


def test_ref_mismatch_over_threshold_names_the_config_key_and_the_fraction(tmp_path):
    vcf = _vcf(tmp_path, ["0|1"] * 5, ref="G")
    with pytest.raises(InputError) as err:
        _build(vcf, windows=ONE_WINDOW)
    message = str(err.value)
    assert "1 of 1 " in message and "(100.0%)" in message
    assert "windows.max_ref_mismatch_fraction=0.01" in message and "raise windows.max_ref_mismatch_fraction" in message
