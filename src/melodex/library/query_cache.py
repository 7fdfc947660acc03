"""Query embeddings cached on disk, beside the library, keyed by the model and the text.

Why: a cold ``melodex search`` that has seen its text before (people repeat queries, and
scripts run the same ones) then skips loading the sentence encoder altogether, which is most of
what is left of a cold query once the imports are gone. The key holds the model identity and the
encoder version (:data:`melodex.models.query_fast.ENCODER_VERSION`), so a re-indexed library or
another encoder never reuses a stale vector. SQLite because it is in the standard library and
safe for concurrent processes; a folder that cannot be written simply gets no cache.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import numpy as np

CACHE_FILE = "query-cache.sqlite"
MAX_ENTRIES = 10_000
"""Oldest entries beyond this are dropped (at 92-384 floats each, at most ~15 MB)."""


class QueryCache:
    """``get(key, text)`` -> the cached vector or None; ``put(key, text, vector)``."""

    def __init__(self, folder: Path, *, max_entries: int = MAX_ENTRIES):
        self.path = Path(folder) / CACHE_FILE
        self.max_entries = max_entries

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=1.0)
        con.execute("CREATE TABLE IF NOT EXISTS q (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")
        return con

    def get(self, key: str, text: str) -> np.ndarray | None:
        if not self.path.exists():
            return None
        try:
            with contextlib.closing(self._connect()) as con:
                row = con.execute("SELECT vec FROM q WHERE key = ?", (f"{key}\0{text}",)).fetchone()
        except sqlite3.Error:
            return None
        return None if row is None else np.frombuffer(row[0], np.float32).copy()

    def put(self, key: str, text: str, vector: np.ndarray) -> None:
        blob = np.ascontiguousarray(vector, np.float32).tobytes()
        try:
            with contextlib.closing(self._connect()) as con, con:
                con.execute("INSERT OR REPLACE INTO q VALUES (?, ?)", (f"{key}\0{text}", blob))
                con.execute(
                    "DELETE FROM q WHERE rowid <= (SELECT MAX(rowid) FROM q) - ?",
                    (self.max_entries,),
                )
        except (sqlite3.Error, OSError):
            return  # a read-only library folder: no cache, same results
