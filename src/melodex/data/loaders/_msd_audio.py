"""Where a Million Song Dataset track's audio is, in the layouts the MSD-based releases use.

The MSD previews are 7digital clips stored by 7digital path (``8/9/8947470.clip.mp3``), not by
MSD track id. The releases map one to the other in different ways, all read here:

- MSD-eCALS / TTMR: ``lastfm_annotation/MSD_id_to_7D_id.pkl`` (MSD id -> 7digital id) and
  ``lastfm_annotation/7D_id_to_path.pkl`` (7digital id -> path), plain-dict pickles read with
  a loader that refuses any class or function (`melodex.data.plain_pickle`);
- TTMR++'s OLGA/MSD folders: ``track_meta.json`` ``{msd_id: {"path": ...}}``;
- a user's own map: the ``track_paths`` option, a JSON object ``{msd_id: path}`` (or
  ``{msd_id: {"path": path}}``) or a two-column TSV ``msd_id<TAB>path``.

With a map, a track's file is ``<songs>/<path>`` (mp3) or, with ``npy="ttmr"`` /
``npy="ttmr-pp"``, ``<npy>/<path with .mp3 -> .npy>`` (the pre-decoded waveforms, see
`melodex.data.waveforms`). Without one, files named by MSD id (``TRAAAAW128F429D538.mp3``, or
``.npy``) are searched under the audio folder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from melodex.data.loaders._common import (
    AUDIO_EXTS,
    DatasetFormatError,
    bad_row,
    first_existing,
    index_audio,
    read_json_file,
    read_lines,
)
from melodex.data.plain_pickle import load_plain_pickle
from melodex.data.waveforms import waveform_spec

MSD_ID = re.compile(r"TR[A-Z0-9]{16}")
PICKLES = ("lastfm_annotation/MSD_id_to_7D_id.pkl", "lastfm_annotation/7D_id_to_path.pkl")


def _as_key(value: Any) -> Any:
    return value.decode("latin1") if isinstance(value, bytes) else value


def _pickled_map(msd_to_7d: Path, id_to_path: Path) -> dict[str, str]:
    first = load_plain_pickle(msd_to_7d, what="MSD id -> 7digital id pickle")
    second = load_plain_pickle(id_to_path, what="7digital id -> path pickle")
    if not isinstance(first, dict) or not isinstance(second, dict):
        raise DatasetFormatError(f"{msd_to_7d} and {id_to_path} must each hold a dict")
    paths = {str(_as_key(k)): str(_as_key(v)) for k, v in second.items()}
    out = {}
    for msd_id, seven in first.items():
        path = paths.get(str(_as_key(seven)))
        if path is not None:
            out[str(_as_key(msd_id))] = path
    return out


def _json_map(path: Path) -> dict[str, str]:
    data = read_json_file(path)
    if not isinstance(data, dict):
        raise bad_row(path, None, "expected an object of MSD track id -> path")
    out = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            value = value.get("path")
        if not isinstance(value, str) or not value.strip():
            raise bad_row(path, None, f"track {key!r} has no path string")
        out[str(key)] = value.strip()
    return out


def read_track_paths(path: Path) -> dict[str, str]:
    """``{msd_id: 7digital path}`` from a JSON map or a two-column TSV (a first line whose first
    field is not an MSD track id is a header and skipped)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(f"track path map not found: {path}")
    if path.suffix.lower() == ".json":
        return _json_map(path)
    out: dict[str, str] = {}
    for line, text in read_lines(path):
        parts = [p.strip() for p in text.split("\t")]
        if line == 1 and not MSD_ID.fullmatch(parts[0]):
            continue
        if len(parts) != 2 or not all(parts):
            raise bad_row(path, line, "expected msd_id<TAB>path")
        out[parts[0]] = parts[1]
    return out


class MsdAudio:
    """Resolves MSD track ids to audio files (see the module docstring)."""

    def __init__(
        self,
        root: Path,
        *,
        audio_root: Path | None,
        track_paths: Path | None = None,
        npy: str | None = None,
        npy_sample_rate: int | None = None,
        meta_paths: Mapping[str, str] | None = None,
    ) -> None:
        self.waveform = waveform_spec(npy, npy_sample_rate) if npy else None
        self.map: dict[str, str] | None = None
        self.source = "files named by MSD track id"
        if track_paths is not None:
            self.map, self.source = read_track_paths(Path(track_paths)), str(track_paths)
        elif meta_paths:
            self.map, self.source = dict(meta_paths), "track_meta.json paths"
        else:
            found = [root / p for p in PICKLES]
            if all(p.is_file() for p in found):
                self.map = _pickled_map(*found)
                self.source = "lastfm_annotation 7digital pickles"
            elif any(p.is_file() for p in found):
                missing = [str(p) for p in found if not p.is_file()]
                raise DatasetFormatError(f"one of the two 7digital pickles is missing: {missing}")
        if self.map is not None:
            sub = "npy" if npy else "songs"
            self.folder = Path(audio_root) if audio_root else first_existing(root / sub) or root
            self.index: dict[str, Path] = {}
        else:
            self.folder = Path(audio_root) if audio_root else first_existing(root / "audio") or root
            exts = (".npy",) if npy else AUDIO_EXTS
            self.index = index_audio(self.folder, exts=exts)

    def path(self, msd_id: str) -> Path:
        """The file the track's audio should be in (it may be absent)."""
        if self.map is None:
            default = self.folder / f"{msd_id}{'.npy' if self.waveform else '.mp3'}"
            return self.index.get(msd_id, default)
        rel = self.map.get(msd_id)
        if rel is None:
            return self.folder / "(no 7digital path)" / msd_id
        if self.waveform:
            rel = rel[: -len(".mp3")] + ".npy" if rel.endswith(".mp3") else rel + ".npy"
        return self.folder / rel

    def extra(self, msd_id: str) -> dict[str, Any]:
        """What an item records about its audio: the 7digital path and the npy encoding."""
        out: dict[str, Any] = {}
        if self.map is not None and msd_id in self.map:
            out["7digital_path"] = self.map[msd_id]
        if self.waveform:
            out["waveform"] = dict(self.waveform)
        return out

    def unmapped(self, ids: list[str]) -> int:
        return 0 if self.map is None else sum(i not in self.map for i in ids)
