"""Pre-decoded waveforms (``.npy``) as the papers' code stores them, and one audio reader for
every manifest entry.

The MSD releases behind TTMR and TTMR++ keep their 7digital previews both as mp3 (``songs/``)
and pre-decoded (``npy/<same path>.npy``, ``.mp3`` replaced by ``.npy``). Two encodings exist,
and a ``.npy`` file does not say which it holds, so a manifest item names it in
``extra["waveform"]`` (``{"encoding": ..., "sample_rate": ...}``; the MSD-eCALS and OLGA loaders
write it):

``ttmr``
    float32 mono at 16 kHz, 30 s (480,000 samples), the signal as decoded (TTMR; msd-subsets
    ``msd_resampler``). Read as is.
``ttmr-pp``
    int16 mono at the TTMR++ hparams rate (22,050 Hz by default), written by
    ``float32_to_int16``: the signal *min-max scaled* to [-1, 1] (``(x - min) / (max - min) * 2 -
    1``, so peak-normalised and shifted by a DC offset) then multiplied by 32767 and truncated.
    Read back as TTMR++ does, ``x / 32767`` (``int16_to_float32``); the original loudness and DC
    level cannot be recovered, and melodex does not pretend to.

Both are resampled with soxr to the rate the caller asks for, like any decoded file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from melodex.errors import AudioDecodeError, ParameterError

__all__ = ["NPY_ENCODINGS", "load_item_audio", "load_npy_waveform", "waveform_spec"]

#: encoding -> (stored dtype, default sample rate)
NPY_ENCODINGS: dict[str, tuple[str, int]] = {
    "ttmr": ("float32", 16000),
    "ttmr-pp": ("int16", 22050),
}


def waveform_spec(encoding: str, sample_rate: int | None = None) -> dict[str, Any]:
    """The ``extra["waveform"]`` entry for ``.npy`` audio of ``encoding`` (default rate of it)."""
    if encoding not in NPY_ENCODINGS:
        raise ParameterError(
            f"npy encoding must be one of {sorted(NPY_ENCODINGS)}, not {encoding!r}"
        )
    rate = NPY_ENCODINGS[encoding][1] if sample_rate is None else int(sample_rate)
    if rate <= 0:
        raise ParameterError(f"npy sample_rate must be > 0, not {sample_rate!r}")
    return {"encoding": encoding, "sample_rate": rate}


def load_npy_waveform(
    path: str | Path,
    *,
    sr: int,
    encoding: str,
    sample_rate: int | None = None,
    offset: float = 0.0,
    duration: float | None = None,
) -> np.ndarray:
    """Decode a pre-decoded waveform to mono float32 at ``sr`` Hz (see the module docstring).

    ``sample_rate`` is the stored rate (default: the encoding's). Raises `AudioDecodeError`
    naming the file for a missing or unreadable file, a pickled array (never loaded), a dtype
    that does not match ``encoding``, a shape other than (n,) or (1, n), or no samples.
    """
    spec = waveform_spec(encoding, sample_rate)
    path = Path(path)
    if not path.is_file():
        raise AudioDecodeError(path, "file not found")
    try:
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise AudioDecodeError(path, f"not a NumPy .npy array ({exc})") from None
    if data.ndim == 2 and 1 in data.shape:
        data = data.reshape(-1)
    if data.ndim != 1:
        raise AudioDecodeError(path, f"expected a mono waveform (n,), got shape {data.shape}")
    want = NPY_ENCODINGS[encoding][0]
    if data.dtype != np.dtype(want):
        raise AudioDecodeError(
            path, f"dtype {data.dtype} does not match the {encoding!r} encoding ({want})"
        )
    native = spec["sample_rate"]
    start = int(round(max(offset, 0.0) * native))
    stop = data.shape[0] if duration is None else start + int(round(duration * native))
    block = np.asarray(data[start:stop])
    if block.size == 0:
        raise AudioDecodeError(path, f"no samples from {offset:g} s ({data.shape[0]} stored)")
    if encoding == "ttmr-pp":
        y = (block / 32767.0).astype(np.float32)
    else:
        y = block.astype(np.float32, copy=True)
    if not np.isfinite(y).all():
        raise AudioDecodeError(path, "non-finite samples")
    if native != sr:
        import soxr

        y = soxr.resample(y, native, sr, quality="HQ").astype(np.float32, copy=False)
    return y


def load_item_audio(
    path: str | Path,
    *,
    sr: int,
    offset: float = 0.0,
    duration: float | None = None,
    waveform: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """Any manifest entry's audio as mono float32 at ``sr``: a ``.npy`` waveform through
    `load_npy_waveform` (``waveform`` = the item's ``extra["waveform"]``, required), anything
    else through `melodex.audio.load_audio`."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        if not waveform or "encoding" not in waveform:
            raise AudioDecodeError(
                path,
                "a .npy waveform needs extra.waveform = {'encoding': 'ttmr' | 'ttmr-pp', "
                "'sample_rate': ...} in its manifest entry",
            )
        return load_npy_waveform(
            path,
            sr=sr,
            encoding=str(waveform["encoding"]),
            sample_rate=waveform.get("sample_rate"),
            offset=offset,
            duration=duration,
        )
    from melodex.audio import load_audio

    if duration is not None and not math.isfinite(duration):
        duration = None
    return load_audio(path, sr=sr, offset=offset, duration=duration)
