"""Preparing the next batches in a background thread while the current one runs.

Scoring alternates host work (padding a batch, pinning it for the copy to a
GPU) with the model's forward. Run in a thread, the host work of batch i+1
overlaps the forward of batch i: PyTorch and NumPy release the GIL in their
kernels, so the two proceed together. The items and their order are exactly
those of the plain iteration; only when they are made changes. :class:`InOrder`
does the same for the work after each item (reducing and writing a chunk).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
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


class InOrder:
    """Calls run one at a time, in the order submitted, in one background thread (``enabled``) or at once.

    ``submit`` first waits for the running call to finish: at most one call runs while the caller goes on. An
    exception in a call is raised in the caller, at the next ``submit`` or at the end of the ``with`` block, which
    waits for every call.
    """

    def __init__(self, enabled: bool = True) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="gfm-audit-in-order") if enabled else None
        self._running: Future | None = None

    def submit(self, fn: Callable[..., object], *args) -> None:
        if self._pool is None:
            fn(*args)
            return
        self._wait()
        self._running = self._pool.submit(fn, *args)

    def _wait(self) -> None:
        running, self._running = self._running, None
        if running is not None:
            running.result()

    def __enter__(self) -> InOrder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._pool is None:
            return
        try:
            if exc_type is None:
                self._wait()
        finally:
            # On an error in the caller the running call still finishes (it may hold an open file) but nothing new
            # starts.
            self._pool.shutdown(wait=True, cancel_futures=True)
