"""The study's HTML page (results/study/report.html) built from a hand-made summary.tsv and figures: its grid, its
rows, its embedded figures, and the sentence reading the curve; each expected cell written out by hand."""

import base64
from pathlib import Path

import pandas as pd
from gfm_audit.privacy.study.report import curve_sentence, member_passes
from gfm_audit.privacy.study.summary import auc_figure
from gfm_audit.report.build import build_study_report

HEADER = ["point", "epochs", "duplication", "attack", "auc", "auc_low", "auc_high", "tpr_at_fpr_0.01",
          "eps_lower_bound", "n_members", "n_nonmembers"]  # fmt: skip
ROWS = [
    ["epochs-1_dup-1", 1, 1, "loss", 0.5174, 0.44087, 0.593117, 0.03, 0, 100, 100],
    ["epochs-1_dup-1", 1, 1, "neighborhood_snp_p0.1", 0.49, 0.41, 0.57, "insufficient_nonmembers", 0, 100, 100],
    ["epochs-4_dup-2", 4, 2, "loss", 0.95, 0.912, 0.981, 0.4, 1.25, 100, 100],
    ["epochs-4_dup-2", 4, 2, "neighborhood_snp_p0.1", 0.6, 0.52, 0.68, "", "", 100, 100],
]
POINTS = [
    {"name": "epochs-1_dup-1", "values": {"epochs": 1, "duplication": 1}, "target": "lm", "seed": 0, "passes": 1},
    {"name": "epochs-4_dup-2", "values": {"epochs": 4, "duplication": 2}, "target": "lm", "seed": 0, "passes": 8},
]


def write_summary(folder: Path, rows: list[list]) -> dict[str, str]:
    """summary.tsv and its two figures, as rule study_summary writes them (the figures drawn from the table)."""
    table = pd.DataFrame(rows, columns=HEADER)
    path = folder / "summary.tsv"
    table.to_csv(path, sep="\t", index=False)
    read = pd.read_csv(path, sep="\t", keep_default_na=False, na_values=[""])
    inputs = {"table": str(path)}
    for key in ("epochs", "duplication"):
        auc_figure(read, key, folder / f"auc_vs_{key}.png")
        inputs[key] = str(folder / f"auc_vs_{key}.png")
    return inputs


def test_study_page_has_the_grid_every_row_both_figures_and_the_curve_sentence(tmp_path):
    inputs = write_summary(tmp_path, ROWS)
    out = tmp_path / "report.html"
    build_study_report(inputs, config={"target": "lm"}, points=POINTS, out_path=out)
    page = out.read_text()
    # The grid: each point with its values, target, seed and member passes.
    assert "<tr><td>epochs-1_dup-1</td><td>1</td><td>1</td><td>lm</td><td>0</td><td>1</td></tr>" in page
    assert "<tr><td>epochs-4_dup-2</td><td>4</td><td>2</td><td>lm</td><td>0</td><td>8</td></tr>" in page
    # Every row of summary.tsv: AUC [CI] to 3 places, TPR, epsilon to 2 places, counts; the too-few marker in
    # words, an empty cell as n/a.
    for row in (
        "<td>epochs-1_dup-1</td><td>1</td><td>1</td><td>loss</td><td>0.517 [0.441, 0.593]</td><td>0.030</td>"
        "<td>0.00</td><td>100</td><td>100</td>",
        "<td>epochs-1_dup-1</td><td>1</td><td>1</td><td>neighborhood_snp_p0.1</td><td>0.490 [0.410, 0.570]</td>"
        "<td>too few non-members</td><td>0.00</td>",
        "<td>epochs-4_dup-2</td><td>4</td><td>2</td><td>loss</td><td>0.950 [0.912, 0.981]</td><td>0.400</td>"
        "<td>1.25</td>",
        "<td>epochs-4_dup-2</td><td>4</td><td>2</td><td>neighborhood_snp_p0.1</td><td>0.600 [0.520, 0.680]</td>"
        "<td>n/a</td><td>n/a</td>",
    ):
        assert row in page
    # Both figures embedded byte for byte.
    for key in ("epochs", "duplication"):
        data = base64.b64encode(Path(inputs[key]).read_bytes()).decode()
        assert f'<img alt="AUC against {key}" src="data:image/png;base64,{data}">' in page
    assert (
        "The LOSS attack's AUC [95% CI] is 0.517 [0.441, 0.593] (epochs-1_dup-1) at the smallest training exposure "
        "(1 pass over each member) and 0.950 [0.912, 0.981] (epochs-4_dup-2) at the largest (8 passes): the "
        "intervals do not overlap." in page
    )
    # The config closes the page, as the single audit's report does.
    assert "<h2>Configuration of this run</h2><pre>target: lm" in page


def test_curve_sentence_says_when_the_intervals_overlap_and_names_every_point_at_a_tied_end():
    table = pd.DataFrame(
        [
            ["seed-0_epochs-1", "loss", 0.5, 0.4, 0.6],
            ["seed-0_epochs-2", "loss", 0.55, 0.45, 0.65],
            ["seed-1_epochs-1", "loss", 0.52, 0.42, 0.62],
            ["seed-1_epochs-2", "loss", 0.58, 0.5, 0.66],
        ],
        columns=["point", "attack", "auc", "auc_low", "auc_high"],
    )
    one_seed = table[table.point.str.startswith("seed-0")]
    assert curve_sentence(one_seed, {"seed-0_epochs-1": 1, "seed-0_epochs-2": 2}).endswith(
        "(2 passes): the intervals overlap, so this grid shows no clear change."
    )
    passes = {"seed-0_epochs-1": 1, "seed-0_epochs-2": 2, "seed-1_epochs-1": 1, "seed-1_epochs-2": 2}
    assert curve_sentence(table, passes) == (
        "The LOSS attack's AUC [95% CI] is 0.500 [0.400, 0.600] (seed-0_epochs-1), 0.520 [0.420, 0.620] "
        "(seed-1_epochs-1) at the smallest training exposure (1 pass over each member) and 0.550 [0.450, 0.650] "
        "(seed-0_epochs-2), 0.580 [0.500, 0.660] (seed-1_epochs-2) at the largest (2 passes)."
    )
    # A grid over seeds only: the same exposure everywhere, so the lowest and highest AUC are named.
    assert curve_sentence(table, dict.fromkeys(passes, 4)) == (
        "Every point sees each member 4 times (the grid varies neither epochs nor duplication); the LOSS attack's "
        "AUC [95% CI] is lowest at 0.500 [0.400, 0.600] (seed-0_epochs-1) and highest at 0.580 [0.500, 0.660] "
        "(seed-1_epochs-2)."
    )


def test_member_passes_multiply_epochs_by_the_modes_duplication():
    finetune = {"membership": {"mode": "finetune", "training": {"epochs": 3, "duplication": 4}}}
    genome = {"membership": {"mode": "genome", "training": {"epochs": 3}, "genome": {"duplication": 5}}}
    assert member_passes(finetune) == 12 and member_passes(genome) == 15
