"""Decode any audio file to mono float32 at a chosen rate, cut it into windows, read its tags.

Every model in melodex sees audio the same way: one channel (the mean of the file's channels),
float32, resampled with soxr. This module is the only place that touches audio files, so the rules
below hold everywhere:

Decoding
    libsndfile (through ``soundfile``) reads wav, flac, ogg/vorbis, opus, mp3 and aiff; it is tried
    first for those extensions because it is fast and exact. PyAV (FFmpeg) reads what libsndfile
    cannot (m4a/aac, mp4, wma, mka) and is the fallback whenever libsndfile fails on a file.
    Decoding is deterministic: the same file and arguments give bit-identical samples.

Resampling
    soxr at quality ``"HQ"`` (20-bit precision, steep low-pass). It is far below the noise floor of
    any log-mel front end, and ``"VHQ"`` costs more CPU for no difference a model can see.
    The output of streamed resampling is bit-identical to one-shot resampling, so decoding in
    blocks does not change the result.

Truncated files
    If the decoder reports an error (a FLAC stream that loses sync, an MP4 whose index is missing,
    a damaged WMA packet), :class:`~melodex.errors.AudioDecodeError` is raised. If the stream just
    ends early without a decoder error (a WAV data chunk shorter than declared, an MP3 or Ogg file
    cut short), the samples that decode are returned, so the result can be shorter than
    :func:`probe` says. ``load_audio`` never returns an empty array. When libsndfile reports an
    error and FFmpeg, the fallback, decodes less than 90 % of the declared length (FFmpeg skips
    damaged frames silently), the file is refused as corrupt.

Limits
    Sample rates above 384 kHz, more than 256 channels, or a span longer than
    :data:`MAX_DURATION_S` are refused before anything large is allocated; read long files in parts
    with ``offset`` and ``duration``.

Windows
    See :func:`frame_windows` and :func:`select_windows`.
"""

from __future__ import annotations

from melodex.audio.decode import load_audio
from melodex.audio.formats import (
    MAX_CHANNELS,
    MAX_DURATION_S,
    MAX_SAMPLE_RATE,
    SUPPORTED_EXTENSIONS,
    AudioInfo,
    check_header,
)
from melodex.audio.probe import probe
from melodex.audio.tags import read_tags
from melodex.audio.windows import frame_windows, select_windows
from melodex.errors import AudioDecodeError

__all__ = [
    "AudioDecodeError",
    "MAX_CHANNELS",
    "MAX_DURATION_S",
    "MAX_SAMPLE_RATE",
    "SUPPORTED_EXTENSIONS",
    "AudioInfo",
    "check_header",
    "frame_windows",
    "load_audio",
    "probe",
    "read_tags",
    "select_windows",
]
