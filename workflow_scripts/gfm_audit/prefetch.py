"""Preparing the next batches in a background thread while the current one runs.

Scoring alternates host work (padding a batch, pinning it for the copy to a
GPU) with the model's forward. Run in a thread, the host work of batch i+1
overlaps the forward of batch i: PyTorch and NumPy release the GIL in their
kernels, so the two proceed together. The items and their order are exactly
those of the plain iteration; only when they are made changes.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
U = TypeVar("U")

_DONE = object()


def prefetch(items: Iterable[T], depth: int = 2, transform: Callable[[T], U] | None = None) -> Iterator[T | U]:
    """Yield ``transform(item)`` for each item of ``items``, made up to ``depth`` items ahead in a thread.

    An exception in the thread is raised here, at the item where it happened; leaving the loop early (break,
    an exception in the caller) stops the thread before this generator closes. ``depth`` 0 is the plain loop.
    """
    if depth <= 0:
        for item in items:
            yield transform(item) if transform is not None else item
        return
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(value) -> bool:
        while not stop.is_set():
            try:
                ready.put(value, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put((True, transform(item) if transform is not None else item)):
                    return
            put((True, _DONE))
        except BaseException as exc:  # handed to the consumer, raised there
            put((False, exc))

    thread = threading.Thread(target=work, name="gfm-audit-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            ok, value = ready.get()
            if not ok:
                raise value
            if value is _DONE:
                return
            yield value
    finally:
        stop.set()
        thread.join()
