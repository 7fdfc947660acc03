"""Feature cache: compute front-end or frozen-backbone features once, read them memory-mapped.

CPU training cannot afford to decode audio and run a backbone at every step. Features are keyed
by the audio file's content hash and the extractor's key (which encodes every parameter that
changes the numbers), so a renamed file hits the cache and a changed front-end misses it.

Layout: ``<root>/<hash of the extractor key>/<content hash>.npy`` (the key itself is written
to ``key.txt`` beside them), one float32 array per item of shape
(windows, *feature shape). Each file is written to a temporary name and renamed, so a killed
run leaves no half-written entry. ``pack()`` concatenates a split's items into one contiguous
memory-mapped array with offsets, which is what the trainer reads.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from melodex.errors import MelodexError
from melodex.progress import ProgressFn

Extractor = Callable[[Path], np.ndarray]
"""path -> (windows, *shape) float32 features."""


def content_hash(path: str | Path) -> str:
    """BLAKE2b-128 of a file's bytes (the same hash the library store uses)."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class PackedFeatures:
    """A split's features in one array: item i owns rows offsets[i]:offsets[i+1]."""

    ids: list[str]
    offsets: np.ndarray  # (N + 1,) int64
    data: np.ndarray  # (total windows, *shape) float32, usually a read-only memmap

    def item(self, i: int) -> np.ndarray:
        return self.data[self.offsets[i] : self.offsets[i + 1]]

    def pooled(self) -> np.ndarray:
        """(N, *shape) mean over each item's windows."""
        return np.stack([self.item(i).mean(axis=0) for i in range(len(self.ids))])


class FeatureCache:
    """A folder of cached features for one extractor (see module docstring)."""

    def __init__(self, root: str | Path, key: str):
        if not key:
            raise MelodexError("feature cache key must not be empty")
        folder_name = hashlib.blake2b(key.encode(), digest_size=8).hexdigest()
        self.folder = Path(root).expanduser() / folder_name
        self.folder.mkdir(parents=True, exist_ok=True)
        key_file = self.folder / "key.txt"
        if not key_file.exists():
            key_file.write_text(key + "\n")
        self.key = key

    def path_for(self, digest: str) -> Path:
        return self.folder / f"{digest}.npy"

    def get(
        self, audio: str | Path, extract: Extractor, *, digest: str | None = None
    ) -> np.ndarray:
        """Cached features of ``audio``, computed with ``extract`` on a miss."""
        digest = digest or content_hash(audio)
        target = self.path_for(digest)
        if target.exists():
            try:
                return np.load(target, mmap_mode="r")
            except (OSError, ValueError):
                target.unlink(missing_ok=True)  # damaged entry: recompute it
        features = np.ascontiguousarray(extract(Path(audio)), dtype=np.float32)
        if features.ndim < 2 or len(features) == 0:
            raise MelodexError(
                f"{audio}: extractor returned shape {features.shape}, need (windows, ...)"
            )
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.save(f, features)
        os.replace(tmp, target)
        return features

    def fill(
        self,
        audios: Sequence[str | Path],
        extract: Extractor,
        *,
        progress: ProgressFn | None = None,
        on_error: Callable[[str, Exception], None] | None = None,
    ) -> list[str | None]:
        """Make sure every file is cached; returns each file's digest (None where it failed)."""
        digests: list[str | None] = []
        for i, audio in enumerate(audios, start=1):
            try:
                digest = content_hash(audio)
                self.get(audio, extract, digest=digest)
                digests.append(digest)
            except (MelodexError, OSError) as exc:
                if on_error is None:
                    raise
                on_error(str(audio), exc)
                digests.append(None)
            if progress is not None:
                progress(i, len(audios), str(audio))
        return digests

    def pack(self, name: str, ids: Sequence[str], digests: Sequence[str]) -> PackedFeatures:
        """Concatenate items into ``<name>.npy`` + ``<name>.json`` (rebuilt when inputs change)."""
        data_path = self.folder / f"{name}.packed.npy"
        meta_path = self.folder / f"{name}.packed.json"
        fingerprint = hashlib.blake2b("\n".join(digests).encode(), digest_size=8).hexdigest()
        if meta_path.exists() and data_path.exists():
            meta = json.loads(meta_path.read_text())
            if meta.get("fingerprint") == fingerprint and meta.get("ids") == list(ids):
                return PackedFeatures(
                    list(ids),
                    np.asarray(meta["offsets"], np.int64),
                    np.load(data_path, mmap_mode="r"),
                )
        arrays = [np.load(self.path_for(d), mmap_mode="r") for d in digests]
        if not arrays:
            raise MelodexError(f"nothing to pack for {name!r}")
        offsets = np.concatenate([[0], np.cumsum([len(a) for a in arrays])]).astype(np.int64)
        shape = (int(offsets[-1]), *arrays[0].shape[1:])
        tmp = data_path.with_name(f".{data_path.name}.{os.getpid()}.tmp")
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
        for a, start in zip(arrays, offsets[:-1], strict=True):
            out[start : start + len(a)] = a
        out.flush()
        del out
        os.replace(tmp, data_path)
        meta_tmp = meta_path.with_suffix(".tmp")
        meta_tmp.write_text(
            json.dumps({"fingerprint": fingerprint, "ids": list(ids), "offsets": offsets.tolist()})
        )
        os.replace(meta_tmp, meta_path)
        return PackedFeatures(list(ids), offsets, np.load(data_path, mmap_mode="r"))
