"""Admission to the server's work: a few requests run, a short queue waits, the rest get 503.

Why: the gate used to refuse every request beyond those running at once (503 at once), so a
client that does not retry failed most of the time at 48 concurrent requests, although each
search takes milliseconds. Now a request past the running limit waits in a bounded queue for
up to ``wait_seconds``; only a full queue (or a wait that runs out) answers 503 with
``Retry-After``. The routes are plain functions, which FastAPI runs in its thread pool, so a
waiting request holds a worker thread, never the event loop.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from melodex.serve.errors import ApiError

RETRY_AFTER_SECONDS = 1


class Gate:
    """``with gate():`` runs when one of ``limit`` slots is free, after waiting in a queue of
    at most ``queue`` requests for at most ``wait_seconds``; else raises 503 busy."""

    def __init__(self, limit: int, what: str, *, queue: int = 0, wait_seconds: float = 10.0):
        self._sem = threading.BoundedSemaphore(limit) if limit > 0 else None
        self._lock = threading.Lock()
        self.limit, self.what = limit, what
        self.queue, self.wait_seconds = max(0, queue), wait_seconds
        self.waiting = 0

    def _busy(self, why: str) -> ApiError:
        return ApiError(
            503,
            "busy",
            f"the server is busy ({self.limit} {self.what} requests running, {why}); retry shortly",
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        if self._sem is None:
            raise self._busy("none allowed")
        if not self._sem.acquire(blocking=False):
            with self._lock:
                if self.waiting >= self.queue:
                    raise self._busy(f"{self.waiting} waiting")
                self.waiting += 1
            try:
                acquired = self._sem.acquire(timeout=self.wait_seconds)
            finally:
                with self._lock:
                    self.waiting -= 1
            if not acquired:
                raise self._busy(f"waited {self.wait_seconds:g} s")
        try:
            yield
        finally:
            self._sem.release()
