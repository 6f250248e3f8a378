"""Headline figures: read from a run's tables, checked against a committed copy, and the README's demo block."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO
from gfm_audit import headline
from gfm_audit.privacy.memorisation.exposure import COLUMNS as EXPOSURE_COLUMNS
from gfm_audit.privacy.metrics import METRIC_COLUMNS

COMMITTED = REPO / "docs" / "demo-results.tsv"


def _results(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    (results / "attacks" / "m").mkdir(parents=True)
    metrics = pd.DataFrame(
        [
            ["loss", 0.9, 0.85, 0.95, 0.1, 0.3, 0.1, 0.3, 0.8, 1.2, 200, 200, ""],
            ["rmia", 0.7, 0.6, 0.8, 0.0, 0.05, 0.0, 0.05, 0.6, np.nan, 200, 200, 50],
        ],
        columns=list(METRIC_COLUMNS),
    )
    metrics.to_csv(results / "attacks" / "m" / "metrics.tsv", sep="\t", index=False)
    (results / "memorisation" / "m").mkdir(parents=True)
    exposure = pd.DataFrame(
        [
            ["c0", "inserted", 4, 64, 128, 1.0, "extrapolated", 1000, 10.0, 10.0],
            ["c1", "inserted", 4, 64, 128, 1.0, "extrapolated", 1000, 20.0, 20.0],
            ["c2", "reference", 0, 64, 128, 1.0, "extrapolated", 1000, 1.0, 1.0],
        ],
        columns=list(EXPOSURE_COLUMNS),
    )
    exposure.to_csv(results / "memorisation" / "m" / "exposure.tsv", sep="\t", index=False)
    return results


def test_figures_are_read_from_the_run_tables_by_hand(tmp_path):
    table = headline.headline(_results(tmp_path)).set_index("metric")
    assert table.loc["privacy.m.loss.auc"].tolist()[:3] == [0.9, 0.85, 0.95]
    assert table.loc["privacy.m.loss.tpr_at_fpr_0.01", "value"] == 0.3
    assert table.loc["privacy.m.loss.eps_lower_bound", "value"] == 1.2
    assert "privacy.m.rmia.eps_lower_bound" not in table.index  # no bound: not a figure
    assert table.loc["memorisation.m.exposure.inserted_4x", "value"] == 15.0  # mean of 10 and 20 bits
    assert table.loc["memorisation.m.exposure.never_inserted", "value"] == 1.0
    assert table.loc["privacy.m.loss.auc", "tolerance"] == headline.TOLERANCE["auc"]
    assert table.loc["privacy.m.loss.tpr_at_fpr_0.01", "tolerance"] == headline.TOLERANCE["tpr"]


def test_check_fails_on_a_figure_moved_past_its_tolerance_or_missing_and_passes_within(tmp_path):
    results = _results(tmp_path)
    headline.main([str(results), "--write", str(tmp_path / "committed.tsv")])
    assert headline.main([str(results), "--check", str(tmp_path / "committed.tsv")]) == 0
    committed = headline.read_table(tmp_path / "committed.tsv")
    current = headline.headline(results)
    nudged = current.assign(value=np.where(current.metric == "privacy.m.loss.auc", 0.9 + 0.029, current.value))
    assert headline.compare(nudged, committed) == []
    moved = current.assign(value=np.where(current.metric == "privacy.m.loss.auc", 0.9 + 0.031, current.value))
    assert headline.compare(moved, committed) == [
        "privacy.m.loss.auc: 0.931 against the committed 0.9 (tolerance 0.03)"
    ]
    lost = current[current.metric != "memorisation.m.exposure.never_inserted"]
    assert headline.compare(lost, committed) == [
        "memorisation.m.exposure.never_inserted: missing from this run (committed 1)"
    ]


def test_check_leaves_out_sections_the_run_did_not_have(tmp_path):
    results = _results(tmp_path)
    headline.main([str(results), "--write", str(tmp_path / "committed.tsv")])
    committed = headline.read_table(tmp_path / "committed.tsv")
    extra = pd.DataFrame([["robustness.ga.cnn.ga.asr", 0.35, np.nan, np.nan, 0.03]], columns=list(headline.COLUMNS))
    pd.concat([committed, extra]).to_csv(tmp_path / "with_ga.tsv", sep="\t", index=False)
    assert headline.main([str(results), "--check", str(tmp_path / "with_ga.tsv")]) == 0


def test_readme_block_is_rewritten_between_its_markers_only(tmp_path):
    results = _results(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- demo-results:start -->\nold\n<!-- demo-results:end -->\noutro\n")
    headline.main([str(results), "--write", str(tmp_path / "t.tsv"), "--readme", str(readme)])
    text = readme.read_text()
    assert text.startswith("intro\n<!-- demo-results:start -->\n| figure | value |")
    assert "| `privacy.m.loss.auc` | 0.900 [0.850, 0.950] |" in text and text.endswith(
        "<!-- demo-results:end -->\noutro\n"
    )
    assert "old" not in text


def test_summary_marker_gets_one_row_per_attack_and_one_line_per_memorisation_kind(tmp_path):
    results = _results(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text("<!-- demo-results:start summary -->\n<!-- demo-results:end -->\n")
    headline.main([str(results), "--write", str(tmp_path / "t.tsv"), "--readme", str(readme)])
    block = headline.readme_block(readme.read_text()).splitlines()
    assert block[:4] == [
        "| attack on `m` | AUC [95% CI] | TPR at 1% FPR | empirical ε ≥ |",
        "|---|---|---|---|",
        "| `loss` | 0.900 [0.850, 0.950] | 0.30 | 1.20 |",
        "| `rmia` | 0.700 [0.600, 0.800] | 0.05 |  |",  # RMIA's table has no epsilon bound
    ]
    assert block[5] == "- canary exposure of `m`, mean bits: inserted_4x 15.0, never_inserted 1.0"


@pytest.mark.parametrize("page", ["README.md", "docs/demo.md"])
def test_demo_figures_in_the_docs_are_the_rendering_of_the_committed_run_file(page):
    """No demo figure is typed: each generated block is docs/demo-results.tsv rendered as its marker asks."""
    text = (REPO / page).read_text()
    assert headline.readme_block(text) == headline.rendered_block(text, headline.read_table(COMMITTED))
