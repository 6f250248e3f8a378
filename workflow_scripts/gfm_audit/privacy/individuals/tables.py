"""Reading the TSV tables this mode writes."""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from ...errors import InputError


def read_table(path: str | os.PathLike, **kwargs: Any) -> pd.DataFrame:
    """A TSV this mode wrote; a file without even a header stops with one line naming it, not a pandas error."""
    try:
        return pd.read_csv(path, sep="\t", **kwargs)
    except pd.errors.EmptyDataError:
        raise InputError(
            f"{path} is empty (not even a header line), so it holds no table; delete it and run the workflow "
            "again to rebuild it"
        ) from None
