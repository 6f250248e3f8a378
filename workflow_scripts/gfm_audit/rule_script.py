"""The glue every rule script shares: logging to the rule's log, one-line errors."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from .errors import InputError


def run_rule(snakemake: Any, main: Callable[[Any], None]) -> None:
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
