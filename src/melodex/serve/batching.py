"""Query texts of concurrent searches embedded together, in one pass of the text encoder.

Why: a search's time on 2 cores is mostly the text encoder (bench/bench_serve.py: ~25 ms of a
~30 ms search, against ~3 ms for ranking and rows), and much of one encoder pass is fixed cost
(Python and framework overhead, weights read for a few tokens): 4 short texts in one batch
cost ~15 ms each instead of ~27 ms alone. So a search first hands its text to a
:class:`QueryBatcher`: whoever arrives while no batch runs embeds every text then waiting, in
one call, and the others wait for it. The vectors land in the encoder's own query cache, and
the search itself then finds its text there; the ranking code is unchanged.

A batch pads its texts to the longest, which moves the vectors by float rounding only (~1e-7;
tests/test_serve_batching.py checks the rankings equal a search's alone). A failed batch is
ignored: each search then embeds its own text and reports its own error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from melodex.encoders.text import TextEncoder

MAX_BATCH = 8
"""Texts per pass at most (the encoder's direct path takes up to 8, FAST_PATH_MAX)."""


class QueryBatcher:
    """``prime(text)`` returns once ``text`` was embedded, alone or with concurrent ones."""

    def __init__(self, encode: Callable[[list[str]], object], *, max_batch: int = MAX_BATCH):
        self._encode = encode
        self.max_batch = max(1, max_batch)
        self._cond = threading.Condition()
        self._pending: list[str] = []
        self._done: set[int] = set()  # tickets embedded (or failed), not yet collected
        self._next = 0
        self._busy = False
        self.batches: list[int] = []  # sizes of the last batches (for benchmarks and tests)

    def prime(self, text: str) -> None:
        with self._cond:
            ticket = self._next + len(self._pending)
            self._pending.append(text)
            while ticket not in self._done:
                if self._busy:
                    self._cond.wait()
                    continue
                self._busy = True  # this thread embeds the waiting texts, then wakes them
                first = self._next
                batch = self._pending[: self.max_batch]
                del self._pending[: len(batch)]
                self._next += len(batch)
                self._cond.release()
                try:
                    self._run(batch)
                finally:
                    self._cond.acquire()
                    self._busy = False
                    self._done.update(range(first, first + len(batch)))
                    self._cond.notify_all()
            self._done.discard(ticket)

    def _run(self, batch: Sequence[str]) -> None:
        try:
            self._encode(list(dict.fromkeys(batch)))
        except Exception:  # noqa: BLE001 (each search embeds its own text and reports errors)
            return
        self.batches = [*self.batches[-99:], len(batch)]


def batcher_for(model: object) -> QueryBatcher | None:
    """A batcher filling ``model``'s text-encoder query cache, or None when the model has no
    such cache (priming would then embed every text twice)."""
    encoder = getattr(model, "text_encoder", None)
    if not isinstance(encoder, TextEncoder) or encoder.cache_size < 4 * MAX_BATCH:
        return None
    return QueryBatcher(encoder.encode)
