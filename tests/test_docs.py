"""The documentation a newcomer reads: every link resolves, the README stays short, no work-log numbers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import REPO

PAGES = sorted(
    [REPO / "README.md", REPO / "BENCHMARKS.md", REPO / "CHANGELOG.md", REPO / "config" / "README.md"]
    + list((REPO / "docs").rglob("*.md"))
)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"```.*?```", re.S)
# Work periods and issue numbers belong to the tracker, not to the product's text.
WORK_LOG = re.compile(r"\bissue #?\d+|\bsession \d+|\bwork period", re.I)
# Where the project's own text lives: docs, code, tests, rules, CI and benchmark scripts.
SOURCES = ("workflow_scripts", "rules", "tests", "benchmarks", ".ci", "docs", "config", "envs", "profiles")
SUFFIXES = {".py", ".smk", ".md", ".sh", ".yaml", ".yml", ".rst"}


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


def links(page: Path) -> list[str]:
    return [m.group(1) for m in LINK.finditer(FENCE.sub("", page.read_text()))]


def test_slug_follows_githubs_rule_on_a_hand_made_heading():
    assert slug("Robustness I: the `GA` attack, (v2)") == "robustness-i-the-ga-attack-v2"
    assert slug("P6c `select_windows` alone") == "p6c-select_windows-alone"  # GitHub keeps underscores


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_and_anchor_resolves(page):
    broken = []
    for target in links(page):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto: are not checked offline
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading with anchor #{anchor}")
    assert broken == [], f"{page.relative_to(REPO)}: {broken}"


def test_the_docs_tree_is_reachable_from_the_readme():
    """Every page under docs/ is linked from the README or from a page the README links to."""
    seen, todo = set(), [REPO / "README.md"]
    while todo:
        page = todo.pop()
        if page in seen or not page.exists() or page.suffix != ".md":
            continue
        seen.add(page)
        todo += [(page.parent / t.partition("#")[0]).resolve() for t in links(page) if not re.match(r"[a-z]+:", t)]
    unreachable = [str(p.relative_to(REPO)) for p in (REPO / "docs").rglob("*.md") if p.resolve() not in seen]
    assert unreachable == []


def test_readme_is_short_enough_to_read_in_a_couple_of_minutes():
    assert len((REPO / "README.md").read_text().splitlines()) <= 150


def test_no_work_periods_or_issue_numbers_in_the_products_text():
    found = []
    files = [REPO / "README.md", REPO / "BENCHMARKS.md", REPO / "CHANGELOG.md", REPO / "Snakefile", REPO / "Makefile"]
    for folder in SOURCES:
        files += [p for p in (REPO / folder).rglob("*") if p.suffix in SUFFIXES and p.is_file()]
    for path in files:
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if WORK_LOG.search(line) and path != Path(__file__):
                found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:80]}")
    assert found == []


def test_every_native_family_has_a_row_in_the_family_table_the_readme_links():
    from gfm_audit.gfm import registry

    page = REPO / "docs" / "models.md"
    text = page.read_text()
    heading = "Families and how each is read"
    section = text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    for family in registry.FAMILIES:
        assert [r for r in rows if f"`gfm_audit.gfm.{family}`" in r], f"no row reads with gfm_audit.gfm.{family}"
    assert f"docs/models.md#{slug(heading)}" in links(REPO / "README.md")
