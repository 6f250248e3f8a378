"""Dataset inference over a list of individuals and RaMIA over people's haplotypes, in a real Snakemake run of
membership mode individuals (tests/test_workflow.py's real 1000 Genomes people and tiny model)."""

import pandas as pd
import pytest
from gfm_audit.fasta import read_fasta
from gfm_audit.privacy.dataset_inference import RESULT_COLUMNS
from test_workflow import individuals_config, snakemake

pytestmark = pytest.mark.workflow


def test_a_list_of_individuals_is_tested_and_their_haplotype_ranges_scored(tmp_path):
    config = individuals_config(tmp_path)
    # 16 people, 8 members: a suspect list of 4 and the 8 non-members as validation are the test's least sizes
    # (4, and 8 for the control halves).
    config["individuals"]["n"] = 16
    config["attacks"]["names"] = ["loss", "ramia"]
    cohort = tmp_path / "cohort.txt"
    cohort.write_text("# filled once the split is known\n")
    config["dataset_inference"] = {"enabled": True, "suspect": str(cohort), "splits": 5, "curve_repeats": 2}
    # (A flag before the target ends --configfile's list of files, which the helper puts first.)
    split = snakemake(tmp_path, "--keep-going", "results/membership_individuals.tsv", config=config)
    assert split.returncode == 0, split.stderr[-3000:]
    membership = pd.read_csv(tmp_path / "results/membership_individuals.tsv", sep="\t", dtype={"sample": str})
    members = membership["sample"][membership.target_member == 1].tolist()
    cohort.write_text("# four of the target's members\n" + "\n".join(members[:4]) + "\n")

    result = snakemake(tmp_path, config=config)
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(tmp_path / "results/dataset_inference/tiny/result.tsv", sep="\t")
    assert list(table.columns) == ["model", *RESULT_COLUMNS]
    rows = table.set_index("test")
    # People are the unit: 4 listed, 8 non-members, not their haplotype windows (2 windows x 2 haplotypes each).
    assert rows.loc["suspect", "suspect"] == str(cohort)
    assert rows.loc["suspect", "n_suspect"] == 4 and rows.loc["suspect", "n_validation"] == 8
    assert rows.loc["control", "validation"] == "other half of non_members"
    # DUCI calibrates each half of the list (2 people) on the people outside it: 8 - 2 members, 8 non-members.
    assert rows.loc["suspect", "duci_n_members"] == 6 and rows.loc["suspect", "duci_n_nonmembers"] == 8
    assert (tmp_path / "results/report/tiny/dataset_inference_curve.png").exists()
    # The report's verdict counts them as people.
    page = (tmp_path / "results/report/report.html").read_text()
    assert f"({cohort} against non_members, 4 and 8 people);" in page
    page = (tmp_path / "results/report/report.html").read_text()
    assert "Dataset inference" in page

    # RaMIA: one range per person and window; its label, recomputed here from the haplotypes and the split: some
    # haplotype of the range has the bases of a member's haplotype at that window.
    ranges = pd.read_csv(tmp_path / "results/individuals/attacks/tiny/ramia_ranges.tsv", sep="\t", dtype=str)
    index = pd.read_csv(tmp_path / "results/individuals/haplotypes.tsv", sep="\t", dtype=str)
    bases = {k: v.upper() for k, v in read_fasta(tmp_path / "results/individuals/haplotypes.fa").items()}
    trained = {
        (w, bases[s]) for s, p, w in zip(index.seq_id, index["sample"], index.window_id, strict=True) if p in members
    }
    expected = {
        f"{p}:{w}": int(any((w, bases[s]) in trained for s in g.seq_id))
        for (p, w), g in index.groupby(["sample", "window_id"])
    }
    assert dict(zip(ranges.range_id, ranges.member.astype(int), strict=True)) == expected
    assert len(ranges) == 16 * 2
    metrics = pd.read_csv(tmp_path / "results/individuals/attacks/tiny/ramia_metrics.tsv", sep="\t")
    # At two 64-bp windows most people share a haplotype with some member: every range may be a member, and then
    # there is nothing to tell apart and the metrics are left empty (the log says so).
    mixed = 0 < sum(expected.values()) < len(expected)
    assert metrics.attack.tolist() == (["ramia_trim0.5"] if mixed else [])
    assert len(ranges[(ranges.member == "1") & (ranges.person_member == "0")]) > 0 or not mixed

    # A listed individual the run did not select stops the rule in one line naming the file and the ID.
    cohort.write_text("\n".join([*members[:3], "NOBODY1"]) + "\n")
    bad = snakemake(tmp_path, config=config)
    assert bad.returncode != 0
    assert f"{cohort} names 1 individuals that are not among the 16" in bad.stderr
    assert "NOBODY1" in bad.stderr and "Traceback" not in bad.stderr
