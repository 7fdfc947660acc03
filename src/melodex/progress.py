"""The one progress-callback signature every long-running function in melodex takes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ProgressFn = Callable[[int, int, str], None]
"""``progress(done, total, note)``: ``done`` of ``total`` units are finished; ``note`` says what
was just done or what stage is running (a file path, an item id, "embedding melodex-base", a
loss), or is empty. Called after each unit, so ``done == total`` means finished."""


EventFn = Callable[[str, dict[str, Any]], None]
"""``events(kind, facts)``: a machine-readable record of a long job's phases, for tools and
tests that must act at a known point (the indexer's kinds: ``planned``, ``file``,
``committing``, ``committed``, ``compacting``, ``finished``)."""
