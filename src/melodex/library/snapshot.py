"""A search snapshot beside the store, so a new process answers a text query without LanceDB.

Why: a cold ``melodex search`` spent ~3 s importing lancedb and ~4 s importing
sentence-transformers and torch, for a query that takes milliseconds once loaded. At the end of
an indexing run (and after a query that found the snapshot missing or old) the library writes
one file, ``search-snapshot.bin``: the track vectors, every row's window vectors and starts, and
the few fields a hit shows, laid out as aligned arrays behind a JSON header, and memory-mapped
by readers (a query touches the matrix and only its hits' rows).

A snapshot answers only when it is exactly current: it records the store's metadata (the model
identity) and its LanceDB table version, and a reader compares them with the folder's
``melodex-store.json`` and the newest manifest in ``tracks.lance/_versions``. It is written only
for libraries small enough for exact search (the in-memory index would be exact too), and the
search reuses the exact index's scoring and tie-breaking, so results are the full path's.
Anything else (filters, a networked store, another model, HNSW-sized libraries) takes the full
path: :func:`fast_search` returns None.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from melodex.library.hits import Hit

if TYPE_CHECKING:
    from melodex.library.store import Store

SNAPSHOT_FILE = "search-snapshot.bin"
MAGIC = b"MELODEX-SNAPSHOT"
FORMAT = 1
ALIGN = 64
# Kept equal to melodex.library.store's constants (a test checks): importing store.py would
# import pyarrow, which the cold path avoids.
META_FILE = "melodex-store.json"
TABLE_DIR = "tracks.lance"
ROW_FIELDS = ("path", "title", "artist", "album", "genre", "duration", "bpm", "key", "mode")


def table_version(db: Path) -> int | None:
    """The newest version of the tracks table, from its manifest file names (None: no table).

    LanceDB names manifests ``N.manifest``, or in its newer scheme ``(2**64 - 1 - N).manifest``
    so that the newest sorts first; both are read.
    """
    try:
        names = os.listdir(db / TABLE_DIR / "_versions")
    except OSError:
        return None
    versions = []
    for name in names:
        stem, dot, ext = name.partition(".")
        if ext != "manifest" or not stem.isdigit():
            continue
        n = int(stem)
        versions.append(2**64 - 1 - n if n >= 2**63 else n)
    return max(versions) if versions else None


def write_snapshot(store: Store) -> Path | None:
    """Write the snapshot of ``store`` as it is now (atomically); None when the store is not a
    folder store, is empty, is too large for exact search, or its version cannot be read."""
    from melodex.library.search_index import exact_limit
    from melodex.library.store import Store, decode_path

    if not isinstance(store, Store):
        return None
    store.refresh()
    version = store.version
    n = len(store)
    if n == 0 or not store.meta or n > exact_limit(store.dim or 1):
        drop_snapshot(store.path)
        return None
    if table_version(store.path) != version:
        return None  # a naming scheme this module does not know: never trust the snapshot
    columns = ["id", "vector", "window_vectors", "window_starts", *ROW_FIELDS]
    data = store._scan(columns)  # noqa: SLF001 (column-wise: to_pylist of every window is slow)
    dim = int(store.dim or 0)
    ids = data.column("id").to_numpy().astype(np.int64)
    vectors = data.column("vector").combine_chunks().flatten().to_numpy()
    vectors = vectors.reshape(len(ids), dim).astype(np.float32, copy=False)
    windows = data.column("window_vectors").combine_chunks()
    window_offsets = windows.offsets.to_numpy().astype(np.int64) - int(windows.offsets[0].as_py())
    window_values = windows.flatten().flatten().to_numpy(zero_copy_only=False)
    window_values = window_values.reshape(-1, dim).astype(np.float32, copy=False)
    starts = data.column("window_starts").combine_chunks()
    start_values = starts.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    start_offsets = starts.offsets.to_numpy().astype(np.int64) - int(starts.offsets[0].as_py())
    fields = {name: data.column(name).to_pylist() for name in ROW_FIELDS}
    fields["path"] = [decode_path(p) for p in fields["path"]]
    blobs = [
        json.dumps([fields[name][i] for name in ROW_FIELDS], ensure_ascii=True).encode()
        for i in range(len(ids))
    ]
    row_offsets = np.zeros(len(blobs) + 1, np.int64)
    np.cumsum([len(b) for b in blobs], out=row_offsets[1:])
    arrays = {
        "ids": ids,
        "vectors": vectors,
        "window_offsets": window_offsets,
        "window_vectors": window_values,
        "start_offsets": start_offsets,
        "window_starts": start_values,
        "row_offsets": row_offsets,
        "rows": np.frombuffer(b"".join(blobs), np.uint8),
    }
    header = {"format": FORMAT, "version": version, "meta": store.meta, "dim": dim, "count": n}
    return _write(store.path / SNAPSHOT_FILE, header, arrays)


def _write(path: Path, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    layout: dict[str, Any] = {}
    offset = 0
    for name, array in arrays.items():
        offset = -(-offset // ALIGN) * ALIGN
        layout[name] = {"offset": offset, "dtype": array.dtype.str, "shape": list(array.shape)}
        offset += array.nbytes
    text = json.dumps({**header, "arrays": layout}).encode()
    start = -(-(len(MAGIC) + 8 + len(text)) // ALIGN) * ALIGN
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(MAGIC + struct.pack("<Q", len(text)) + text)
            for name, array in arrays.items():
                handle.seek(start + layout[name]["offset"])
                handle.write(np.ascontiguousarray(array).tobytes())
            handle.truncate(start + offset)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return path


def drop_snapshot(db: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (Path(db) / SNAPSHOT_FILE).unlink()


class Snapshot:
    """A current snapshot, memory-mapped; :meth:`search` gives the full path's hits."""

    def __init__(self, header: dict[str, Any], arrays: dict[str, np.ndarray]):
        self.header = header
        self.meta: dict[str, Any] = header["meta"]
        self.arrays = arrays

    @classmethod
    def open(cls, db: Path) -> Snapshot | None:
        """The snapshot of the library folder ``db`` if it is exactly current, else None."""
        path = Path(db) / SNAPSHOT_FILE
        try:
            with open(path, "rb") as handle:
                head = handle.read(len(MAGIC) + 8)
                if len(head) < len(MAGIC) + 8 or head[: len(MAGIC)] != MAGIC:
                    return None
                (size,) = struct.unpack("<Q", head[len(MAGIC) :])
                header = json.loads(handle.read(size))
            meta = json.loads((Path(db) / META_FILE).read_text())
        except (OSError, ValueError):
            return None
        if header.get("format") != FORMAT or header.get("meta") != meta:
            return None
        if table_version(Path(db)) != header.get("version"):
            return None
        start = -(-(len(MAGIC) + 8 + size) // ALIGN) * ALIGN
        try:
            # a plain ndarray over the mapping (the memmap keeps it open as its base): slicing
            # a memmap subclass costs ~10 us a slice, a dozen per hit on a warm server
            raw = np.memmap(path, dtype=np.uint8, mode="r").view(np.ndarray)
            arrays = {}
            for name, entry in header["arrays"].items():
                dtype = np.dtype(entry["dtype"])
                count = int(np.prod(entry["shape"], dtype=np.int64))
                lo = start + entry["offset"]
                arrays[name] = (
                    raw[lo : lo + count * dtype.itemsize].view(dtype).reshape(entry["shape"])
                )
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return cls(header, arrays)

    def top(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, ids) per query vector, scored and tie-broken as the in-memory exact
        index does (:class:`melodex.library.hybrid.TopFn`)."""
        from melodex.library.vector_index import _scores, _top_k

        a = self.arrays
        ids, vectors = a["ids"], a["vectors"]
        if allowed is not None:
            rows = np.flatnonzero(np.isin(ids, allowed))
            ids, vectors = ids[rows], vectors[rows]
        q = np.asarray(queries, np.float32).reshape(-1, vectors.shape[1])
        return _top_k(_scores(q, vectors), ids, min(k, len(ids)))

    def vector(self, track_id: int) -> np.ndarray | None:
        """A track's stored vector (None: not in the snapshot)."""
        try:
            (row,) = _rows_of(self.arrays["ids"], np.asarray([track_id], np.int64))
        except IndexError:
            return None
        return np.array(self.arrays["vectors"][row], np.float32)

    def search(self, query: np.ndarray, *, k: int) -> list[Hit]:
        """The top ``k`` tracks for a joint query vector by similarity alone (vector mode)."""
        scores, ids = self.top(query, k)
        return self.hits(
            [(int(i), float(s), float(s), None) for i, s in zip(ids[0], scores[0], strict=True)],
            query,
        )

    def hits(
        self, ranked: list[tuple[int, float, float | None, float | None]], query: np.ndarray
    ) -> list[Hit]:
        """Hits for ranked (id, score, vector score, text score), with the window that best
        matches ``query``, as ``Library`` builds them."""
        a = self.arrays
        q = np.asarray(query, np.float32).reshape(-1)
        rows = _rows_of(a["ids"], np.asarray([r[0] for r in ranked], np.int64))
        hits = []
        for rank, ((tid, score, vscore, tscore), row) in enumerate(
            zip(ranked, rows, strict=True), 1
        ):
            values = json.loads(a["rows"][_span(a["row_offsets"], row)].tobytes())
            fields = dict(zip(ROW_FIELDS, values, strict=True))
            windows = a["window_vectors"][_span(a["window_offsets"], row)]
            starts = a["window_starts"][_span(a["start_offsets"], row)]
            start = float(starts[int(np.argmax(windows @ q))]) if len(windows) else None
            bpm = fields["bpm"]
            hits.append(
                Hit(
                    rank=rank,
                    score=float(score),
                    id=int(tid),
                    path=fields["path"],
                    title=fields["title"],
                    artist=fields["artist"],
                    album=fields["album"],
                    genre=fields["genre"],
                    duration=float(fields["duration"]),
                    segment_start=start,
                    bpm=None if bpm is None else round(float(bpm), 1),
                    key=fields["key"],
                    mode=fields["mode"],
                    vector_score=vscore,
                    text_score=tscore,
                )
            )
        return hits


def _span(offsets: np.ndarray, row: int) -> slice:
    return slice(int(offsets[row]), int(offsets[row + 1]))


def _rows_of(all_ids: np.ndarray, wanted: np.ndarray) -> list[int]:
    """Row numbers of ``wanted`` ids, from one scan of the id column (~30 us per 10k rows);
    IndexError names an id the snapshot lacks."""
    found = np.flatnonzero(np.isin(all_ids, wanted))
    row_of = dict(zip(all_ids[found].tolist(), found.tolist(), strict=True))
    try:
        return [row_of[int(i)] for i in wanted]
    except KeyError as exc:
        raise IndexError(f"track {exc.args[0]} is not in the snapshot") from None
