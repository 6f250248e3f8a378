"""Dataset inference over people and RaMIA with people's haplotypes as range points (mode individuals): the list
file's refusals, the person table, the range labels and scores against hand computations, the config's refusals."""

import numpy as np
import pandas as pd
import pytest
from gfm_audit.config import check_consistency
from gfm_audit.errors import InputError
from gfm_audit.privacy.dataset_inference import score_table_inference
from gfm_audit.privacy.individuals.dataset_inference import (
    PERSON_FEATURES,
    disjoint_people,
    person_set,
    person_table,
    read_individuals,
)
from gfm_audit.privacy.individuals.ranges import haplotype_ranges

SELECTED = ["HG001", "HG002", "HG003", "NA004"]


def test_a_list_of_individuals_is_read_one_id_a_line_without_comments(tmp_path):
    path = tmp_path / "suspect.txt"
    path.write_text("# our cohort\nHG001\n\n  HG003  # consented 2020\n")
    assert read_individuals(path, selected=SELECTED, key="dataset_inference.suspect") == ["HG001", "HG003"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("HG001\nXX999\n", r"dataset_inference.suspect: .*suspect.txt names 1 individuals that are not among .*XX999"),
        ("# nobody\n\n", r"suspect.txt lists no individuals"),
        ("HG001\nHG001\n", r"suspect.txt lists HG001 more than once"),
    ],
)
def test_a_bad_list_of_individuals_stops_in_one_line_naming_the_file(tmp_path, text, message):
    path = tmp_path / "suspect.txt"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as error:
        read_individuals(path, selected=SELECTED, key="dataset_inference.suspect")
    assert "\n" not in str(error.value)


def people(n_members=8, n_nonmembers=8, shift=2.0, seed=0):
    """per-sequence statistics (two windows, two haplotypes each) and person scores of a made-up cohort."""
    rng = np.random.default_rng(seed)
    n = n_members + n_nonmembers
    samples = [f"P{i:02d}" for i in range(n)]
    member = (np.arange(n) < n_members).astype(int)
    per_seq = pd.DataFrame(
        [
            {"seq_id": f"{s}_{w}_{h}", "sample": s, "window_id": w, "loss": 1.0 - shift * m + rng.normal(0, 0.1)}
            for s, m in zip(samples, member, strict=True)
            for w in ("w0", "w1")
            for h in (1, 2)
        ]
    )
    persons = pd.DataFrame({"sample": samples, "member": member})
    for name in PERSON_FEATURES[1:]:
        persons[name] = rng.standard_normal(n) + shift * member
    persons.loc[0, "alt_alleles"] = np.nan  # a person without alt alleles in the windows
    return per_seq, persons


def test_the_person_table_has_one_row_a_person_with_minus_their_mean_loss():
    per_seq, persons = people()
    table = person_table(per_seq, persons)
    assert list(table.columns) == ["window_id", "member", *PERSON_FEATURES]
    assert table.window_id.tolist() == persons["sample"].tolist()
    # loss: minus the mean of the person's four haplotype windows' losses.
    p3 = per_seq[per_seq["sample"] == "P03"].loss
    assert table.set_index("window_id").loc["P03", "loss"] == pytest.approx(-p3.mean(), rel=1e-12)
    # No alt allele in the windows: no evidence, 0, and the person stays in the test.
    assert table.alt_alleles.iloc[0] == 0.0


def test_listed_members_are_found_and_the_people_are_the_unit(tmp_path):
    per_seq, persons = people(n_members=8, n_nonmembers=12)
    table = person_table(per_seq, persons)
    lists = {"cohort.txt": ["P00", "P01", "P02", "P03", "P04", "P05"]}
    suspect = person_set("cohort.txt", table, key="dataset_inference.suspect", lists=lists)
    validation = person_set("non_members", table, key="dataset_inference.validation")
    assert suspect.sum() == 6 and validation.sum() == 12
    result, _ = score_table_inference(
        table, suspect, validation, names=("cohort.txt", "non_members"), splits=5, curve_repeats=3
    )
    row = result.set_index("test").loc["suspect"]
    # Six people, not their 24 haplotype windows; the one without alt alleles stays.
    assert row.n_suspect == 6 and row.n_validation == 12
    assert row.rejected


def test_a_person_in_both_sets_is_refused_in_one_line():
    per_seq, persons = people()
    table = person_table(per_seq, persons)
    suspect = person_set("a.txt", table, key="dataset_inference.suspect", lists={"a.txt": ["P01", "P09"]})
    validation = person_set("non_members", table, key="dataset_inference.validation")
    with pytest.raises(InputError, match=r"share 1 individuals \(P09\)"):
        disjoint_people(suspect, validation, table, names=("a.txt", "non_members"))


def individuals_config(tmp_path, **di):
    fasta, vcf = tmp_path / "ref.fa", tmp_path / "people.vcf.gz"
    for path in (fasta, vcf):
        path.write_text("")
    return {
        "reference": {"fasta": str(fasta), "vcf": str(vcf)},
        "models": {"tiny": {"path": str(tmp_path), "kind": "causal", "init": "scratch"}},
        "target": "tiny",
        "membership": {"mode": "individuals"},
        "individuals": {"vcf": str(vcf)},
        "dataset_inference": {"enabled": True, **di},
    }


@pytest.mark.parametrize(
    ("di", "message"),
    [
        ({"suspect": "cohort.fa"}, r"dataset_inference.suspect cohort.fa is a FASTA file, .*a list of individuals"),
        ({"suspect": "cohort.bed"}, r"dataset_inference.suspect cohort.bed is a BED file, but in membership.mode"),
        ({"suspect": "members", "validation": "members"}, r"are both members; the validation set must be individuals"),
    ],
)
def test_individuals_mode_refuses_sets_that_are_not_lists_of_people(tmp_path, di, message):
    with pytest.raises(InputError, match=message):
        check_consistency(individuals_config(tmp_path, **di))


def test_individuals_mode_takes_lists_of_people_and_the_membership_keywords(tmp_path):
    check_consistency(individuals_config(tmp_path, suspect="cohort.txt", validation="non_members"))
    check_consistency(individuals_config(tmp_path))


# --- RaMIA over haplotypes ----------------------------------------------------------------------------------------


def test_a_range_is_a_member_when_any_of_its_haplotypes_was_trained_on_even_from_someone_else():
    # Two people, one window each side: A is a member; B is not, but B's first haplotype at w0 has A's bases.
    index = pd.DataFrame(
        {
            "seq_id": ["A1w0", "A2w0", "B1w0", "B2w0", "A1w1", "A2w1", "B1w1", "B2w1"],
            "sample": ["A", "A", "B", "B", "A", "A", "B", "B"],
            "window_id": ["w0", "w0", "w0", "w0", "w1", "w1", "w1", "w1"],
        }
    )
    sequences = {
        "A1w0": "ACGT",
        "A2w0": "ACGA",
        "B1w0": "acgt",  # soft-masked: the same bases as A1w0
        "B2w0": "TTTT",
        "A1w1": "GGGG",
        "A2w1": "GGGC",
        "B1w1": "CCCC",
        "B2w1": "CCCA",  # w1: B shares nothing with A
    }
    membership = pd.DataFrame({"sample": ["A", "B"], "target_member": [1, 0]})
    losses = pd.Series([1.0, 3.0, 2.0, 0.5, 1.5, np.nan, 4.0, 2.5], index=index.seq_id)
    table = haplotype_ranges(losses, index, membership, sequences=sequences, trims=[0.5, 0.0]).set_index("range_id")
    assert table.member.to_dict() == {"A:w0": 1, "A:w1": 1, "B:w0": 1, "B:w1": 0}
    assert table.person_member.to_dict() == {"A:w0": 1, "A:w1": 1, "B:w0": 0, "B:w1": 0}
    # trim 0.5 keeps max(1, floor(0.5 n)) lowest losses, trim 0 all; A2w1 has no loss: its range has one point.
    assert table.n_points.to_dict() == {"A:w0": 2, "A:w1": 1, "B:w0": 2, "B:w1": 2}
    assert table["ramia_trim0.5"].to_dict() == {"A:w0": -1.0, "A:w1": -1.5, "B:w0": -0.5, "B:w1": -2.5}
    assert table["ramia_trim0"].to_dict() == {"A:w0": -2.0, "A:w1": -1.5, "B:w0": -1.25, "B:w1": -3.25}


def test_in_the_window_modes_a_fasta_is_taken_as_the_suspect_set_and_refused_as_the_validation_set(tmp_path):
    config = individuals_config(tmp_path, suspect=str(tmp_path / "cohort.fasta.gz"))
    beds = [tmp_path / "in.bed", tmp_path / "out.bed"]
    config["membership"] = {"mode": "regions", "member_bed": str(beds[0]), "nonmember_bed": str(beds[1])}
    config["models"]["tiny"].pop("init")
    check_consistency(config)  # cut into windows and scored (privacy/suspect_fasta.py)
    config["dataset_inference"] |= {"suspect": "members", "validation": str(tmp_path / "cohort.fasta.gz")}
    with pytest.raises(InputError, match=r"validation .*cohort.fasta.gz is a FASTA file, but only the suspect set"):
        check_consistency(config)
