"""Matplotlib set up for files, not screens, and one way to save a figure; shared by both halves."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plt", "save_figure"]


def save_figure(fig, path: str | os.PathLike) -> None:
    fig.tight_layout()
    # No software tag and no creation date: the PNG bytes stay identical across runs.
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
