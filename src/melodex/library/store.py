"""The library store: one LanceDB folder holding every indexed track and its vectors.

Why LanceDB: an embedded vector database (no server to start) whose every write is a new
table version committed atomically, so a killed indexing run can never leave half a batch
behind. Searching runs on an in-memory index built from the ``vector`` column
(:mod:`melodex.library.vector_index`), because a full scan inside LanceDB is too slow for
interactive queries at scale (see docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
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
SCAN_BATCH_ROWS = 65_536
SCALAR_INDEX_COLUMNS = ("id", "path")
SCALAR_INDEX_MIN_ROWS = 20_000
"""From this many rows, :meth:`Store.compact` keeps BTREE indexes on ``id`` and ``path``: the
rows of a search's hits (``rows(ids)``) and ``find_path`` are then looked up instead of filtered
out of a full column scan. Rows written after the last compaction are still found (LanceDB scans
the unindexed fragments). Measured by bench/bench_million.py."""
# Old table versions younger than this survive a compaction: reads that other processes began on
# them can finish (a full column read of 1M tracks takes seconds).
VERSION_GRACE = timedelta(minutes=5)


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
    duration: float = 0.0
    windows: int = 0  # window vectors stored (read only when asked: file_states(windows=True))


#: Marks a stored path kept in its escaped form (below); no file name can contain NUL.
BYTES_PATH_MARK = "\x00"


def encode_path(path: str) -> str:
    """A path as valid UTF-8 for Arrow, reversibly.

    Linux file names are bytes; Python hands non-UTF-8 ones over with surrogate escapes
    (``b"caf\\xe9.wav"`` -> ``"caf\\udce9.wav"``), which Arrow strings cannot hold. Those paths are
    stored as NUL + their bytes percent-encoded (``"\\x00/music/caf%E9.wav"``); every other path
    is stored as it is. :func:`decode_path` undoes it.
    """
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raw = path.encode("utf-8", "surrogateescape")
        return BYTES_PATH_MARK + urllib.parse.quote_from_bytes(raw, safe="/")
    return path


def decode_path(stored: str) -> str:
    """The path :func:`encode_path` stored (surrogate escapes restored)."""
    if stored.startswith(BYTES_PATH_MARK):
        raw = urllib.parse.unquote_to_bytes(stored[len(BYTES_PATH_MARK) :])
        return raw.decode("utf-8", "surrogateescape")
    return stored


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
        self.path = Path(os.path.expanduser(path))  # pathlib raises on an unknown ~user
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
        # version, row count and the descriptor columns as of the last refresh or write
        # (LanceDB's table object sees nothing new in between, so asking it again cost ~0.3 ms
        # each, several times a query)
        self._state: dict[str, Any] = {}
        self.meta = self._read_meta()
        if not self.meta and (self.path / f"{TABLE}.lance").exists():
            raise StoreError(
                f"{self.path}: holds a LanceDB table {TABLE!r} that melodex did not make (no "
                f"{META_FILE}); it is another program's database: choose another --db "
                "(nothing was written)"
            )

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

    def bind_model(
        self,
        identity: str,
        name: str,
        dim: int,
        *,
        source: str | None = None,
        licence: str | None = None,
    ) -> None:
        """Record the model on first use; refuse a different one later (vectors would not mix).

        ``source`` (a built-in name, a resolved folder, or a ``family:argument`` spec) is how
        later commands load the same model without being told; ``licence`` is the weights'.
        """
        if self.meta:
            if self.meta["model"] != identity:
                raise StoreError(
                    f"{self.path}: indexed with model {self.meta['model']}, not {identity}; "
                    "use that model, or index into a new --db"
                )
            if source and not self.meta.get("model_source"):  # a library from before sources
                self._write_meta({**self.meta, "model_source": source})
            return
        meta = {
            "format": STORE_FORMAT,
            "model": identity,
            "model_name": name,
            "dim": dim,
            "created": time.time(),
        }
        meta.update({k: v for k, v in (("model_source", source), ("licence", licence)) if v})
        self._write_meta(meta)

    def _write_meta(self, meta: dict[str, Any]) -> None:
        tmp = self.path / (META_FILE + ".tmp")
        with self._write_errors("write the store metadata"):
            tmp.write_text(json.dumps(meta, indent=2) + "\n")
            os.replace(tmp, self.path / META_FILE)
        self.meta = meta

    def add_root(self, folder: str | Path) -> None:
        """Remember a folder indexed into this store: the server streams only files under one."""
        root = os.path.abspath(os.path.expanduser(folder))
        roots = list(self.meta.get("roots", []))
        if self.meta and root not in roots:
            self._write_meta({**self.meta, "roots": sorted([*roots, root])})

    def roots(self) -> list[str]:
        """The folders indexed into this store (as of now, re-read from disk)."""
        try:
            return list(self._read_meta().get("roots", []))
        except StoreError:
            return []

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
                table = self._db.open_table(TABLE)
                names = set(table.schema.names)
            except Exception as exc:  # lancedb raises several kinds
                raise StoreError(f"{self.path}: cannot open table {TABLE!r}: {exc}") from exc
            missing = [f.name for f in schema(self.dim or 1) if f.name not in names]
            if missing:
                raise StoreError(
                    f"{self.path}: table {TABLE!r} lacks the columns melodex writes "
                    f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}); it is not "
                    "a melodex library: choose another --db"
                )
            self._table = table
        elif create:
            if self.dim is None:
                raise StoreError(f"{self.path}: bind a model before writing")
            with self._write_errors("create the tracks table"):
                self._table = self._db.create_table(TABLE, schema=schema(self.dim))
        return self._table

    def refresh(self) -> None:
        """See writes made by other processes since this store was opened.

        The table's version files are listed first (~0.04 ms): when the newest is the version
        this store reads already, checking out again would change nothing, and each LanceDB
        call took 0.3 ms alone and several ms on a busy server (tests/test_store.py)."""
        from melodex.library.snapshot import table_version

        table = self._open_table()
        seen = self._state.get("version")
        if table is not None and seen is not None and table_version(self.path) == seen:
            return
        self._state.clear()
        if table is not None:
            table.checkout_latest()

    @property
    def version(self) -> int:
        if "version" not in self._state:
            table = self._open_table()
            if table is None:
                return 0  # not cached: another process may create the table
            self._state["version"] = int(table.version)
        return self._state["version"]

    def __len__(self) -> int:
        if "rows" not in self._state:
            table = self._open_table()
            if table is None:
                return 0
            self._state["rows"] = table.count_rows()
        return self._state["rows"]

    def _scan(self, columns: Sequence[str], where: str | None = None) -> pa.Table:
        table = self._open_table()
        if table is None:
            return pa.table({c: pa.array([], schema(self.dim or 1).field(c).type) for c in columns})
        query = table.search().select(list(columns)).limit(None)
        if where:
            query = query.where(where)
        # Large batches: to_arrow() hands rows over 1024 at a time, which cost ~0.3 ms a batch
        # (the id column of 1M tracks: 310 ms, against 9 ms in batches of 64k).
        return query.to_batches(SCAN_BATCH_ROWS).read_all()

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the single-writer lock: a second indexer fails fast instead of interleaving."""
        with self._write_errors("create the lock file"):
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

    @contextlib.contextmanager
    def _write_errors(self, action: str) -> Iterator[None]:
        """Turn a failed write (a full disk, a file size limit, ...) into a StoreError naming
        the library and the cause. Every write is one atomic commit, so the store keeps the
        rows of the commits before it."""
        try:
            yield
        except StoreError:
            raise
        except Exception as exc:  # lancedb raises RuntimeError/OSError/IOError with the cause
            raise StoreError(f"{self.path}: cannot {action}: {_write_cause(exc)}") from exc
        finally:
            self._state.clear()  # a new version, maybe other rows

    def file_states(self, *, windows: bool = False) -> dict[str, FileState]:
        """What decides whether each stored file changed; ``windows`` adds its duration and
        stored window count (a list column: read only for ``--coverage full``)."""
        cols = ["id", "path", "content_hash", "size", "mtime_ns", "bpm_confidence"]
        table = self._scan([*cols, "duration", "window_starts"] if windows else cols)
        data = table.select(cols).to_pydict()
        data["path"] = [decode_path(p) for p in data["path"]]
        n = table.num_rows
        if windows:
            import pyarrow.compute as pc

            counts = pc.list_value_length(table["window_starts"]).fill_null(0).to_pylist()
            durations = table["duration"].fill_null(0.0).to_pylist()
        else:
            counts, durations = [0] * n, [0.0] * n
        return {
            p: FileState(i, p, h, s, m, conf is not None, float(d), int(w))
            for i, p, h, s, m, conf, d, w in zip(
                *(data[name] for name in cols), durations, counts, strict=True
            )
        }

    def upsert(self, rows: Sequence[TrackRow]) -> None:
        """Insert or replace rows by id, in one atomic commit."""
        if not rows:
            return
        table = self._open_table(create=True)
        batch = self._to_arrow(rows)
        merge = table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all()
        append = self._all_new([r.id for r in rows])
        with self._write_errors(f"write {len(rows)} track(s)"):
            if append:
                table.add(batch)
            else:
                merge.execute(batch)

    def _all_new(self, ids: Sequence[int]) -> bool:
        """Whether no id is stored yet (nor repeated): then an upsert is a plain append, which
        costs the same at any size, where a merge reads the ids of every fragment written since
        the last compaction (~0.5 ms each: 16-track commits slowed to 140 ms each over a run
        adding 10k tracks to a 1M library). The check reads only the ``id`` column."""
        if len(set(ids)) != len(ids):
            return False
        if len(self) == 0:
            return True
        where = f"id IN ({', '.join(str(int(i)) for i in ids)})"
        return self._scan(["id"], where).num_rows == 0

    def delete(self, ids: Sequence[int]) -> None:
        table = self._open_table()
        if table is None or not ids:
            return
        for start in range(0, len(ids), 1000):
            chunk = ", ".join(str(int(i)) for i in ids[start : start + 1000])
            with self._write_errors(f"delete {len(ids)} track(s)"):
                table.delete(f"id IN ({chunk})")

    def compact(self, *, keep_versions: timedelta = VERSION_GRACE) -> None:
        """Merge the small fragments that many batch commits leave, delete the files of versions
        older than ``keep_versions``, and keep the lookup indexes on ``id`` and ``path`` (see
        :data:`SCALAR_INDEX_MIN_ROWS`).

        LanceDB's own default keeps old versions for 7 days, and a compaction that rewrites a
        1M-track fragment leaves a second 3.8 GB copy behind. melodex never reads an old version
        (every read starts with :meth:`refresh`), so a short grace is enough to let reads
        already running in other processes finish."""
        table = self._open_table()
        if table is not None:
            with contextlib.suppress(Exception):  # compaction is an optimisation only
                # also adds the rows written since to existing indexes
                table.optimize(cleanup_older_than=keep_versions)
            with contextlib.suppress(Exception):  # so are the indexes
                self._create_scalar_indexes(table)
            self._state.clear()  # each step above may commit a new version

    def _create_scalar_indexes(self, table: Any) -> None:
        if table.count_rows() < SCALAR_INDEX_MIN_ROWS:
            return
        from lancedb.index import BTree

        indexed = {column for index in table.list_indices() for column in index.columns}
        for column in SCALAR_INDEX_COLUMNS:
            if column not in indexed:
                table.create_index(column, config=BTree())

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
            found = {
                r["id"]: _decoded(r)
                for r in self._scan(sorted(set(cols) | {"id"}), where).to_pylist()
            }
            return [found[int(i)] for i in ids if int(i) in found]
        return [_decoded(r) for r in self._scan(cols).to_pylist()]

    def filtered_ids(
        self, *, bpm: tuple[float, float] | None = None, key: Any = None, octaves: bool = True
    ) -> np.ndarray:
        """Ids of tracks whose descriptors pass the filters (``key``: a callable on (key, mode)),
        ascending.

        A BPM range matches a tempo or, with ``octaves``, its double or half (tempo estimates
        are octave-ambiguous). Tracks without descriptors never match.
        """
        columns = self._descriptor_columns()
        if columns.ids.size and not columns.any_descriptor:
            raise StoreError(
                f"{self.path}: no track has tempo/key descriptors; "
                "re-index with `melodex index DIR --descriptors` to filter by them"
            )
        # Column-wise (a Python loop over every row took ~2 s at 1M tracks): tempos as floats
        # (NaN for none, which matches no range), and ``key`` asked once per distinct pair.
        keep = np.ones(columns.ids.size, dtype=bool)
        if bpm is not None:
            # lo <= tempo * f <= hi as a range of the sorted tempos, lo / f <= tempo <= hi / f
            # (f a power of two: the division is exact, so the same rows as multiplying)
            match = np.zeros(columns.ids.size, dtype=bool)
            for factor in (1.0, 2.0, 0.5) if octaves else (1.0,):
                start = np.searchsorted(columns.tempo_sorted, bpm[0] / factor, side="left")
                stop = np.searchsorted(columns.tempo_sorted, bpm[1] / factor, side="right")
                match[columns.tempo_order[start:stop]] = True
            keep &= match
        if key is not None:
            n_modes = len(columns.mode_values)
            passes = np.zeros(len(columns.key_values) * n_modes, dtype=bool)
            for code in columns.pairs_present.tolist():
                k, m = divmod(code, n_modes)
                passes[code] = bool(key(columns.key_values[k], columns.mode_values[m]))
            keep &= passes[columns.pair]
        return columns.ids[keep]

    def _descriptor_columns(self) -> DescriptorColumns:
        """What a descriptor filter reads, kept until the table changes: reading and encoding
        the four columns again cost ~120 ms a filtered query at 1M tracks."""
        cached = self._state.get("descriptors")
        if cached is None:
            cached = DescriptorColumns.of(self._scan(["id", "bpm", "key", "mode"]))
            self._state["descriptors"] = cached
        return cached

    def find_path(self, path: str) -> dict[str, Any] | None:
        escaped = encode_path(path).replace("'", "''")
        rows = self._scan(
            [f.name for f in schema(self.dim or 1)], f"path = '{escaped}'"
        ).to_pylist()
        return _decoded(rows[0]) if rows else None

    def _to_arrow(self, rows: Sequence[TrackRow]) -> pa.Table:
        dim = self.dim
        assert dim is not None
        now = time.time()
        cols: dict[str, Any] = {
            "id": [r.id for r in rows],
            "path": [encode_path(r.path) for r in rows],
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


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    """A scanned row with its path as the file system gave it (see :func:`encode_path`)."""
    if isinstance(row.get("path"), str):
        row["path"] = decode_path(row["path"])
    return row


def _write_cause(exc: Exception) -> str:
    """The reason a write failed, led by the plain cause when it is a known one."""
    text = str(exc) or type(exc).__name__
    code = getattr(exc, "errno", None)
    if code == errno.ENOSPC or "No space left on device" in text:
        return f"no space left on device ({text})"
    if code == errno.EFBIG or "File too large" in text:
        return f"file too large for this file system or the process's file size limit ({text})"
    if code == errno.EDQUOT or "Disk quota exceeded" in text:
        return f"disk quota exceeded ({text})"
    return text


@dataclass(frozen=True)
class DescriptorColumns:
    """The id, tempo and (key, mode) pair code of every track, as arrays in ascending id order
    (so filtered ids come out sorted, and a vector index need not sort them again)."""

    ids: np.ndarray  # int64, ascending
    tempo_sorted: np.ndarray  # float64 ascending, NaN (no tempo) last
    tempo_order: np.ndarray  # the position in ``ids`` of each sorted tempo
    pair: np.ndarray  # key code * len(mode_values) + mode code
    pairs_present: np.ndarray  # the distinct pair codes
    key_values: list[Any]
    mode_values: list[Any]
    any_descriptor: bool

    @classmethod
    def of(cls, data: pa.Table) -> DescriptorColumns:
        n = data.num_rows
        keys, key_values = _codes(data["key"])
        modes, mode_values = _codes(data["mode"])
        pair = keys * len(mode_values) + modes
        ids = data["id"].to_numpy().astype(np.int64)
        order = np.argsort(ids, kind="stable")
        tempo = data["bpm"].to_numpy().astype(np.float64)[order]
        by_tempo = np.argsort(tempo, kind="stable")
        return cls(
            ids=ids[order],
            tempo_sorted=tempo[by_tempo],
            tempo_order=by_tempo,
            pair=pair[order],
            pairs_present=np.unique(pair),
            key_values=key_values,
            mode_values=mode_values,
            any_descriptor=data["bpm"].null_count < n or data["key"].null_count < n,
        )


def _codes(column: pa.ChunkedArray) -> tuple[np.ndarray, list[Any]]:
    """A string column as (one code per row, the value of each code); None has a code too."""
    encoded = column.combine_chunks().dictionary_encode()
    values = encoded.dictionary.to_pylist() + [None]
    codes = encoded.indices.fill_null(len(values) - 1).to_numpy(zero_copy_only=False)
    return codes.astype(np.int64), values
