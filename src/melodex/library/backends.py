"""Which store a ``--db`` value names: a folder (embedded LanceDB) or a Chroma server URL.

Why one door: the indexer, :class:`~melodex.library.library.Library` and the server only use
the store interface below, so a library can move from a folder to a networked vector database
(docs/scale.md) by changing ``--db`` and nothing else.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from melodex.library.store import FileState, Store, TrackRow

_URL = re.compile(r"^chroma(\+https?)?://", re.IGNORECASE)


class LibraryStore(Protocol):
    """What the indexer, the Library and the server need of a store (both backends have it).

    A store may also offer ``search(vector, k, allowed=None, *, bpm=, key=, octaves=)`` ->
    (scores, ids): then the Library searches with it (the server's own index) instead of an
    in-memory copy of every vector.
    """

    path: Any
    meta: dict[str, Any]

    def bind_model(
        self,
        identity: str,
        name: str,
        dim: int,
        *,
        source: str | None = None,
        licence: str | None = None,
    ) -> None: ...
    def check_model(self, identity: str) -> None: ...
    @property
    def dim(self) -> int | None: ...
    def refresh(self) -> None: ...
    @property
    def version(self) -> int: ...
    def __len__(self) -> int: ...
    def writing(self) -> AbstractContextManager[None]: ...
    def file_states(self, *, windows: bool = False) -> dict[str, FileState]: ...
    def upsert(self, rows: Sequence[TrackRow]) -> None: ...
    def delete(self, ids: Sequence[int]) -> None: ...
    def compact(self) -> None: ...
    def ids(self) -> np.ndarray: ...
    def newest_indexed_at(self) -> float: ...
    def vectors(self, *, since: float | None = None) -> tuple[np.ndarray, np.ndarray]: ...
    def rows(
        self, ids: Sequence[int] | None = None, *, columns: Sequence[str] | None = None
    ) -> list[dict[str, Any]]: ...
    def filtered_ids(
        self, *, bpm: tuple[float, float] | None = None, key: Any = None, octaves: bool = True
    ) -> np.ndarray: ...
    def find_path(self, path: str) -> dict[str, Any] | None: ...


def is_store_url(location: str | Path | None) -> bool:
    """Whether ``location`` names a networked store (``chroma://``, ``chroma+https://``)."""
    return isinstance(location, str) and bool(_URL.match(location.strip()))


def as_location(location: str | Path) -> str | Path:
    """A URL stays a string; anything else is a folder (``~`` expanded), as before URLs."""
    if is_store_url(location):
        return str(location).strip()
    return Path(os.path.expanduser(location))  # pathlib raises on an unknown ~user


def open_store(location: str | Path, *, create: bool = False) -> LibraryStore:
    """Open the store ``location`` names: a folder -> :class:`Store`, a Chroma URL ->
    :class:`~melodex.library.chroma_store.ChromaStore`; ``create`` makes an empty one."""
    if is_store_url(location):
        from melodex.library.chroma_store import ChromaStore

        return ChromaStore(str(location), create=create)
    return Store(location, create=create)


def open_existing(location: str | Path) -> LibraryStore | None:
    """The store at ``location``, or None when there is no library there yet (a missing
    folder or collection); an unreachable server is an error, not an empty library."""
    if not is_store_url(location):
        return Store(location) if Path(location).exists() else None
    from melodex.library.chroma_store import ChromaStore, NoLibraryError

    try:
        return ChromaStore(str(location))
    except NoLibraryError:
        return None
