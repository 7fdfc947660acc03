"""AcousticBrainz low-level descriptors as a fixed audio feature vector (MARD's audio side).

MARD ships no audio: for each album mapped to MusicBrainz it ships the AcousticBrainz low-level
document of one track, ``acousticbrainz_descriptors/<amazon-id>_<recording mbid>.json`` (the
two-branch seed paper fetched more, one per track, in the same format). That paper's audio
branch reads MFCCs, the zero-crossing rate and the spectral roll-off from these documents; this
module turns a document into one float vector with those parts, in a fixed, named order
(`DESCRIPTOR_NAMES`), so a trainer or a linear baseline can use it as the audio input:

- ``mfcc.mean`` (13), ``mfcc.cov`` (13 x 13, row-major, 169), ``mfcc.icov`` (13 x 13, 169);
- ``zerocrossingrate`` and ``spectral_rolloff``, 9 statistics each in the order of
  `STATISTICS` (``dmean, dmean2, dvar, dvar2, max, mean, median, min, var``).

That is 369 values (`DESCRIPTOR_DIM`; the research notes' "370" counted one too many). The
values are raw (the roll-off is in Hz, its variance in Hz^2): standardise them on the training
split before a model sees them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from melodex.data.files import DatasetFormatError, read_json_file

__all__ = [
    "DESCRIPTOR_DIM",
    "DESCRIPTOR_NAMES",
    "FEATURE_SET",
    "STATISTICS",
    "descriptor_matrix",
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


def read_lowlevel(path: str | Path) -> dict[str, Any]:
    """An AcousticBrainz low-level document (a JSON object with a ``lowlevel`` object)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(f"AcousticBrainz descriptor file not found: {path}")
    doc = read_json_file(path)
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


def descriptor_vector(source: str | Path | Mapping[str, Any]) -> np.ndarray:
    """The `DESCRIPTOR_DIM` float32 vector of one document (a path or the parsed object).

    Raises `DatasetFormatError` naming the file and the missing or malformed field.
    """
    doc = read_lowlevel(source) if isinstance(source, str | Path) else dict(source)
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
    return np.concatenate(parts).astype(np.float32)


def descriptor_matrix(
    items: Sequence[Mapping[str, Any]], *, root: str | Path
) -> tuple[np.ndarray, list[str]]:
    """``(X (N, DESCRIPTOR_DIM) float32, ids)`` for manifest items whose ``audio`` is a
    descriptor document (``extra["audio_features"] == FEATURE_SET``), paths relative to
    ``root`` (the manifest's folder). Items of another kind raise `DatasetFormatError`."""
    rows, ids = [], []
    for item in items:
        kind = (item.get("extra") or {}).get("audio_features")
        if kind != FEATURE_SET:
            raise DatasetFormatError(
                f"item {item.get('id')!r} has no AcousticBrainz descriptors "
                f"(extra.audio_features={kind!r}, expected {FEATURE_SET!r})"
            )
        rows.append(descriptor_vector(Path(root) / item["audio"]))
        ids.append(str(item["id"]))
    if not rows:
        return np.zeros((0, DESCRIPTOR_DIM), np.float32), ids
    return np.stack(rows), ids
