"""HTML pieces every section of the report uses: tables and embedded figures."""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Mapping
from typing import Any

import pandas as pd


def html_table(df: pd.DataFrame, digits: int = 3, labels: Mapping[str, str] | None = None) -> str:
    """``df`` as an HTML table: floats to ``digits`` places, text cells escaped and renamed through ``labels``."""
    labels = labels or {}

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.{digits}f}"
        text = html.escape(str(v))
        for raw, shown in labels.items():
            text = text.replace(raw, shown)
        return text

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = "".join("<tr>" + "".join(f"<td>{fmt(v)}</td>" for v in row) + "</tr>" for row in df.itertuples(False))
    return f"<table><tr>{head}</tr>{rows}</table>"


def html_image(path: str | os.PathLike, alt: str) -> str:
    """A PNG embedded in the page, so the report reads offline as one file."""
    with open(path, "rb") as fh:
        data = base64.b64encode(fh.read()).decode()
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></figure>'
