"""The library store: one LanceDB folder holding every indexed track and its vectors.

Why LanceDB: an embedded vector database (no server to start) whose every write is a new
table version committed atomically, so a killed indexing run can never leave half a batch
behind. Searching runs on an in-memory index built from the ``vector`` column
(:mod:`melodex.library.vector_index`), because a full scan inside LanceDB is too slow for
interactive queries at scale (see docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from melodex.errors import StoreError

TABLE = "tracks"
META_FILE = "melodex-store.json"
LOCK_FILE = ".write.lock"
STORE_FORMAT = 2  # 2: mid-level descriptor columns
META_COLUMNS = ("title", "artist", "album", "genre")
DESCRIPTOR_COLUMNS = ("bpm", "bpm_confidence", "key", "mode", "key_confidence", "loudness_lufs")


@dataclass
class TrackRow:
    """One indexed file: where it is, what it is, and its vectors."""

    id: int
    path: str
    content_hash: str
    size: int
    mtime_ns: int
    duration: float
    title: str | None
    artist: str | None
    album: str | None
    genre: str | None
    vector: np.ndarray
    window_vectors: np.ndarray
    window_starts: np.ndarray
    tag_scores: np.ndarray
    bpm: float | None = None
    bpm_confidence: float | None = None
    key: str | None = None
    mode: str | None = None
    key_confidence: float | None = None
    loudness_lufs: float | None = None


@dataclass(frozen=True)
class FileState:
    """What the store remembers of a file to decide whether it changed."""

    id: int
    path: str
    content_hash: str
    size: int
    mtime_ns: int
    has_descriptors: bool = False


def track_id(path: str) -> int:
    """A stable 63-bit id from the absolute path (ids key the in-memory index)."""
    import hashlib

    digest = hashlib.blake2b(path.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "little") & 0x7FFF_FFFF_FFFF_FFFF


def schema(dim: int) -> pa.Schema:
    vec = pa.list_(pa.float32(), dim)
    return pa.schema(
        [
            ("id", pa.int64()),
            ("path", pa.string()),
            ("content_hash", pa.string()),
            ("size", pa.int64()),
            ("mtime_ns", pa.int64()),
            ("duration", pa.float32()),
            ("title", pa.string()),
            ("artist", pa.string()),
            ("album", pa.string()),
            ("genre", pa.string()),
            ("vector", vec),
            ("window_vectors", pa.list_(vec)),
            ("window_starts", pa.list_(pa.float32())),
            ("tag_scores", pa.list_(pa.float32())),
            ("bpm", pa.float32()),
            ("bpm_confidence", pa.float32()),
            ("key", pa.string()),
            ("mode", pa.string()),
            ("key_confidence", pa.float32()),
            ("loudness_lufs", pa.float32()),
            ("indexed_at", pa.float64()),
        ]
    )


class Store:
    """Open (or create) a library folder. Readers never block; one writer at a time."""

    def __init__(self, path: str | Path, *, create: bool = False):
        self.path = Path(path).expanduser()
        if not self.path.exists():
            if not create:
                raise StoreError(
                    f"{self.path}: no library here (run `melodex index DIR --db {self.path}` first)"
                )
            self.path.mkdir(parents=True)
        if not self.path.is_dir():
            raise StoreError(f"{self.path}: not a folder")
        import lancedb

        try:
            self._db = lancedb.connect(str(self.path))
        except Exception as exc:  # lancedb raises several kinds
            raise StoreError(f"{self.path}: cannot open library: {exc}") from exc
        self._table = None
        self.meta = self._read_meta()

    # -- metadata: which model made these vectors -----------------------------------------
    def _read_meta(self) -> dict[str, Any]:
        file = self.path / META_FILE
        if not file.exists():
            return {}
        try:
            meta = json.loads(file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreError(f"{file}: unreadable store metadata: {exc}") from exc
        if meta.get("format") != STORE_FORMAT:
            raise StoreError(
                f"{file}: store format {meta.get('format')!r}, this melodex reads {STORE_FORMAT}"
            )
        return meta

    def bind_model(self, identity: str, name: str, dim: int) -> None:
        """Record the model on first use; refuse a different one later (vectors would not mix)."""
        if self.meta:
            if self.meta["model"] != identity:
                raise StoreError(
                    f"{self.path}: indexed with model {self.meta['model']}, not {identity}; "
                    "use that model, or index into a new --db"
                )
            return
        meta = {
            "format": STORE_FORMAT,
            "model": identity,
            "model_name": name,
            "dim": dim,
            "created": time.time(),
        }
        tmp = self.path / (META_FILE + ".tmp")
        tmp.write_text(json.dumps(meta, indent=2) + "\n")
        os.replace(tmp, self.path / META_FILE)
        self.meta = meta

    def check_model(self, identity: str) -> None:
        if self.meta and self.meta["model"] != identity:
            raise StoreError(
                f"{self.path}: indexed with model {self.meta['model']}, but queries use {identity}"
            )

    @property
    def dim(self) -> int | None:
        return self.meta.get("dim")

    # -- the table ---------------------------------------------------------------------------
    def _open_table(self, *, create: bool = False):  # noqa: ANN202 (lancedb type)
        if self._table is not None:
            return self._table
        if (self.path / f"{TABLE}.lance").is_dir():
            try:
                self._table = self._db.open_table(TABLE)
            except Exception as exc:  # lancedb raises several kinds
                raise StoreError(f"{self.path}: cannot open table {TABLE!r}: {exc}") from exc
        elif create:
            if self.dim is None:
                raise StoreError(f"{self.path}: bind a model before writing")
            self._table = self._db.create_table(TABLE, schema=schema(self.dim))
        return self._table

    def refresh(self) -> None:
        """See writes made by other processes since this store was opened."""
        table = self._open_table()
        if table is not None:
            table.checkout_latest()

    @property
    def version(self) -> int:
        table = self._open_table()
        return 0 if table is None else int(table.version)

    def __len__(self) -> int:
        table = self._open_table()
        return 0 if table is None else table.count_rows()

    def _scan(self, columns: Sequence[str], where: str | None = None) -> pa.Table:
        table = self._open_table()
        if table is None:
            return pa.table({c: pa.array([], schema(self.dim or 1).field(c).type) for c in columns})
        query = table.search().select(list(columns)).limit(None)
        if where:
            query = query.where(where)
        return query.to_arrow()

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the single-writer lock: a second indexer fails fast instead of interleaving."""
        handle = open(self.path / LOCK_FILE, "a+")  # noqa: SIM115 (held for the block)
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise StoreError(
                    f"{self.path}: another process is indexing into this library"
                ) from exc
            yield
        finally:
            handle.close()

    def file_states(self) -> dict[str, FileState]:
        cols = ["id", "path", "content_hash", "size", "mtime_ns", "bpm_confidence"]
        data = self._scan(cols).to_pydict()
        return {
            p: FileState(i, p, h, s, m, conf is not None)
            for i, p, h, s, m, conf in zip(*(data[name] for name in cols), strict=True)
        }

    def upsert(self, rows: Sequence[TrackRow]) -> None:
        """Insert or replace rows by id, in one atomic commit."""
        if not rows:
            return
        table = self._open_table(create=True)
        batch = self._to_arrow(rows)
        table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(
            batch
        )

    def delete(self, ids: Sequence[int]) -> None:
        table = self._open_table()
        if table is None or not ids:
            return
        for start in range(0, len(ids), 1000):
            chunk = ", ".join(str(int(i)) for i in ids[start : start + 1000])
            table.delete(f"id IN ({chunk})")

    def compact(self) -> None:
        """Merge the small fragments that many batch commits leave, and drop old versions."""
        table = self._open_table()
        if table is not None:
            with contextlib.suppress(Exception):  # compaction is an optimisation only
                table.optimize()

    def ids(self) -> np.ndarray:
        """Every track id (one cheap column read)."""
        return self._scan(["id"]).column("id").to_numpy().astype(np.int64)

    def newest_indexed_at(self) -> float:
        """When the most recent row was written (0.0 for an empty store)."""
        data = self._scan(["indexed_at"]).column("indexed_at").to_numpy()
        return float(data.max()) if len(data) else 0.0

    def vectors(self, *, since: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of all rows, or of rows written after ``since`` (epoch seconds)."""
        data = self._scan(["id", "vector"], None if since is None else f"indexed_at > {since!r}")
        ids = data.column("id").to_numpy().astype(np.int64)
        if data.num_rows == 0:
            return ids, np.zeros((0, self.dim or 0), np.float32)
        flat = data.column("vector").combine_chunks().flatten().to_numpy()
        return ids, flat.reshape(data.num_rows, -1).astype(np.float32, copy=False)

    def rows(
        self, ids: Sequence[int] | None = None, *, columns: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """Rows as dicts (by id when given, in that order)."""
        cols = list(columns or [f.name for f in schema(self.dim or 1)])
        if ids is not None:
            if len(ids) == 0:
                return []
            where = f"id IN ({', '.join(str(int(i)) for i in ids)})"
            found = {r["id"]: r for r in self._scan(sorted(set(cols) | {"id"}), where).to_pylist()}
            return [found[int(i)] for i in ids if int(i) in found]
        return self._scan(cols).to_pylist()

    def filtered_ids(
        self, *, bpm: tuple[float, float] | None = None, key: Any = None, octaves: bool = True
    ) -> np.ndarray:
        """Ids of tracks whose descriptors pass the filters (``key``: a callable on (key, mode)).

        A BPM range matches a tempo or, with ``octaves``, its double or half (tempo estimates
        are octave-ambiguous). Tracks without descriptors never match.
        """
        data = self._scan(["id", "bpm", "key", "mode"]).to_pydict()
        if (
            data["id"]
            and all(b is None for b in data["bpm"])
            and all(k is None for k in data["key"])
        ):
            raise StoreError(
                f"{self.path}: no track has tempo/key descriptors; "
                "re-index with `melodex index DIR --descriptors` to filter by them"
            )
        keep = []
        factors = (1.0, 2.0, 0.5) if octaves else (1.0,)
        for tid, b, k, m in zip(data["id"], data["bpm"], data["key"], data["mode"], strict=True):
            if bpm is not None and (
                b is None or not any(bpm[0] <= b * f <= bpm[1] for f in factors)
            ):
                continue
            if key is not None and not key(k, m):
                continue
            keep.append(tid)
        return np.asarray(keep, np.int64)

    def find_path(self, path: str) -> dict[str, Any] | None:
        escaped = path.replace("'", "''")
        rows = self._scan(
            [f.name for f in schema(self.dim or 1)], f"path = '{escaped}'"
        ).to_pylist()
        return rows[0] if rows else None

    def _to_arrow(self, rows: Sequence[TrackRow]) -> pa.Table:
        dim = self.dim
        assert dim is not None
        now = time.time()
        cols: dict[str, Any] = {
            "id": [r.id for r in rows],
            "path": [r.path for r in rows],
            "content_hash": [r.content_hash for r in rows],
            "size": [r.size for r in rows],
            "mtime_ns": [r.mtime_ns for r in rows],
            "duration": [r.duration for r in rows],
            **{c: [getattr(r, c) for r in rows] for c in META_COLUMNS},
            "vector": [np.asarray(r.vector, np.float32) for r in rows],
            "window_vectors": [list(np.asarray(r.window_vectors, np.float32)) for r in rows],
            "window_starts": [np.asarray(r.window_starts, np.float32) for r in rows],
            "tag_scores": [np.asarray(r.tag_scores, np.float32) for r in rows],
            **{c: [getattr(r, c) for r in rows] for c in DESCRIPTOR_COLUMNS},
            "indexed_at": [now] * len(rows),
        }
        for r in rows:
            if np.asarray(r.vector).shape != (dim,):
                raise StoreError(
                    f"{r.path}: vector of shape {np.asarray(r.vector).shape}, store holds {dim}-d"
                )
        return pa.table(cols, schema=schema(dim))
