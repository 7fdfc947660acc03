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
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from melodex.library.filters import TrackFilter
from melodex.library.id_arrays import in_sorted, sorted_unique

TEXT_INDEX_FILE = "text-index.sqlite"
SCHEMA_VERSION = 2
FIELDS = ("title", "artist", "album", "genre", "filename", "folder")
#: BM25 weight of each field: a name in the title or artist counts more than one in a folder.
FIELD_WEIGHTS = (3.0, 3.0, 2.0, 1.0, 1.0, 0.5)
_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")
MAX_CACHED_ROWS = 2_000_000  # scored matches kept in memory: ~32 MB


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


class _QueryCache:
    """Match counts and scored matches of FTS5 phrases at one store version, the least recently
    used dropped past ``MAX_CACHED_ROWS`` scored rows (16 bytes each)."""

    def __init__(self, version: int | None) -> None:
        self.version = version
        self.counts: dict[str, int] = {}
        self.scored: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._rows = 0

    def add(self, phrase: str, scored: tuple[np.ndarray, np.ndarray]) -> None:
        if self.version is None:
            return  # an index never synced: nothing to key it by
        self.scored[phrase] = scored
        self._rows += len(scored[0])
        while self._rows > MAX_CACHED_ROWS and len(self.scored) > 1:
            _, dropped = self.scored.popitem(last=False)
            self._rows -= len(dropped[0])
        if len(self.counts) > 10_000:
            self.counts.clear()


class TextIndex:
    """Full-text search and metadata filters over the tracks of one store."""

    def __init__(self, folder: Path | None) -> None:
        self._file = None if folder is None else Path(folder) / TEXT_INDEX_FILE
        self._db = self._connect()
        self._count: tuple[int | None, int] | None = None  # (store version, tracks)
        self._queries = _QueryCache(None)

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
        best first (ties by id), at most ``limit``; ``allowed`` restricts them to those ids.

        The score is FTS5's ``bm25`` of the OR of the selective pieces, computed as the sum of
        each piece's own ``bm25`` (FTS5 sums its phrases in query order; this adds them in the
        same order, so the scores are bit for bit the same, tests/test_hybrid.py). Each piece's
        scores are kept per store version: SQLite took 173-300 ms to rank the 109-184k tracks
        that two or three common title words match at 1M tracks (bench/bench_text_match.py)."""
        pieces = self._selective_pieces(text)
        if not pieces:
            return []
        parts = [self._piece_scores(p) for p in pieces]
        if allowed is not None:  # filter first: a --bpm/--key filter keeps ~15 % of the rows
            allowed = sorted_unique(np.asarray(allowed, np.int64))
            parts = [(i[keep], v[keep]) for i, v in parts for keep in [in_sorted(allowed, i)]]
        if len(parts) == 1:
            ids, scores = parts[0]
        else:
            every = np.concatenate([p[0] for p in parts])
            ids, slot = np.unique(every, return_inverse=True)
            scores = np.zeros(len(ids), np.float64)
            np.add.at(scores, slot, np.concatenate([p[1] for p in parts]))  # in piece order
        if len(ids) > limit:  # every track tied with the last one kept, then ordered
            last = np.partition(-scores, limit - 1)[limit - 1]
            tied = np.flatnonzero(-scores <= last)
            ids, scores = ids[tied], scores[tied]
        order = np.lexsort((ids, -scores))[:limit]
        return list(zip(ids[order].tolist(), scores[order].tolist(), strict=True))

    def _piece_scores(self, phrase: str) -> tuple[np.ndarray, np.ndarray]:
        """(ids ascending, -bm25 of each) of the tracks one FTS5 phrase matches, cached."""
        cache = self._cache()
        if phrase in cache.scored:
            cache.scored.move_to_end(phrase)
            return cache.scored[phrase]
        weights = ", ".join(str(w) for w in FIELD_WEIGHTS)
        sql = f"SELECT rowid, -bm25(fts, {weights}) FROM fts WHERE fts MATCH ? ORDER BY rowid"
        try:
            found = self._db.execute(sql, (phrase,)).fetchall()
        except sqlite3.OperationalError:
            found = []  # a phrase FTS5 cannot parse finds nothing rather than failing the search
        ids = np.fromiter((r[0] for r in found), np.int64, len(found))
        scores = np.fromiter((r[1] for r in found), np.float64, len(found))
        cache.add(phrase, (ids, scores))
        return ids, scores

    def _piece_count(self, piece: str) -> int:
        """How many tracks an FTS5 phrase matches (per store version; -1: FTS5 cannot take it)."""
        cache = self._cache()
        if piece not in cache.counts:
            try:
                (found,) = self._db.execute(
                    "SELECT count(*) FROM fts WHERE fts MATCH ?", (piece,)
                ).fetchone()
            except sqlite3.OperationalError:
                found = -1
            cache.counts[piece] = int(found)
        return cache.counts[piece]

    def _cache(self) -> _QueryCache:
        """The query cache of the store version this index was last synced at."""
        version = self.store_version()
        if version is None or self._queries.version != version:
            self._queries = _QueryCache(version)
        return self._queries

    def _selective_pieces(self, text: str) -> list[str]:
        """The pieces of ``text`` as FTS5 phrases, those found in at most ``MAX_DOC_SHARE`` of
        the tracks (and at least one), stop words left out."""
        total = self._track_count()
        kept = []
        stop = stop_words()
        for piece in dict.fromkeys(text.split()):
            if piece.lower().strip(".,;:!?\"'") in stop:
                continue
            found = self._piece_count(fts_phrase(piece))  # -1: only punctuation, say
            if 0 < found <= MAX_DOC_SHARE * total:
                kept.append(fts_phrase(piece))
        return kept

    def _track_count(self) -> int:
        """How many tracks the index holds, counted once per store version it was synced at
        (``count(*)`` reads the whole table: ~100 ms at 1M tracks, on every query)."""
        version = self.store_version()
        if version is None or self._count is None or self._count[0] != version:
            total = int(self._db.execute("SELECT count(*) FROM tracks").fetchone()[0])
            self._count = (version, total)
        return self._count[1]

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
