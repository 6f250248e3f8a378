"""The HTML report: parses, holds every table and figure, gives a verdict per model."""

from html.parser import HTMLParser

import numpy as np
import pandas as pd
from gfm_audit.privacy import plots
from gfm_audit.privacy.metrics import evaluate, threshold_table
from gfm_audit.privacy.report import build_report


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.images, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_data(self, data):
        self.text.append(data)


def test_report_holds_every_table_and_figure_and_a_verdict(tmp_path):
    rng = np.random.default_rng(0)
    n = 60
    member = np.r_[np.ones(n // 2), np.zeros(n // 2)].astype(int)
    ids = [f"w{i:03d}" for i in range(n)]
    scores = pd.DataFrame({"window_id": ids, "member": member, "loss": rng.normal(member * 2, 1),
                           "neighborhood_snp": rng.normal(member * 0.05, 0.05),
                           "neighborhood_snp_snpsites": rng.normal(0, 0.05)})  # fmt: skip
    rows = []
    for w in ids:
        rows.append((w, w, "window", None, float(rng.normal(1.3, 0.05))))
        rows += [(f"{w}_snp_p{p}", w, "snp", p, float(rng.normal(1.3, 0.05))) for p in (0.1, 0.3)]
    target_scores = pd.DataFrame(rows, columns=["sequence_id", "window_id", "kind", "prob", "loss"])
    out = tmp_path / "m"
    out.mkdir()
    figures = []
    for name, fn, arg in (("roc", plots.roc_figure, scores), ("histograms", plots.histogram_figure, scores),
                          ("neighbour_loss", plots.neighbour_loss_figure, target_scores),
                          ("snp_sites", plots.snp_site_figure, scores)):  # fmt: skip
        fn(arg, out / f"{name}.png")
        figures.append((str(out / f"{name}.png"), name))
    evaluate(scores, 20, 0, 1e-5, 0.95).to_csv(out / "metrics.tsv", sep="\t", index=False)
    threshold_table(scores).to_csv(out / "thresholds.tsv", sep="\t", index=False)
    pd.DataFrame([("rmia", "needs reference models")], columns=["attack", "reason"]).to_csv(
        out / "skipped.tsv", sep="\t", index=False
    )
    windows = pd.DataFrame({"window_id": ids, "chrom": "z", "start": range(0, n * 100, 100),
                            "end": range(50, n * 100 + 50, 100), "n_snps": 3, "snp_fraction": 0.06,
                            "gc_fraction": 0.4})  # fmt: skip
    windows.to_csv(tmp_path / "w.tsv", sep="\t", index=False)
    neighbours = pd.DataFrame({"neighbor_id": ["x"], "window_id": ["w000"], "prob": [0.1], "replicate": [0],
                               "kind": ["snp"], "n_changed": [1], "changed_offsets": ["3"]})  # fmt: skip
    neighbours.to_csv(tmp_path / "n.tsv", sep="\t", index=False)
    pd.DataFrame({"window_id": ids, "target_member": member, "ref_0_member": 1 - member}).to_csv(
        tmp_path / "m.tsv", sep="\t", index=False
    )
    config = {"target": "m", "models": {"m": {"path": "x", "kind": "causal"}}, "membership": {"mode": "finetune"}}
    leaks = build_report(config, str(tmp_path / "w.tsv"), str(tmp_path / "n.tsv"), str(tmp_path / "m.tsv"), ["m"],
                         {"m": str(out / "metrics.tsv")}, {"m": str(out / "skipped.tsv")},
                         {"m": str(out / "thresholds.tsv")}, {"m": figures}, tmp_path / "report.html")  # fmt: skip
    page = (tmp_path / "report.html").read_text()
    parser = _Collector()
    parser.feed(page)
    text = "".join(parser.text)
    assert leaks == {"m": True}
    assert len(parser.images) == 4 and all(src.startswith("data:image/png;base64,") for src in parser.images)
    # Data, models, metrics, skipped attacks, threshold table.
    assert parser.tags.count("table") == 5
    assert "m leaks membership" in text and "strongest attack is loss" in text
    assert "needs reference models" in text and "ref_0" in text
    assert "http" not in page.replace("https://json-schema", "")  # nothing fetched when opened offline
