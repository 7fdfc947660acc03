"""Loaders from each dataset's distributed files into the manifest schema.

    >>> result = load_dataset("musiccaps", Path("~/data/musiccaps").expanduser())
    >>> result.missing_audio[:3], result.warnings
    >>> write_loaded(result, Path("manifests/musiccaps.jsonl"))

Every loader is a function ``load(root, *, audio_root=None, **options) -> LoadResult``, in one
module per dataset whose docstring says which files it expects and how it splits. `LOADERS` maps
names (and a few aliases) to them.

Decisions shared by all loaders:

- Items whose audio file is absent (or empty) are *left out* of ``items`` and their ids listed
  in ``missing_audio``, so a written manifest always passes ``read_manifest`` with its audio
  check; nothing crashes on missing audio.
- A malformed row raises `DatasetFormatError` (a `MelodexError`) naming the file and line.
- Ids are ``<dataset>:<id in the dataset>`` (``mtt:2``, ``fma:2``), unique across datasets.
- Texts of finer kinds (``review``, ``mined``) fall back to ``caption`` while the manifest does not
  accept them, and always carry a ``source`` (``mard:review``) telling their origin.
- Datasets without an official split get a seeded hash split, stable and order-free, by the key
  each module names (album for MARD); their warnings say so.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from melodex.data.loaders import (
    dimsim,
    fma,
    gtzan,
    magnatagatune,
    mard,
    msd_ecals,
    musiccaps,
    olga,
    song_describer,
    wikimute,
)
from melodex.data.loaders._common import DatasetFormatError, LoadResult, hash_split
from melodex.data.manifest import write_manifest
from melodex.errors import MelodexError

__all__ = [
    "DATASETS",
    "LOADERS",
    "DatasetFormatError",
    "LoadResult",
    "hash_split",
    "load_dataset",
    "write_loaded",
]

Loader = Callable[..., LoadResult]

LOADERS: dict[str, Loader] = {
    "magnatagatune": magnatagatune.load,
    "msd-ecals": msd_ecals.load,
    "musiccaps": musiccaps.load,
    "song-describer": song_describer.load,
    "wikimute": wikimute.load,
    "mard": mard.load,
    "gtzan": gtzan.load,
    "fma": fma.load,
    "olga": olga.load,
    "dim-sim": dimsim.load,
}
#: The eight text-music datasets; ``olga`` and ``dim-sim`` hold the clips of TTMR++'s similarity
#: protocols (artist graph, voted triplets).
DATASETS = tuple(LOADERS)[:8]
ALIASES = {
    "mtt": "magnatagatune",
    "ecals": "msd-ecals",
    "sdd": "song-describer",
    "dimsim": "dim-sim",
}


def load_dataset(
    name: str, root: str | Path, *, audio_root: str | Path | None = None, **options: Any
) -> LoadResult:
    """Read dataset ``name`` from its distributed files under ``root``.

    ``audio_root`` overrides where the audio is looked for (each module gives its default);
    ``options`` are the loader's own keyword options (its module docstring lists them).
    Raises `MelodexError` for an unknown name or option, `DatasetFormatError` for bad files.
    """
    key = ALIASES.get(name.lower(), name.lower())
    if key not in LOADERS:
        raise MelodexError(f"unknown dataset {name!r} (known: {sorted(LOADERS)})")
    loader = LOADERS[key]
    accepted = set(inspect.signature(loader).parameters) - {"root", "audio_root"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise MelodexError(
            f"{key} loader has no option(s) {unknown} (accepted: {sorted(accepted)})"
        )
    root = Path(root)
    if not root.is_dir():
        raise MelodexError(f"{key} dataset folder not found: {root}")
    return loader(root, audio_root=Path(audio_root) if audio_root else None, **options)


def write_loaded(
    result: LoadResult, out_manifest: str | Path, *, include_missing: bool = False
) -> Path:
    """Write ``result.items`` as a manifest at ``out_manifest``, audio paths made relative to its
    folder (``../`` where needed); return the path.

    ``include_missing=True`` writes every item, with or without its audio, in dataset order (a
    manifest "from metadata alone": read it with ``read_manifest(check_audio=False)`` until the
    audio is there)."""
    out_manifest = Path(out_manifest)
    folder = out_manifest.parent.resolve()
    items = []
    for item in result.every_item if include_missing else result.items:
        audio = Path(item["audio"]).resolve()
        items.append(item | {"audio": Path(os.path.relpath(audio, folder)).as_posix()})
    return write_manifest(out_manifest, items)
