"""A library store on a Chroma server: the interface of the embedded :class:`Store`, networked.

Why: the embedded LanceDB store serves one machine. When several machines or processes must
write or query one library, when the vectors no longer fit one machine's RAM, or when other
applications should query it as a service, the library moves to a vector database server
(docs/scale.md). Chroma is that server here; ``--db chroma://HOST:PORT/COLLECTION`` selects it.

Layout on the server:

* collection ``COLLECTION``: one record per track. The record id is ``str(track id)``, the
  embedding is the track vector (HNSW index, inner-product space), the metadata holds every
  other :class:`TrackRow` field: scalars as themselves (float32 columns rounded to float32, so
  rows read back equal the embedded store's; a non-UTF-8 path in the embedded store's escaped
  form, :func:`~melodex.library.store.encode_path`), arrays (window vectors, window starts, tag
  scores) as base64 of little-endian float32. A missing key means None. Two derived keys serve
  server-side filters: ``described`` (the track has a tempo or key) and ``key_pc`` (the pitch
  class of its key).
* collection ``COLLECTION-melodex``: the store's own records, each with a dummy 1-d embedding:
  ``model`` (which model made the vectors), ``version`` (a counter bumped after every write,
  and the newest ``indexed_at``), and ``lease.N`` (writer leases, see :meth:`writing`).

What Chroma guarantees, and how this store copes (measured against chromadb 1.5):

* One ``add``/``upsert``/``delete`` call is applied as a unit as far as readers can tell
  (tests/test_store_contract.py polls during writes); there are no transactions across calls
  or collections. A batch larger than the server's ``max_batch_size`` (5461 locally) is split
  and loses that atomicity; the indexer's batches (16 files) are far below it. Rows are written
  first and the version is bumped after, so a reader that sees a new version sees its rows; a
  writer killed in between leaves rows whose version was not bumped, which the next write
  bumps.
* ``add`` of an id that exists is ignored (the first writer wins). That insert-if-absent is the
  only compare-and-set Chroma offers; the model binding and the writer lease are built on it.
* There is no lock. A writer holds a lease record with an owner and an expiry in the server's
  clock (its heartbeat), renewed by a background thread; a second writer fails fast while the
  lease is live, and a killed writer's lease expires after ``lease_seconds``. Writes made under
  a lease first check that no newer lease exists (the lease: :mod:`melodex.library.chroma_lease`), so a writer whose lease was taken over stops;
  Chroma has no fencing token, so a takeover between that check and the write lets that one
  write through (it needs a writer stalled past its whole lease).
* Reads page through ``get(limit=, offset=)``; pages are not a snapshot, so a read that runs
  during a write may see part of it (the next read sees all of it).
* A float in metadata may come back one float64 ulp off (120.30000305175781 came back as
  120.3000030517578): float32 columns are rounded back to float32 when read, and write times
  are whole milliseconds, which come back exactly.
"""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from melodex.errors import StoreError
from melodex.library.chroma_lease import LEASE_SECONDS, Lease, WriterLeases
from melodex.library.chroma_location import parse_location
from melodex.library.store import (
    DESCRIPTOR_COLUMNS,
    META_COLUMNS,
    FileState,
    TrackRow,
    decode_path,
    encode_path,
    schema,
)

CHROMA_FORMAT = 1  # the record layout above
PAGE_SIZE = 1000
# The server's HNSW parameters: melodex's own HNSW uses M 32 and ef 256 (search_index.py).
HNSW_CONFIG = {"space": "ip", "ef_construction": 200, "ef_search": 256, "max_neighbors": 32}
ARRAY_COLUMNS = ("window_vectors", "window_starts", "tag_scores")
FLOAT32_COLUMNS = ("duration", "bpm", "bpm_confidence", "key_confidence", "loudness_lufs")
_ONE = [[1.0]]  # the dummy embedding of the store's own records


class NoLibraryError(StoreError):
    """The server answers but holds no library under that name (yet)."""


def _f32(value: float) -> float:
    """A float as the embedded store keeps it (a float32 column), so both read back equal."""
    return float(np.float32(value))


def _pack(array: Any) -> str:
    return base64.b64encode(np.ascontiguousarray(array, "<f4").tobytes()).decode("ascii")


def _unpack(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), "<f4")


class ChromaStore:
    """A library in a Chroma server collection; the same methods as the embedded ``Store``.

    ``lease_seconds``: how long a killed writer keeps others out. ``page_size``: records per
    read request (reads page through large collections).
    """

    def __init__(
        self,
        location: str,
        *,
        create: bool = False,
        lease_seconds: float = LEASE_SECONDS,
        page_size: int = PAGE_SIZE,
    ):
        self._where = parse_location(location)
        self.location = self._where.url
        self.path = self.location  # for messages: there is no folder
        self.lease_seconds = float(lease_seconds)
        self.page_size = int(page_size)
        self._lease: Lease | None = None
        self._client = self._connect()
        self._tracks, self._own = self._collections(create)
        self._leases = WriterLeases(
            self._own, call=self._call, server_time=self._server_time,
            location=self.location, lease_seconds=self.lease_seconds,
        )  # fmt: skip
        self._batch = self._call("read the batch limit", self._client.get_max_batch_size)
        self.meta = self._read_meta()
        self._version = self._read_version()[0]

    def __repr__(self) -> str:
        return f"ChromaStore({self.location!r})"

    # -- connection --------------------------------------------------------------------------
    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one Chroma call; its failures become StoreErrors naming the library and cause."""
        try:
            return fn(*args, **kwargs)
        except StoreError:
            raise
        except Exception as exc:  # chromadb raises ChromaError, ValueError, httpx errors
            raise StoreError(f"{self.location}: cannot {what}: {exc}") from exc

    def _connect(self) -> Any:
        try:
            import chromadb
            from chromadb.config import Settings
        except ImportError as exc:
            raise StoreError(
                f"{self.location}: a Chroma store needs the chroma extra "
                "(pip install 'melodex[chroma]')"
            ) from exc
        where = self._where
        return self._call(
            f"reach the Chroma server at {where.host}:{where.port}",
            chromadb.HttpClient,
            host=where.host,
            port=where.port,
            ssl=where.ssl,
            settings=Settings(anonymized_telemetry=False),
        )

    def _collections(self, create: bool) -> tuple[Any, Any]:
        """(tracks, the store's own records); refuses a collection melodex cannot search."""
        from chromadb.errors import NotFoundError

        name, own = self._where.collection, self._where.meta_collection
        try:
            if create:
                tracks = self._client.get_or_create_collection(
                    name, embedding_function=None, configuration={"hnsw": HNSW_CONFIG}
                )
            else:
                tracks = self._client.get_collection(name, embedding_function=None)
            space = ((tracks.configuration or {}).get("hnsw") or {}).get("space")
            if space != "ip":
                raise StoreError(
                    f"{self.location}: collection {name!r} uses the {space!r} space, melodex "
                    "needs 'ip' (inner product); was it made by another application?"
                )
            if create:
                meta = self._client.get_or_create_collection(own, embedding_function=None)
            else:
                meta = self._client.get_collection(own, embedding_function=None)
        except NotFoundError:
            raise NoLibraryError(
                f"{self.location}: no library here "
                f"(run `melodex index DIR --db {self.location}` first)"
            ) from None
        except StoreError:
            raise
        except Exception as exc:  # chromadb raises several kinds
            raise StoreError(f"{self.location}: cannot open the library: {exc}") from exc
        return tracks, meta

    def _server_time(self) -> float:
        """Seconds since the epoch on the server's clock: one clock for every writer."""
        return self._call("read the server clock", self._client.heartbeat) / 1e9

    # -- metadata: which model made these vectors -----------------------------------------
    def _read_meta(self) -> dict[str, Any]:
        got = self._call("read the store metadata", self._own.get, ids=["model"])
        if not got["ids"]:
            return {}
        meta = dict(got["metadatas"][0])
        if meta.get("format") != CHROMA_FORMAT:
            raise StoreError(
                f"{self.location}: store format {meta.get('format')!r}, "
                f"this melodex reads {CHROMA_FORMAT}"
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

        Two writers binding at once: ``add`` keeps the first, so the second one is refused.
        ``source`` and ``licence`` as for the folder store.
        """
        if not self.meta:
            meta = {
                "format": CHROMA_FORMAT,
                "model": identity,
                "model_name": name,
                "dim": int(dim),
                "created": time.time(),
            }
            meta.update({k: v for k, v in (("model_source", source), ("licence", licence)) if v})
            self._call(
                "record the model", self._own.add, ids=["model"], embeddings=_ONE, metadatas=[meta]
            )
            self.meta = self._read_meta()
        if self.meta["model"] != identity:
            raise StoreError(
                f"{self.location}: indexed with model {self.meta['model']}, not {identity}; "
                "use that model, or index into a new --db"
            )

    def check_model(self, identity: str) -> None:
        if self.meta and self.meta["model"] != identity:
            raise StoreError(
                f"{self.location}: indexed with model {self.meta['model']}, "
                f"but queries use {identity}"
            )

    @property
    def dim(self) -> int | None:
        return self.meta.get("dim")

    # -- version: a counter bumped after every write --------------------------------------
    def _read_version(self) -> tuple[int, float]:
        got = self._call("read the store version", self._own.get, ids=["version"])
        if not got["ids"]:
            return 0, 0.0
        meta = got["metadatas"][0]
        return int(meta["n"]), float(meta["newest"])

    def _bump(
        self, indexed_at: float | None = None, current: tuple[int, float] | None = None
    ) -> None:
        """Count one more write (after its rows are in, so a new version has its rows)."""
        n, newest = current or self._read_version()
        if indexed_at is not None:
            newest = max(newest, indexed_at)
        record = {"n": n + 1, "newest": newest}
        self._call(
            "bump the store version",
            self._own.upsert,
            ids=["version"],
            embeddings=_ONE,
            metadatas=[record],
        )
        self._version = n + 1

    def refresh(self) -> None:
        """See writes made by other processes since this store was opened."""
        self.meta = self._read_meta()
        self._version = self._read_version()[0]

    @property
    def version(self) -> int:
        return self._version

    def __len__(self) -> int:
        return int(self._call("count the tracks", self._tracks.count))

    # -- the single writer: a lease -------------------------------------------------------
    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the writer lease: a second indexer fails fast instead of interleaving."""
        with self._leases.holding() as lease:
            self._lease = lease
            try:
                yield
            finally:
                self._lease = None

    def _check_lease(self) -> None:
        """Before a write under ``writing()``: still the writer? (Writes outside it are allowed,
        as with the embedded store, for single-process use.)"""
        if self._lease is not None:
            self._leases.check(self._lease)

    # -- writing -----------------------------------------------------------------------------
    def upsert(self, rows: Sequence[TrackRow]) -> None:
        """Insert or replace rows by id (one Chroma call per ``max_batch_size`` rows)."""
        if not rows:
            return
        dim = self.dim
        if dim is None:
            raise StoreError(f"{self.location}: bind a model before writing")
        vectors = []
        for r in rows:
            vector = np.asarray(r.vector, np.float32)
            if vector.shape != (dim,):
                raise StoreError(f"{r.path}: vector of shape {vector.shape}, store holds {dim}-d")
            vectors.append(vector)
        self._check_lease()
        current = self._read_version()
        # Whole milliseconds: the server parses longer decimals to within one ulp only, and
        # ``vectors(since=)`` compares them; each write is later than the one before.
        now = max(round(self._server_time(), 3), round(current[1] + 0.001, 3))
        ids = [str(int(r.id)) for r in rows]
        metas = [self._metadata(r, now) for r in rows]
        matrix = np.stack(vectors)
        for start in range(0, len(rows), self._batch):
            end = start + self._batch
            self._call(
                f"write {len(ids[start:end])} tracks",
                self._tracks.upsert,
                ids=ids[start:end],
                embeddings=matrix[start:end],
                metadatas=metas[start:end],
            )
        self._bump(now, current)

    def delete(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        self._check_lease()
        keys = [str(int(i)) for i in ids]
        for start in range(0, len(keys), self._batch):
            chunk = keys[start : start + self._batch]
            self._call(f"delete {len(chunk)} tracks", self._tracks.delete, ids=chunk)
        self._bump()

    def compact(self) -> None:
        """Nothing to do: the server compacts its own log and indexes."""

    @staticmethod
    def _metadata(row: TrackRow, indexed_at: float) -> dict[str, Any]:
        """Every key, None for a missing value: an upsert merges metadata into the record it
        replaces, and only a None removes a key that the new row no longer has."""
        meta: dict[str, Any] = {
            "path": encode_path(row.path),
            "content_hash": row.content_hash,
            "size": int(row.size),
            "mtime_ns": int(row.mtime_ns),
            "indexed_at": float(indexed_at),
        }
        for name in (*META_COLUMNS, *DESCRIPTOR_COLUMNS, "duration"):
            value = getattr(row, name)
            if value is not None:
                value = _f32(value) if name in FLOAT32_COLUMNS else str(value)
            meta[name] = value
        for name in ARRAY_COLUMNS:
            value = getattr(row, name)
            meta[name] = None if value is None else _pack(value)
        meta["described"] = True if row.bpm is not None or row.key is not None else None
        meta["key_pc"] = None
        if row.key is not None:
            from melodex.descriptors import pitch_class

            with contextlib.suppress(ValueError):
                meta["key_pc"] = pitch_class(row.key) % 12
        return meta

    # -- reading -----------------------------------------------------------------------------
    def _pages(self, what: str, *, include: list[str], where: Any = None) -> Iterator[dict]:
        """Every matching record, ``page_size`` at a time (not a snapshot, see module doc)."""
        offset = 0
        while True:
            got = self._call(
                what,
                self._tracks.get,
                where=where,
                limit=self.page_size,
                offset=offset,
                include=include,
            )
            if got["ids"]:
                yield got
            if len(got["ids"]) < self.page_size:
                return
            offset += self.page_size

    def _by_ids(self, what: str, ids: Sequence[str], include: list[str]) -> Iterator[dict]:
        """Records by id, in requests of at most ``page_size`` ids; unknown ids are skipped."""
        for start in range(0, len(ids), self.page_size):
            chunk = list(ids[start : start + self.page_size])
            yield self._call(what, self._tracks.get, ids=chunk, include=include)

    def file_states(self, *, windows: bool = False) -> dict[str, FileState]:
        """As :meth:`Store.file_states` (the duration and window count ride in the metadata)."""
        states = {}
        for page in self._pages("read the file states", include=["metadatas"]):
            for key, m in zip(page["ids"], page["metadatas"], strict=True):
                path = decode_path(m["path"])
                starts = m.get("window_starts") if windows else None
                states[path] = FileState(
                    int(key),
                    path,
                    m["content_hash"],
                    int(m["size"]),
                    int(m["mtime_ns"]),
                    m.get("bpm_confidence") is not None,
                    float(m.get("duration") or 0.0) if windows else 0.0,
                    len(_unpack(starts)) if starts else 0,
                )
        return states

    def ids(self) -> np.ndarray:
        """Every track id."""
        found = [int(i) for page in self._pages("list the tracks", include=[]) for i in page["ids"]]
        return np.asarray(found, np.int64)

    def newest_indexed_at(self) -> float:
        """When the most recent row was written (0.0 for an empty store).

        The version record remembers the newest write, so usually only that batch is read; if
        those rows were deleted since, every row is.
        """
        newest = self._read_version()[1]
        where = {"indexed_at": {"$gte": newest}}
        found = [
            float(m["indexed_at"])
            for page in self._pages("read write times", include=["metadatas"], where=where)
            for m in page["metadatas"]
        ]
        if not found:
            found = [
                float(m["indexed_at"])
                for page in self._pages("read write times", include=["metadatas"])
                for m in page["metadatas"]
            ]
        return max(found, default=0.0)

    def vectors(self, *, since: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of all rows, or of rows written after ``since`` (epoch seconds)."""
        where = None if since is None else {"indexed_at": {"$gt": float(since)}}
        ids: list[int] = []
        blocks: list[np.ndarray] = []
        for page in self._pages("read the vectors", include=["embeddings"], where=where):
            ids.extend(int(i) for i in page["ids"])
            blocks.append(np.asarray(page["embeddings"], np.float32))
        if not ids:
            return np.zeros(0, np.int64), np.zeros((0, self.dim or 0), np.float32)
        return np.asarray(ids, np.int64), np.concatenate(blocks).astype(np.float32, copy=False)

    def _row(self, key: str, meta: dict | None, vector: Any, cols: Sequence[str]) -> dict:
        """One record as the embedded store returns it (lists, None for what is missing)."""
        meta = meta or {}
        out: dict[str, Any] = {}
        for col in cols:
            if col == "id":
                out[col] = int(key)
            elif col == "vector":
                out[col] = np.asarray(vector, np.float32).tolist()
            elif col in FLOAT32_COLUMNS:
                value = meta.get(col)  # exact again: the server may be one f64 ulp off
                out[col] = None if value is None else _f32(value)
            elif col in ARRAY_COLUMNS:
                text = meta.get(col)
                if text is None:
                    out[col] = None
                elif col == "window_vectors":
                    out[col] = _unpack(text).reshape(-1, self.dim or 1).tolist()
                else:
                    out[col] = _unpack(text).tolist()
            elif col == "path":
                out[col] = decode_path(meta[col])
            else:
                out[col] = meta.get(col)
        return out

    @staticmethod
    def _include(cols: Sequence[str]) -> list[str]:
        include = ["embeddings"] if "vector" in cols else []
        if set(cols) - {"id", "vector"}:
            include.append("metadatas")
        return include

    def rows(
        self, ids: Sequence[int] | None = None, *, columns: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """Rows as dicts (by id when given, in that order), as the embedded store gives them."""
        cols = list(columns or [f.name for f in schema(self.dim or 1)])
        if ids is not None:
            if len(ids) == 0:
                return []
            wanted = sorted(set(cols) | {"id"})
            include = self._include(wanted)
            found: dict[int, dict[str, Any]] = {}
            keys = list(dict.fromkeys(str(int(i)) for i in ids))
            for got in self._by_ids("read tracks", keys, include):
                for n, key in enumerate(got["ids"]):
                    found[int(key)] = self._row(key, *self._parts(got, n), wanted)
            return [found[int(i)] for i in ids if int(i) in found]
        out = []
        for page in self._pages("read tracks", include=self._include(cols)):
            for n, key in enumerate(page["ids"]):
                out.append(self._row(key, *self._parts(page, n), cols))
        return out

    @staticmethod
    def _parts(got: dict, n: int) -> tuple[dict | None, Any]:
        metas, vectors = got.get("metadatas"), got.get("embeddings")
        return (
            None if metas is None else metas[n],
            None if vectors is None else vectors[n],
        )

    def find_path(self, path: str) -> dict[str, Any] | None:
        cols = [f.name for f in schema(self.dim or 1)]
        got = self._call(
            "look up a path",
            self._tracks.get,
            where={"path": encode_path(path)},
            limit=1,
            include=["metadatas", "embeddings"],
        )
        if not got["ids"]:
            return None
        return self._row(got["ids"][0], *self._parts(got, 0), cols)

    # -- filters and native search --------------------------------------------------------
    def _filter_where(
        self, bpm: tuple[float, float] | None, key: Any, octaves: bool
    ) -> dict[str, Any] | None:
        """The Chroma ``where`` of descriptor filters (a KeyFilter or None for ``key``)."""
        clauses: list[dict[str, Any]] = []
        if bpm is not None:
            factors = (1.0, 2.0, 0.5) if octaves else (1.0,)
            # lo <= b * f <= hi  <=>  lo / f <= b <= hi / f, exactly for powers of two
            ranges = [
                {"$and": [{"bpm": {"$gte": bpm[0] / f}}, {"bpm": {"$lte": bpm[1] / f}}]}
                for f in factors
            ]
            clauses.append(ranges[0] if len(ranges) == 1 else {"$or": ranges})
        if key is not None:
            if key.mode is not None:
                clauses.append({"mode": key.mode})
            if key.pitch_class is not None:
                clauses.append({"key_pc": int(key.pitch_class)})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def _require_descriptors(self) -> None:
        """Refuse a filter on a library without descriptors. Called only when a filter matched
        nothing: a match proves descriptors exist, and this check costs a filtered read."""
        got = self._call(
            "look for descriptors",
            self._tracks.get,
            where={"described": True},
            limit=1,
            include=[],
        )
        if not got["ids"] and len(self):
            raise StoreError(
                f"{self.location}: no track has tempo/key descriptors; "
                "re-index with `melodex index DIR --descriptors` to filter by them"
            )

    def filtered_ids(
        self, *, bpm: tuple[float, float] | None = None, key: Any = None, octaves: bool = True
    ) -> np.ndarray:
        """Ids of tracks whose descriptors pass the filters (``key``: a callable on (key, mode)).

        Same rules as the embedded store; a KeyFilter and the BPM range run on the server, any
        other ``key`` callable here.
        """
        from melodex.descriptors import KeyFilter

        keep = []
        if key is None or isinstance(key, KeyFilter):
            where = self._filter_where(bpm, key, octaves)
            for page in self._pages("filter tracks", include=[], where=where):
                keep.extend(int(i) for i in page["ids"])
        else:
            where = self._filter_where(bpm, None, octaves)
            for page in self._pages("filter tracks", include=["metadatas"], where=where):
                for i, m in zip(page["ids"], page["metadatas"], strict=True):
                    if key(m.get("key"), m.get("mode")):
                        keep.append(int(i))
        if not keep:
            self._require_descriptors()
        return np.asarray(keep, np.int64)

    def search(
        self,
        vector: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
        *,
        bpm: tuple[float, float] | None = None,
        key: Any = None,
        octaves: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by inner product on the server's HNSW index: (scores, ids), best first.

        ``allowed`` restricts the candidates to those ids; ``bpm``/``key`` filter as in
        :meth:`filtered_ids`, on the server. Chroma's "ip" distance is ``1 - <q, x>``, turned
        back into the score the in-memory index gives.
        """
        from melodex.descriptors import KeyFilter

        empty = np.zeros(0, np.float32), np.zeros(0, np.int64)
        where = None
        if bpm is not None or key is not None:
            if key is None or isinstance(key, KeyFilter):
                where = self._filter_where(bpm, key, octaves)
            else:  # a key rule the server cannot run: filter here, search by ids
                passed = self.filtered_ids(bpm=bpm, key=key, octaves=octaves)
                allowed = passed if allowed is None else np.intersect1d(allowed, passed)
        ids_arg = None
        if allowed is not None:
            keys = [str(int(i)) for i in np.unique(np.asarray(allowed, np.int64))]
            # query(ids=) fails on an unknown id: keep the ones the server has
            ids_arg = [i for got in self._by_ids("read tracks", keys, []) for i in got["ids"]]
        if ids_arg == []:
            return empty
        query = np.asarray(vector, np.float32).reshape(1, -1)
        got = self._call(
            "search",
            self._tracks.query,
            query_embeddings=query,
            n_results=int(k),
            where=where,
            ids=ids_arg,
            include=["distances"],
        )
        if not got["ids"] or not got["ids"][0]:
            if where is not None:
                self._require_descriptors()
            return empty
        found = np.asarray([int(i) for i in got["ids"][0]], np.int64)
        scores = (1.0 - np.asarray(got["distances"][0], np.float64)).astype(np.float32)
        order = np.lexsort((found, -scores))  # ties by id, as the in-memory index orders them
        return scores[order], found[order]
