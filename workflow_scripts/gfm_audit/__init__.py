"""gfm-audit: privacy and robustness audits of genomic foundation models.

The science lives here, importable and testable without Snakemake; the rule
scripts under ``workflow_scripts/scripts`` only hand their ``snakemake`` job to
the rule's function in ``privacy/stages.py``, ``robustness/{ga,fimba}/stages.py`` or ``report/stages.py``.
"""

__version__ = "0.1.0"

import os as _os

# Bitwise-reproducible CPU float sums: MKL may otherwise use fewer threads
# than asked when the machine is busy (MKL_DYNAMIC), which changes the order
# of its sums, and may vary them with memory alignment (MKL_CBWR). Seen as
# last-bit differences between a local run and the same jobs under SLURM.
# Must be set before torch loads MKL, hence here: rule scripts import
# gfm_audit before torch (the stage functions import torch when they run).
_os.environ.setdefault("MKL_DYNAMIC", "FALSE")
_os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

# Freed memory stays in the process for the next batch instead of being faulted in again page by page
# (about a quarter of a CPU scoring job's time before; see malloc.py).
from .malloc import keep_freed_memory as _keep_freed_memory  # noqa: E402

_keep_freed_memory()
