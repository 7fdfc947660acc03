"""AcousticBrainz low-level documents as a fixed audio feature vector (MARD's audio side).

MARD ships no audio: for each album mapped to MusicBrainz it ships the AcousticBrainz low-level
document of one track, ``acousticbrainz_descriptors/<amazon-id>_<recording mbid>.json`` (the
two-branch seed paper fetched more, one per track, in the same format). That paper's audio
branch reads MFCCs, the zero-crossing rate and the spectral roll-off from these documents; this
module turns a document into one float vector with those parts, in a fixed, named order
(`DESCRIPTOR_NAMES`), so a trainer, a saved model or a linear baseline can use it as the audio
input:

- ``mfcc.mean`` (13), ``mfcc.cov`` (13 x 13, row-major, 169), ``mfcc.icov`` (13 x 13, 169);
- ``zerocrossingrate`` and ``spectral_rolloff``, 9 statistics each in the order of
  `STATISTICS` (``dmean, dmean2, dvar, dvar2, max, mean, median, min, var``).

That is 369 values (`DESCRIPTOR_DIM`; the research notes' "370" counted one too many). The
values are raw (the roll-off is in Hz, its variance in Hz^2): standardise them on the training
split before a model sees them (the ``handcrafted_mlp`` encoder stores the statistics).

It lives among the foundations (beside audio decoding, not in ``melodex.data``) because a saved
model reads these files at embedding time, and the models layer imports no dataset code;
``melodex.data.acousticbrainz`` re-exports it for the loaders. Every problem is a
`DatasetFormatError` naming the file (and the line, for bad JSON) and the field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from melodex.errors import DatasetFormatError

__all__ = [
    "DESCRIPTOR_DIM",
    "DESCRIPTOR_NAMES",
    "FEATURE_SET",
    "STATISTICS",
    "descriptor_duration",
    "descriptor_vector",
    "read_lowlevel",
]

#: The name manifests carry in ``extra["audio_features"]`` for items whose ``audio`` is such a
#: document (MARD with ``audio_source="descriptors"``).
FEATURE_SET = "acousticbrainz-lowlevel-mfcc-zcr-rolloff-v1"
STATISTICS = ("dmean", "dmean2", "dvar", "dvar2", "max", "mean", "median", "min", "var")
_MFCC = 13


def _names() -> list[str]:
    names = [f"mfcc.mean[{i}]" for i in range(_MFCC)]
    for part in ("cov", "icov"):
        names += [f"mfcc.{part}[{i},{j}]" for i in range(_MFCC) for j in range(_MFCC)]
    for field in ("zerocrossingrate", "spectral_rolloff"):
        names += [f"{field}.{s}" for s in STATISTICS]
    return names


DESCRIPTOR_NAMES: tuple[str, ...] = tuple(_names())
DESCRIPTOR_DIM = len(DESCRIPTOR_NAMES)


def _read_json(path: Path) -> Any:
    """The JSON document of ``path``: bad bytes and bad JSON name the file and the line.

    Bare ``NaN`` is read as None (then refused as non-numeric by the field checks)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        byte = raw[exc.start : exc.start + 1].hex()
        raise DatasetFormatError(f"{path}:{line}: not UTF-8 text (byte 0x{byte})") from None
    try:
        return json.loads(text, parse_constant=lambda _: None)
    except json.JSONDecodeError as exc:
        raise DatasetFormatError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    except RecursionError:
        raise DatasetFormatError(f"{path}: invalid JSON (nested too deeply)") from None


def read_lowlevel(path: str | Path) -> dict[str, Any]:
    """An AcousticBrainz low-level document (a JSON object with a ``lowlevel`` object)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(f"AcousticBrainz descriptor file not found: {path}")
    doc = _read_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("lowlevel"), dict):
        raise DatasetFormatError(
            f"{path}: not an AcousticBrainz low-level document (no 'lowlevel')"
        )
    return doc


def _matrix(value: Any, shape: tuple[int, ...], where: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DatasetFormatError(f"{where} is not numeric") from None
    if arr.shape != shape:
        raise DatasetFormatError(f"{where} has shape {arr.shape}, expected {shape}")
    if not np.isfinite(arr).all():
        raise DatasetFormatError(f"{where} has non-finite values")
    return arr


def descriptor_vector(
    source: str | Path | Mapping[str, Any], *, where: str | None = None
) -> np.ndarray:
    """The `DESCRIPTOR_DIM` float32 vector of one document (a path or the parsed object).

    Raises `DatasetFormatError` naming the file (``where`` names a parsed object's file) and
    the missing or malformed field.
    """
    doc = read_lowlevel(source) if isinstance(source, str | Path) else dict(source)
    if where is None:
        where = str(source) if isinstance(source, str | Path) else "descriptor"
    low = doc.get("lowlevel")
    if not isinstance(low, Mapping):
        raise DatasetFormatError(f"{where}: no 'lowlevel' object")
    mfcc = low.get("mfcc")
    if not isinstance(mfcc, Mapping):
        raise DatasetFormatError(f"{where}: lowlevel.mfcc missing")
    parts = [
        _matrix(mfcc.get("mean"), (_MFCC,), f"{where}: lowlevel.mfcc.mean"),
        _matrix(mfcc.get("cov"), (_MFCC, _MFCC), f"{where}: lowlevel.mfcc.cov").ravel(),
        _matrix(mfcc.get("icov"), (_MFCC, _MFCC), f"{where}: lowlevel.mfcc.icov").ravel(),
    ]
    for field in ("zerocrossingrate", "spectral_rolloff"):
        stats = low.get(field)
        if not isinstance(stats, Mapping) or any(s not in stats for s in STATISTICS):
            raise DatasetFormatError(f"{where}: lowlevel.{field} lacks one of {STATISTICS}")
        parts.append(
            _matrix([stats[s] for s in STATISTICS], (len(STATISTICS),), f"{where}: {field}")
        )
    vector = np.concatenate(parts)
    if np.abs(vector).max() > np.finfo(np.float32).max:
        raise DatasetFormatError(f"{where}: a value overflows float32")
    return vector.astype(np.float32)


def descriptor_duration(doc: Mapping[str, Any]) -> float | None:
    """The analysed track's length in seconds (``metadata.audio_properties.length``), if the
    document states a positive, finite one."""
    props = (doc.get("metadata") or {}).get("audio_properties") or {}
    length = props.get("length") if isinstance(props, Mapping) else None
    numeric = isinstance(length, int | float) and not isinstance(length, bool)
    return float(length) if numeric and math.isfinite(length) and length > 0 else None
