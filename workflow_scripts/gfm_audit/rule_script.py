"""The glue every rule script shares: logging to the rule's log, one-line errors.

Every script under ``workflow_scripts/scripts`` is ``run_rule(snakemake, <rule>_rule)``, with the
rule's function from the ``stages`` module of its half (``privacy``, ``robustness.ga``, ``robustness.fimba``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from .errors import InputError

# Snakemake's job object, the ``snakemake`` of a rule script: ``input``, ``output``, ``params``,
# ``wildcards``, ``threads``, ``log`` and ``rule``.
Job = Any


def run_rule(snakemake: Job, main: Callable[[Job], None]) -> None:
    """Run ``main(snakemake)`` with logging into ``snakemake.log[0]``.

    An :class:`InputError` becomes one line on stderr and in the log, with
    exit status 1 and no traceback; Snakemake then removes the job's outputs.
    Anything else is a bug in gfm-audit and keeps its traceback.
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
