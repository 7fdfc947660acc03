"""Embed the tracks of a manifest split for evaluation: deterministic, cached, failure-tolerant.

Conventions
-----------
Whole-track pooling, every window
    Each item is embedded with ``max_windows=None``: every window of the track (or of its
    ``start``/``end`` segment) is encoded and pooled as the model pools (mean of raw window outputs,
    then L2-normalised). A model's ``config.max_windows`` is a speed limit for indexing; evaluation
    ignores it so that no window selection can move a score, and a result depends on the audio and
    the weights only.
Segments and pre-decoded waveforms
    An item with ``start`` and/or ``end`` is decoded with
    ``load_audio(path, sr=model.config.sample_rate, offset=start, duration=end - start)`` and
    embedded with ``model.embed_waveform``; an item without them goes through ``model.embed_file``.
    A ``.npy`` item (MSD-eCALS and OLGA with ``audio_format="npy"``) is decoded as its
    ``extra["waveform"]`` says (:mod:`melodex.data.waveforms`) and embedded with
    ``model.embed_waveform``.
Cache
    One ``.npz`` per (model identity, file content hash, start, end) under
    ``<cache_dir>/<model identity>/``; written atomically, so an interrupted run leaves no partial
    entry. The identity changes with the weights, the content hash with the audio, so a stale entry
    is never read. Delete the folder to reclaim the space.
Failures
    A file that cannot be decoded or embedded is listed in :attr:`AudioEmbeddings.failures` with
    the reason and left out of every task; the run goes on.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from melodex.errors import ParameterError
from melodex.models import AudioEmbedding, JointModel
from melodex.progress import ProgressFn

__all__ = ["AudioEmbeddings", "default_cache_dir", "embed_items"]

#: Bump when the way evaluation embeds a track changes (invalidates every cache entry).
EMBED_VERSION = "eval-1"


@dataclass
class AudioEmbeddings:
    """The embedded tracks of one split for one model, in manifest order.

    ``ids[i]`` has pooled vector ``vectors[i]`` (D,) and pooled tag confidences
    ``tag_scores[i]`` (T,). ``failures`` lists ``(id, reason)`` of items left out.
    """

    model_identity: str
    ids: list[str]
    vectors: np.ndarray  # (N, D) float32, L2-normalised
    tag_scores: np.ndarray  # (N, T) float32
    failures: list[tuple[str, str]] = field(default_factory=list)
    cache_hits: int = 0

    def __post_init__(self) -> None:
        self._row = {item_id: i for i, item_id in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._row

    def row(self, item_id: str) -> int:
        return self._row[item_id]

    def rows(self, item_ids: Sequence[str]) -> np.ndarray:
        """Row indices of ``item_ids`` (all must be embedded)."""
        return np.array([self._row[i] for i in item_ids], dtype=np.int64)


def default_cache_dir() -> Path:
    """``$MELODEX_CACHE/eval-embeddings`` or the user cache folder's ``melodex/eval-embeddings``."""
    root = os.environ.get("MELODEX_CACHE")
    if root:
        return Path(root).expanduser() / "eval-embeddings"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("melodex")) / "eval-embeddings"


def _content_hash(path: Path) -> str:
    from melodex.data.features import content_hash

    return content_hash(path)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._@-]+", "_", name)[:120]


def _cache_path(
    cache_dir: Path, identity: str, digest: str, start: Any, end: Any, waveform: Any = None
) -> Path:
    how = f"{EMBED_VERSION}|{start!r}|{end!r}" + (
        f"|{sorted(waveform.items())!r}" if waveform else ""
    )
    span = hashlib.blake2b(how.encode(), digest_size=6).hexdigest()
    return cache_dir / _safe(identity) / f"{digest}-{span}.npz"


def _read_cached(path: Path) -> AudioEmbedding | None:
    try:
        with np.load(path) as z:
            return AudioEmbedding(
                vector=z["vector"],
                window_vectors=z["window_vectors"],
                window_starts=z["window_starts"],
                duration=float(z["duration"]),
                tag_scores=z["tag_scores"],
            )
    except (OSError, KeyError, ValueError):
        return None  # missing or damaged: recompute


def _write_cached(path: Path, emb: AudioEmbedding) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    with tmp.open("wb") as fh:
        np.savez(
            fh,
            vector=emb.vector,
            window_vectors=emb.window_vectors,
            window_starts=emb.window_starts,
            duration=np.float64(emb.duration),
            tag_scores=emb.tag_scores,
        )
    os.replace(tmp, path)


def embed_item(
    model: JointModel,
    path: Path,
    *,
    start: Any = None,
    end: Any = None,
    waveform: Mapping[str, Any] | None = None,
) -> AudioEmbedding:
    """One track (or its ``[start, end)`` segment, seconds) with every window, no sampling.

    A pre-decoded ``.npy`` waveform is read as its ``waveform`` spec says
    (`melodex.data.waveforms`)."""
    is_npy = Path(path).suffix.lower() == ".npy"
    if start is None and end is None and not is_npy:
        return model.embed_file(path, max_windows=None)
    from melodex.data.waveforms import load_item_audio

    offset = float(start or 0.0)
    duration = None if end is None else float(end) - offset
    if duration is not None and duration <= 0:
        raise ParameterError(f"end ({end}) is not after start ({start})")
    y = load_item_audio(
        path, sr=model.config.sample_rate, offset=offset, duration=duration, waveform=waveform
    )
    return model.embed_waveform(y, max_windows=None)


def embed_items(
    model: JointModel,
    items: Sequence[Mapping[str, Any]],
    *,
    root: str | Path,
    cache_dir: str | Path | None = None,
    progress: ProgressFn | None = None,
) -> AudioEmbeddings:
    """Embed every item's audio (``root / item["audio"]``) with ``model``.

    Parameters
    ----------
    model : JointModel
    items : manifest entries (``id``, ``audio``, optional ``start``/``end``)
    root : the manifest's folder (audio paths are relative to it)
    cache_dir : where embeddings are cached; None disables the cache
    progress : called as ``progress(done, total, path)`` after each item

    Returns
    -------
    AudioEmbeddings
        The items that embedded, in order, and the ``(id, reason)`` of those that did not.
    """
    root = Path(root)
    cache = Path(cache_dir) if cache_dir is not None else None
    identity = model.identity
    ids: list[str] = []
    vectors: list[np.ndarray] = []
    tags: list[np.ndarray] = []
    failures: list[tuple[str, str]] = []
    hits = 0
    total = len(items)
    for done, item in enumerate(items, start=1):
        path = root / item["audio"]
        start, end = item.get("start"), item.get("end")
        try:
            emb = None
            target = None
            waveform = (item.get("extra") or {}).get("waveform")
            if cache is not None:
                target = _cache_path(cache, identity, _content_hash(path), start, end, waveform)
                emb = _read_cached(target)
                hits += emb is not None
            if emb is None:
                emb = embed_item(model, path, start=start, end=end, waveform=waveform)
                if target is not None:
                    _write_cached(target, emb)
            vec = np.asarray(emb.vector, dtype=np.float32)
            if vec.ndim != 1 or not np.isfinite(vec).all():
                raise ParameterError(f"model returned a bad vector (shape {vec.shape})")
        except Exception as exc:  # a bad file must not end an evaluation; it is reported
            failures.append((str(item["id"]), f"{path}: {type(exc).__name__}: {exc}"))
        else:
            ids.append(str(item["id"]))
            vectors.append(vec)
            tags.append(np.asarray(emb.tag_scores, dtype=np.float32).ravel())
        if progress is not None:
            progress(done, total, str(path))
    dim = int(getattr(model, "dim", 0) or 0)
    n_tags = len(tags[0]) if tags else 0
    return AudioEmbeddings(
        model_identity=identity,
        ids=ids,
        vectors=np.stack(vectors) if vectors else np.zeros((0, dim), np.float32),
        tag_scores=np.stack(tags) if tags else np.zeros((0, n_tags), np.float32),
        failures=failures,
        cache_hits=hits,
    )
