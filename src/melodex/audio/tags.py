"""Title, artist, album and genre from a file's tags (mutagen, then libsndfile or FFmpeg)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import av
import mutagen
import mutagen.asf
import soundfile as sf

from melodex.audio.decode import _AV_TIMEOUT, _sf_name
from melodex.audio.formats import (
    _ASF_KEYS,
    _ID3_FRAMES,
    _PYAV_EXTENSIONS,
    _SOUNDFILE_EXTENSIONS,
    _TAG_KEYS,
    _check_file,
    check_header,
)
from melodex.errors import AudioDecodeError


def _clean(values: object) -> str | None:
    """Tag values (a list, a frame, a string) as one stripped string, or None when empty."""
    if isinstance(values, str):
        items = [values]
    elif hasattr(values, "text"):  # an ID3 text frame
        items = [str(v) for v in values.text]
    else:
        try:
            items = [str(v) for v in values]  # type: ignore[union-attr]
        except TypeError:
            items = [str(values)]
    items = list(dict.fromkeys(v.strip() for v in items if v is not None and v.strip()))
    return "; ".join(items) if items else None


def read_tags(path: str | os.PathLike[str]) -> dict[str, str]:
    """Title, artist, album, genre (date, tracknumber) from the file's tags; absent keys omitted.

    Uses mutagen's easy interfaces (ID3, Vorbis comments, FLAC, MP4 atoms); ID3 chunks in WAV and
    AIFF are mapped by frame; RIFF INFO chunks (what ffmpeg and libsndfile write into WAV) are read
    through libsndfile. Multiple values are joined with "; ". A file without tags, or that mutagen
    cannot parse, gives ``{}``. Raises :class:`AudioDecodeError` only when the path itself is
    missing, a directory, or unreadable.
    """
    path = Path(path)
    _check_file(path)
    tags: dict[str, str] = {}
    try:
        f = mutagen.File(path, easy=True)
    except Exception:  # mutagen raises many types on garbage; the contract is "no tags"
        f = None
    raw = getattr(f, "tags", None) if f is not None else None
    if raw is not None:
        try:
            tags = _mutagen_tags(raw)
        except Exception:  # a malformed frame: read what the other readers find
            tags = {}
    if not tags and _has_header(path):  # the readers below open the whole file
        if path.suffix.lower() in _SOUNDFILE_EXTENSIONS:
            tags = _soundfile_tags(path)
        if not tags and path.suffix.lower() in _PYAV_EXTENSIONS:
            tags = _ffmpeg_tags(path)
    return tags


def _has_header(path: Path) -> bool:
    try:
        check_header(path)
    except AudioDecodeError:
        return False
    return True


def _mutagen_tags(raw: Any) -> dict[str, str]:
    """The keys melodex keeps from mutagen's view of a file's tags."""
    tags: dict[str, str] = {}
    if all(hasattr(raw, name) for name in ("getall", "version")):  # a bare ID3 (WAV/AIFF)
        for frame_id, key in _ID3_FRAMES.items():
            frames = raw.getall(frame_id)
            value = _clean([t for fr in frames for t in fr.text]) if frames else None
            if value:
                tags[key] = value
    elif isinstance(raw, mutagen.asf.ASFTags):
        for name, key in _ASF_KEYS.items():
            value = _clean(raw[name]) if name in raw else None
            if value:
                tags[key] = value
    else:
        for key in _TAG_KEYS:
            try:
                value = _clean(raw[key]) if key in raw else None
            except (KeyError, ValueError, TypeError):
                value = None
            if value:
                tags[key] = value
    return tags


def _ffmpeg_tags(path: Path) -> dict[str, str]:
    """Container metadata as FFmpeg sees it (Matroska and others mutagen does not parse)."""
    try:
        with av.open(str(path), mode="r", timeout=_AV_TIMEOUT) as container:
            meta = {k.lower(): v for k, v in container.metadata.items()}
            for stream in container.streams.audio[:1]:
                meta.update(
                    {k.lower(): v for k, v in stream.metadata.items() if k.lower() not in meta}
                )
    except Exception:  # not readable by FFmpeg: no tags, by contract
        return {}
    meta.setdefault("tracknumber", meta.get("track", ""))
    return {key: meta[key].strip() for key in _TAG_KEYS if meta.get(key, "").strip()}


def _soundfile_tags(path: Path) -> dict[str, str]:
    """RIFF INFO / AIFF text chunks, which mutagen does not read."""
    try:
        with sf.SoundFile(_sf_name(path)) as f:
            found = {key: getattr(f, key, "") for key in _TAG_KEYS}
    except Exception:  # not readable by libsndfile: no tags, by contract
        return {}
    return {key: value.strip() for key, value in found.items() if value and value.strip()}
