"""The one exception type that reaches the user as a one-line message, and helpers that build such messages."""

from __future__ import annotations

from collections.abc import Iterable


class InputError(Exception):
    """A problem with the user's input files or config.

    The message is a single line that names the file, record or key and says
    what to do. Rule scripts print it without a traceback and exit non-zero.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none): library errors span many."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def listed(keys: Iterable[str], shown: int = 3) -> str:
    """The first ``shown`` of ``keys`` in sorted order, and how many more: a message names a few, not thousands."""
    keys = sorted(keys)
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more
