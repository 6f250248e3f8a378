"""Snakemake's own report (`snakemake --report report.zip`) of a finished run, and the workflow catalog's file.

The report is built from the shared privacy run (conftest.model_run: attacks, figures, memorisation and the HTML
report), so it costs one `--report` call on top of the runs the other workflow tests make.
"""

import html
import json
import re
import zipfile

import pytest
import yaml
from conftest import REPO
from test_workflow import snakemake

pytestmark = pytest.mark.workflow

# Every output of the shared run that a rule marks with report(): its caption (report/<kind>.rst), category and
# subcategory (None: Snakemake files it under "Other").
MARKED = {
    "results/attacks/tiny/metrics.tsv": ("metrics", "Attacks", "tiny"),
    "results/report/tiny/roc.png": ("roc", "Figures", "tiny"),
    "results/report/tiny/histograms.png": ("histograms", "Figures", "tiny"),
    "results/report/tiny/neighbor_loss.png": ("neighbor_loss", "Figures", "tiny"),
    "results/report/tiny/snp_sites.png": ("snp_sites", "Figures", "tiny"),
    "results/memorisation/tiny/exposure.tsv": ("exposure", "Memorisation", "tiny"),
    "results/memorisation/tiny/extraction.tsv": ("extraction", "Memorisation", "tiny"),
    "results/report/tiny/exposure_vs_repeats.png": ("exposure_vs_repeats", "Memorisation", "tiny"),
    "results/report/tiny/extraction_vs_prefix.png": ("extraction_vs_prefix", "Memorisation", "tiny"),
    "results/report/report.html": ("report", "Report", None),
}


def page_data(page: str, script_id: str, name: str):
    """The JSON value the report's index page declares as ``<script id="script_id"> var name = ...;``."""
    (text,) = re.findall(rf'<script id="{script_id}">\s*var {name} = (.*?);\n\s*</script>', page, re.S)
    return json.loads(text)


def plain(rendered: str) -> str:
    """Rendered reStructuredText as plain text: no tags, no entities, one space between words."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", rendered)).split())


def test_report_zip_holds_the_index_and_every_marked_output_of_a_finished_run(model_run, tmp_path):
    workdir, config = model_run
    bundle = tmp_path / "report.zip"
    result = snakemake(workdir, "--report", str(bundle), config=config)
    assert result.returncode == 0, result.stderr[-3000:]
    with zipfile.ZipFile(bundle) as archive:
        # The index, in a folder named after the zip, and each marked output as data/raw/<id>/<its name> beside it.
        page = archive.read("report/report.html").decode()
        results = page_data(page, "results", "results")
        assert sorted(results) == sorted(MARKED)
        data = {f"report/{entry['data_uri']}" for entry in results.values()}
        assert set(archive.namelist()) == {"report/report.html", *data}
        for path, entry in results.items():
            # report() only adds metadata: the bundled file is the one the rule wrote, at the path it always had.
            assert entry["data_uri"].endswith("/" + path.rsplit("/", 1)[1]), path
            assert archive.read(f"report/{entry['data_uri']}") == (workdir / path).read_bytes(), path
    assert plain(page_data(page, "workflow-desc", "workflow_desc")).startswith(
        "gfm-audit audits genomic foundation models (DNA language models) on two fronts."
    )
    # Each caption from its report/<kind>.rst, the wildcards filled in, the reStructuredText without errors.
    for path, (kind, _, _) in MARKED.items():
        caption = results[path]["caption"]
        assert "system-message" not in caption and "{{" not in caption, path
        first = (REPO / "report" / f"{kind}.rst").read_text().splitlines()[0]
        first = first.replace("{{ snakemake.wildcards.model }}", "tiny").replace("``", "")
        assert plain(caption).startswith(" ".join(first.split())), path
    # The categories and subcategories the rules give.
    expected = {}
    for path, (_, category, subcategory) in MARKED.items():
        expected.setdefault(category, {}).setdefault(subcategory or "Other", set()).add(path)
    categories = page_data(page, "categories", "categories")
    assert {c: {s: set(paths) for s, paths in subs.items()} for c, subs in categories.items()} == expected


def test_workflow_catalog_file_matches_the_repository():
    """.snakemake-workflow-catalog.yml: conda deployment (every rule's env exists), no container, report support."""
    usage = yaml.safe_load((REPO / ".snakemake-workflow-catalog.yml").read_text())["usage"]
    assert set(usage) == {"mandatory-flags", "software-stack-deployment", "report"}
    assert usage["software-stack-deployment"] == {"conda": True, "apptainer": False, "apptainer+conda": False}
    rules = [path.read_text() for path in sorted(REPO.glob("rules/*.smk"))]
    n_rules = sum(len(re.findall(r"^rule \w+:", text, re.M)) for text in rules)
    envs = [env for text in rules for env in re.findall(r'^    conda:\n        "\.\./(envs/[^"]+)"', text, re.M)]
    assert len(envs) == n_rules  # `rule all` is in the Snakefile
    assert all((REPO / env).is_file() for env in envs)
    assert not any("container:" in text for text in rules)
    assert usage["report"] is True and 'report: "report/workflow.rst"' in (REPO / "Snakefile").read_text()
    assert usage["mandatory-flags"]["flags"] == "--configfile my.yaml" and usage["mandatory-flags"]["desc"]


def test_every_caption_a_rule_names_exists_and_no_category_breaks_the_captions():
    """report_figure/report_table("<kind>", ...) take report/<kind>.rst; report(..., caption=) names its own."""
    rules = "".join(path.read_text() for path in REPO.glob("rules/*.smk"))
    kinds = re.findall(r'report_(?:figure|table)\("(\w+)"', rules)
    assert {"exposure", "summary", "curve", "person_metrics", "roc"} <= set(kinds)
    for kind in kinds:
        assert (REPO / "report" / f"{kind}.rst").is_file(), kind
    for caption in re.findall(r'caption="\.\./(report/[^"]+)"', rules):
        assert (REPO / caption).is_file(), caption
    # Snakemake adds an rst link target per category to every caption (`.. _<category>: javascript:...`): a colon
    # ends the target's name, so "Robustness: GA" and "Robustness: FIMBA" were both "Robustness", a duplicate that
    # put a warning box under every caption of a run with both stages.
    categories = set(re.findall(r'category="([^"]+)"', rules))
    assert {"Attacks", "Figures", "Robustness (GA)", "Robustness (FIMBA)"} <= categories
    assert not any(":" in category for category in categories)


def test_every_caption_renders_without_restructuredtext_errors():
    """Each report/*.rst as Snakemake renders it (Jinja with the job's wildcards, then docutils): a stray ``|R|``
    is a substitution reference, shown in the report as an error box."""
    import jinja2
    from docutils.core import publish_parts

    wildcards = {"model": "tiny", "classifier": "cnn", "fmodel": "logreg"}
    for rst in sorted((REPO / "report").glob("*.rst")):
        text = jinja2.Template(rst.read_text()).render(snakemake={"wildcards": wildcards})
        body = publish_parts(text, writer="html", settings_overrides={"warning_stream": False})["body"]
        assert "system-message" not in body and "problematic" not in body, rst.name
