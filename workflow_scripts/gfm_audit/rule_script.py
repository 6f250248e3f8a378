"""The glue every rule script shares: logging to the rule's log, one-line errors.

Every script under ``workflow_scripts/scripts`` is ``run_rule(snakemake, <rule>_rule)``, with the
rule's function from the ``stages`` module of its part (``privacy``, ``robustness.ga``, ``robustness.fimba``,
``report``).
"""

from __future__ import annotations

import errno
import logging
import sys
from collections.abc import Callable
from typing import Any

from .errors import InputError
from .outputs import final_name

# Snakemake's job object, the ``snakemake`` of a rule script: ``input``, ``output``, ``params``,
# ``wildcards``, ``threads``, ``log`` and ``rule``.
Job = Any


def run_rule(snakemake: Job, main: Callable[[Job], None]) -> None:
    """Run ``main(snakemake)`` with logging into ``snakemake.log[0]``.

    An :class:`InputError` becomes one line on stderr and in the log, with
    exit status 1 and no traceback; Snakemake then removes the job's outputs.
    So does a full disk or an exceeded disk quota (what a cluster's scratch
    space usually runs into), whichever library was writing. Anything else is
    a bug in gfm-audit and keeps its traceback.
    """
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.WARNING)  # progress goes to the log file; the console gets problems only
    console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    handlers: list[logging.Handler] = [console]
    if snakemake.log:
        handlers.append(logging.FileHandler(snakemake.log[0], mode="w"))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers, force=True
    )
    try:
        main(snakemake)
    except InputError as exc:
        logging.getLogger("gfm_audit").error("gfm-audit error in rule %s: %s", snakemake.rule, exc)
        sys.exit(1)
    except Exception as exc:
        full = disk_full_error(exc)
        if full is None:
            raise
        # The log may be on the full disk too: its handler failing must not add a traceback to the one line.
        logging.raiseExceptions = False
        logging.getLogger("gfm_audit").error(
            "gfm-audit error in rule %s: %s", snakemake.rule, disk_full_message(full, snakemake)
        )
        sys.exit(1)


def disk_full_error(exc: BaseException) -> BaseException | None:
    """The error in ``exc``'s chain (causes and contexts) that says a disk is full or a quota is exceeded; None if
    none does.

    An ``OSError`` says it by its errno; safetensors' errors (saving a model) only in their text.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _DISK_FULL_ERRNOS:
            return exc
        if any(text in str(exc) for text in _DISK_FULL_TEXTS):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


_DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_DISK_FULL_TEXTS = (
    "No space left on device",
    "Disk quota exceeded",
    f"(os error {errno.ENOSPC})",
    f"(os error {errno.EDQUOT})",
)


def disk_full_message(exc: BaseException, job: Job) -> str:
    """One line: the disk is full (or the quota exceeded), where the job was writing (the file named by the error,
    else its outputs)."""
    name = getattr(exc, "filename", None)
    paths = [final_name(name)] if name else [str(p) for p in getattr(job, "output", None) or []]
    where = f"writing {', '.join(paths)}" if paths else "writing its outputs"
    quota = getattr(exc, "errno", None) == errno.EDQUOT or "quota" in str(exc).lower()
    if quota:
        return (
            f"the disk quota is exceeded (disk quota exceeded) {where}; no partial output is kept: free space within "
            "your quota on that filesystem (check it with `quota -s` or your site's tool, or move the workflow's "
            "results to a filesystem with room) and rerun"
        )
    return (
        f"the disk is full (no space left on device) {where}; no partial output is kept: free space on that "
        "filesystem (or move the workflow's results to a larger one) and rerun"
    )
