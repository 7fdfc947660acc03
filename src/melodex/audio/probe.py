"""What a file's headers say, read without decoding its samples."""

from __future__ import annotations

import os
from pathlib import Path

import soundfile as sf

from melodex.audio.decode import _first_audio_stream, _open_av, _OpenError, _sf_name, _stream_frames
from melodex.audio.formats import (
    _SOUNDFILE_EXTENSIONS,
    AudioInfo,
    _check_extension,
    _check_file,
    _check_stream,
    check_header,
)
from melodex.errors import AudioDecodeError


def probe(path: str | os.PathLike[str]) -> AudioInfo:
    """Read duration, sample rate, channels and codec from the headers, without decoding.

    The duration is what the headers declare (for an MP3 without a Xing header, an estimate); a
    truncated file may decode to less. Raises :class:`AudioDecodeError` like :func:`load_audio`.
    """
    path = Path(path)
    _check_file(path)
    ext = _check_extension(path)
    check_header(path)
    try:
        return _probe(path, ext)
    except AudioDecodeError:
        raise
    except Exception as exc:  # any other decoder oddity is a property of the file
        raise AudioDecodeError(path, f"unreadable header ({type(exc).__name__}: {exc})") from None


def _probe(path: Path, ext: str) -> AudioInfo:
    sf_error = None
    if ext in _SOUNDFILE_EXTENSIONS:
        try:
            info = sf.info(_sf_name(path))
        except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
            sf_error = f"libsndfile: {exc}"
        else:
            _check_stream(path, info.samplerate, info.channels)
            return AudioInfo(
                duration=info.frames / info.samplerate,
                sample_rate=int(info.samplerate),
                channels=int(info.channels),
                codec=str(info.subtype),
                format=str(info.format),
            )
    try:
        container = _open_av(path)
    except _OpenError as exc:
        detail = f"FFmpeg: {exc}" if sf_error is None else f"{sf_error}; FFmpeg: {exc}"
        raise AudioDecodeError(
            path, f"not an audio file, an unrecognised format, or a damaged container ({detail})"
        ) from None
    with container:
        stream = _first_audio_stream(path, container)
        rate = stream.codec_context.sample_rate
        frames = _stream_frames(container, stream)
        return AudioInfo(
            duration=0.0 if frames is None else frames / rate,
            sample_rate=int(rate),
            channels=int(stream.codec_context.channels),
            codec=str(stream.codec_context.name),
            format=str(container.format.name),
        )
