"""A full-text and metadata index of the library's tracks: SQLite FTS5 beside the store.

Why SQLite FTS5: it ships with Python, tokenises with its own ``unicode61`` tokenizer
(diacritics folded, so "Perotin" finds "Pérotin"), ranks by BM25, and answers the metadata
filters in the same query. The index is a copy of the store, which stays the truth: it is
brought up to date whenever the store's version moves (rows whose size/mtime changed are
re-read, vanished ids dropped), lives in ``<library>/text-index.sqlite`` (in memory for a
networked store), and is rebuilt from the store when missing or damaged.

The year is read from the file's tags (``date``) when a row is copied, since the store has no
year column; the folder and file name come from the path.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib.util
import os
import re
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from melodex.library.filters import TrackFilter

TEXT_INDEX_FILE = "text-index.sqlite"
SCHEMA_VERSION = 2
FIELDS = ("title", "artist", "album", "genre", "filename", "folder")
#: BM25 weight of each field: a name in the title or artist counts more than one in a folder.
FIELD_WEIGHTS = (3.0, 3.0, 2.0, 1.0, 1.0, 0.5)
_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")


MAX_DOC_SHARE = 0.5
"""A query word found in more than half of the tracks ("music" in every folder, "by",
"songs") is left out of the text ranking: it says nothing about which tracks are meant."""


@functools.cache
def stop_words() -> frozenset[str]:
    """scikit-learn's English stop words ("in", "by", "with", "for"...): in a title they match
    a query by accident. Read from its file, since importing sklearn takes seconds."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    file = (
        Path(next(iter(spec.submodule_search_locations)))
        / "feature_extraction"
        / ("_stop_words.py")
    )
    try:
        tree = ast.parse(file.read_text("utf-8"))
        for node in ast.walk(tree):  # ENGLISH_STOP_WORDS = frozenset([...]): read, not run
            if isinstance(node, ast.Call) and node.args:
                return frozenset(w.lower() for w in ast.literal_eval(node.args[0]))
    except (OSError, SyntaxError, ValueError):
        pass
    return frozenset()


def fts_phrase(piece: str) -> str:
    """One whitespace-separated piece of a query as an FTS5 string: FTS5's own tokenizer splits
    and folds it, and no character of it is taken as query syntax."""
    return '"' + piece.replace('"', '""') + '"'


def year_of(date: str | None) -> int | None:
    """The year of a date tag ("1995", "1995-03-01", "03/1995"), or None."""
    match = _YEAR.search(date or "")
    return int(match.group(1)) if match else None


class TextIndex:
    """Full-text search and metadata filters over the tracks of one store."""

    def __init__(self, folder: Path | None) -> None:
        self._file = None if folder is None else Path(folder) / TEXT_INDEX_FILE
        self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        if self._file is not None:
            try:
                return self._open_file(self._file)
            except (sqlite3.Error, OSError):
                self._file = None  # a read-only library folder: keep the copy in memory
        db = sqlite3.connect(":memory:", check_same_thread=False)
        _create(db)
        return db

    @staticmethod
    def _open_file(file: Path) -> sqlite3.Connection:
        db = sqlite3.connect(file, timeout=30, check_same_thread=False)
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is not None and row[0] == SCHEMA_VERSION:
                return db
        except sqlite3.DatabaseError:
            if not db.execute("SELECT name FROM sqlite_master").fetchall():
                _create(db)  # a new, empty file
                return db
        db.close()
        file.unlink(missing_ok=True)  # damaged or of another schema: rebuilt from the store
        db = sqlite3.connect(file, timeout=30, check_same_thread=False)
        _create(db)
        return db

    def store_version(self) -> int | None:
        """The store version this index was last synced at (None: never synced)."""
        seen = self._db.execute("SELECT value FROM meta WHERE key = 'store_version'").fetchone()
        return None if seen is None else int(seen[0])

    # -- keeping in step with the store ---------------------------------------------------------
    def sync(self, store: Any) -> None:
        """Copy what changed in ``store`` since the last sync (nothing when its version is the
        one seen last)."""
        version = int(store.version)
        seen = self._db.execute("SELECT value FROM meta WHERE key = 'store_version'").fetchone()
        if seen is not None and seen[0] == version:
            return
        # every row (a CUE album has several rows for one file, so not file_states by path)
        have = dict(self._db.execute("SELECT id, stamp FROM tracks"))
        want = {
            int(r["id"]): _stamp(r)
            for r in store.rows(columns=["id", "size", "mtime_ns", "content_hash"])
        }
        gone = [i for i in have if i not in want]
        changed = [i for i, stamp in want.items() if have.get(i) != stamp]
        cols = ["id", "path", "title", "artist", "album", "genre", "duration", "size", "mtime_ns",
                "content_hash"]  # fmt: skip
        rows: list[dict[str, Any]] = []
        for start in range(0, len(changed), 1000):
            rows += store.rows(changed[start : start + 1000], columns=cols)
        with self._db:
            self._delete(gone + [r["id"] for r in rows])
            self._insert(rows)
            self._db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('store_version', ?)", (version,)
            )

    def _delete(self, ids: Sequence[int]) -> None:
        for start in range(0, len(ids), 500):
            chunk = [int(i) for i in ids[start : start + 500]]
            marks = ",".join("?" * len(chunk))
            self._db.execute(f"DELETE FROM fts WHERE rowid IN ({marks})", chunk)
            self._db.execute(f"DELETE FROM tracks WHERE id IN ({marks})", chunk)

    def _insert(self, rows: Iterable[dict[str, Any]]) -> None:
        for r in rows:
            real = str(r["path"])
            path = storable(real)
            folder, filename = os.path.split(path)
            values = {
                "id": int(r["id"]),
                "path": path,
                **{c: storable(r.get(c)) for c in ("title", "artist", "album", "genre")},
                "filename": os.path.splitext(filename)[0].replace("_", " "),
                "folder": folder,
                "year": _file_year(real),
                "duration": float(r.get("duration") or 0.0),
                "size": int(r.get("size") or 0),
                "mtime_ns": int(r.get("mtime_ns") or 0),
                "stamp": _stamp(r),
            }
            names = ", ".join(values)
            marks = ", ".join(f":{n}" for n in values)
            self._db.execute(f"INSERT INTO tracks ({names}) VALUES ({marks})", values)
            text = {f: values[f] for f in FIELDS}
            text["folder"] = folder.replace(os.sep, " ").replace("_", " ")
            self._db.execute(
                "INSERT INTO fts (rowid, title, artist, album, genre, filename, folder) "
                "VALUES (:id, :title, :artist, :album, :genre, :filename, :folder)",
                {"id": values["id"], **text},
            )

    # -- queries ---------------------------------------------------------------------------------
    def match(
        self, text: str, *, limit: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """Tracks whose metadata match words of ``text``: (id, BM25 score, higher is better),
        best first, at most ``limit``; ``allowed`` restricts them to those ids."""
        query = self._selective_query(text)
        if query is None:
            return []
        weights = ", ".join(str(w) for w in FIELD_WEIGHTS)
        sql = f"SELECT rowid, -bm25(fts, {weights}) AS s FROM fts WHERE fts MATCH ? ORDER BY s DESC"
        try:
            found = self._db.execute(sql, (query,)).fetchall()
        except sqlite3.OperationalError:
            return []  # a query FTS5 cannot parse finds nothing rather than failing the search
        if allowed is not None:
            keep = set(np.asarray(allowed).tolist())
            found = [f for f in found if f[0] in keep]
        return [(int(i), float(s)) for i, s in found[:limit]]

    def _selective_query(self, text: str) -> str | None:
        """The FTS5 query of the pieces of ``text`` found in at most ``MAX_DOC_SHARE`` of the
        tracks (and at least one), stop words left out."""
        total = self._db.execute("SELECT count(*) FROM tracks").fetchone()[0]
        kept = []
        stop = stop_words()
        for piece in dict.fromkeys(text.split()):
            if piece.lower().strip(".,;:!?\"'") in stop:
                continue
            try:
                (found,) = self._db.execute(
                    "SELECT count(*) FROM fts WHERE fts MATCH ?", (fts_phrase(piece),)
                ).fetchone()
            except sqlite3.OperationalError:
                continue  # a piece FTS5 cannot take (only punctuation) finds nothing
            if 0 < found <= MAX_DOC_SHARE * total:
                kept.append(fts_phrase(piece))
        return " OR ".join(kept) if kept else None

    def filtered_ids(self, flt: TrackFilter) -> np.ndarray:
        """Ids of tracks passing every field of ``flt``."""
        where, params = [], []
        for column in ("artist", "album", "genre"):
            value = getattr(flt, column)
            if value is not None:
                where.append(f"{column} LIKE ? ESCAPE '\\'")
                params.append(f"%{_like(value)}%")
        if flt.folder is not None:
            folder = storable(os.path.expanduser(flt.folder))
            if os.path.isabs(folder):
                folder = os.path.normpath(folder)
                where.append("(folder = ? OR folder LIKE ? ESCAPE '\\')")
                params += [folder, _like(folder.rstrip(os.sep) + os.sep) + "%"]
            else:
                where.append("folder LIKE ? ESCAPE '\\'")
                params.append(f"%{_like(folder)}%")
        for column, bounds in (("year", flt.year), ("duration", flt.duration)):
            if bounds is None:
                continue
            low, high = bounds
            if low is not None:
                where.append(f"{column} >= ?")
                params.append(low)
            if high is not None:
                where.append(f"{column} <= ?")
                params.append(high)
        sql = "SELECT id FROM tracks" + (" WHERE " + " AND ".join(where) if where else "")
        return np.asarray([r[0] for r in self._db.execute(sql, params)], np.int64)

    def years(self, ids: Sequence[int]) -> dict[int, int | None]:
        """The year of each id (for hits)."""
        out: dict[int, int | None] = {}
        ids = [int(i) for i in ids]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            out.update(
                self._db.execute(f"SELECT id, year FROM tracks WHERE id IN ({marks})", chunk)
            )
        return out

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()


def _create(db: sqlite3.Connection) -> None:
    with db:
        db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value)")
        db.execute(
            "CREATE TABLE IF NOT EXISTS tracks (id INTEGER PRIMARY KEY, path TEXT, title TEXT, "
            "artist TEXT, album TEXT, genre TEXT, filename TEXT, folder TEXT, year INTEGER, "
            "duration REAL, size INTEGER, mtime_ns INTEGER, stamp TEXT)"
        )
        db.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(title, artist, album, genre, "
            "filename, folder, tokenize = 'unicode61 remove_diacritics 2')"
        )
        db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,)
        )


def storable(text: str | None) -> str | None:
    """``text`` as SQLite can store it: a non-UTF-8 file name's bytes (kept by Python as lone
    surrogates) become U+FFFD, so the track stays findable by its other words."""
    if text is None:
        return None
    return str(text).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _stamp(row: dict[str, Any]) -> str:
    """What tells a changed row: the file's size and time, and its content hash (a CUE
    track's names the sheet)."""
    return f"{row.get('size')}:{row.get('mtime_ns')}:{row.get('content_hash')}"


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _file_year(path: str) -> int | None:
    from melodex.audio import read_tags
    from melodex.errors import MelodexError

    try:
        return year_of(read_tags(path).get("date"))
    except (MelodexError, OSError):
        return None
