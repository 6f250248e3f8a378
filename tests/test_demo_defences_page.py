"""benchmarks/demo_defences_page.py: the demo-defences section of docs/robustness-ga.md is the rendering of the
committed run's tables, and the rendering counts and reads them right."""

import importlib.util

import pandas as pd
from conftest import REPO

spec = importlib.util.spec_from_file_location("demo_defences_page", REPO / "benchmarks" / "demo_defences_page.py")
page = importlib.util.module_from_spec(spec)
spec.loader.exec_module(page)


def _run(defence, before, after, verdict, low_high_after=(0.0, 1.0)):
    row = {"classifier": "cnn", "defence": defence, "n_holdout": 300, "max_edits": 5, "verdict": verdict}
    for name in ("robust", "robust_k1", "asr"):
        row |= {f"{name}_before": before, f"{name}_before_low": before - 0.05, f"{name}_before_high": before + 0.05}
        low, high = low_high_after
        row |= {f"{name}_after": after, f"{name}_after_low": low, f"{name}_after_high": high}
    return row | {"clean_before": 0.885, "clean_after": 0.88}


def test_the_docs_section_is_the_rendering_of_the_committed_demo_defences_tables():
    text = (REPO / "docs" / "robustness-ga.md").read_text()
    assert page.rendered_page(text) == text, "re-run benchmarks/demo_defences_page.py"


def test_the_verdict_line_counts_trained_runs_and_names_the_gain_of_each_that_helped():
    table = pd.DataFrame(
        [
            _run("madry", 0.40, 0.62, "helped", (0.56, 0.67)),
            _run("freelb", 0.40, 0.43, "unclear"),
            _run("adfar", 0.40, 0.40, "not trained"),
        ]
    )
    assert page.verdict_line(table) == (
        "Runs whose 95% interval after lies wholly above the one before: 1 of 2 (`madry` on cnn: gain +0.22, clean "
        "accuracy -0.005)."
    )
    rows = page.defence_rows(table).splitlines()
    assert len(rows) == 2 + 3
    assert "| cnn | madry | 300 | 0.885 → 0.880 |" in rows[2]
    assert "0.40 [0.35, 0.45] → 0.62 [0.56, 0.67] (5 edits)" in rows[2]
    none = page.verdict_line(table[table.defence != "madry"])
    assert none == "Runs whose 95% interval after lies wholly above the one before: 0 of 1 (none)."
