"""What melodex accepts as audio: extensions, header limits, and the checks every reader runs first."""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path

from melodex.errors import AudioDecodeError

#: Extensions libsndfile reads; tried with soundfile first, PyAV as fallback.
_SOUNDFILE_EXTENSIONS = frozenset(
    {".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc"}
)
#: libsndfile formats FFmpeg decodes faster (opus: 0.4 s against 0.9 s for 3 min).
_PYAV_FIRST_EXTENSIONS = frozenset({".opus"})
#: Extensions only FFmpeg (PyAV) reads.
_PYAV_EXTENSIONS = frozenset({".m4a", ".m4b", ".aac", ".mp4", ".wma", ".mka"})
#: Every extension :func:`load_audio` accepts (lower case, with the dot).
SUPPORTED_EXTENSIONS: frozenset[str] = _SOUNDFILE_EXTENSIONS | _PYAV_EXTENSIONS

#: Highest sample rate accepted, in Hz (in a header or as the ``sr`` argument).
MAX_SAMPLE_RATE = 384_000
#: Most channels accepted (ambisonics go to 36; more is a broken header).
MAX_CHANNELS = 256
#: Longest span, in seconds, one call decodes (3 h: ~0.7 GB of float32 at 16 kHz).
MAX_DURATION_S = 3 * 3600.0

#: Share of the declared length a fallback decoder must recover after another reported damage.
_RECOVERED = 0.9
_BLOCK_FRAMES = 1 << 16  # soundfile read block: 64k frames, small enough to stay in cache
_RESAMPLE_QUALITY = "HQ"
_TAG_KEYS = ("title", "artist", "album", "genre", "date", "tracknumber")
# ID3 frames (ID3 in WAV/AIFF, which mutagen has no "easy" view of) for the same keys.
_ID3_FRAMES = {
    "TIT2": "title",
    "TPE1": "artist",
    "TALB": "album",
    "TCON": "genre",
    "TDRC": "date",
    "TRCK": "tracknumber",
}


# ASF (WMA) attribute names for the same keys.
_ASF_KEYS = {
    "Title": "title",
    "Author": "artist",
    "WM/AlbumTitle": "album",
    "WM/Genre": "genre",
    "WM/Year": "date",
    "WM/TrackNumber": "tracknumber",
}


@dataclass(frozen=True)
class AudioInfo:
    """What a file's headers say: duration (s), native rate, channels, codec and container."""

    duration: float
    sample_rate: int
    channels: int
    codec: str
    format: str


# --------------------------------------------------------------------------- checks


def _check_file(path: Path) -> None:
    """Refuse paths that are not readable, non-empty regular files, naming the cause."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise AudioDecodeError(path, "file not found") from None
    except PermissionError:
        raise AudioDecodeError(path, "permission denied") from None
    except OSError as exc:
        raise AudioDecodeError(path, f"cannot access file: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioDecodeError(path, "is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise AudioDecodeError(path, "not a regular file")
    try:
        with open(path, "rb"):
            pass
    except PermissionError:
        raise AudioDecodeError(path, "permission denied") from None
    except OSError as exc:
        raise AudioDecodeError(path, f"cannot open file: {exc.strerror or exc}") from None
    if st.st_size == 0:
        raise AudioDecodeError(path, "empty file (zero bytes)")


def _check_extension(path: Path) -> str:
    ext = path.suffix.lower()
    if ext not in SUPPORTED_EXTENSIONS:
        shown = ext or "(none)"
        raise AudioDecodeError(
            path,
            f"unsupported extension {shown}; supported: {', '.join(sorted(SUPPORTED_EXTENSIONS))}",
        )
    return ext


def _check_stream(path: Path, sample_rate: int, channels: int) -> None:
    """Refuse absurd headers before anything is allocated from them."""
    if not 0 < sample_rate <= MAX_SAMPLE_RATE:
        raise AudioDecodeError(
            path, f"header sample rate {sample_rate} Hz is outside 1..{MAX_SAMPLE_RATE} Hz"
        )
    if not 0 < channels <= MAX_CHANNELS:
        raise AudioDecodeError(
            path, f"header channel count {channels} is outside 1..{MAX_CHANNELS}"
        )


def _span_frames(
    path: Path,
    native_sr: int,
    total_frames: int | None,
    offset: float,
    duration: float | None,
) -> tuple[int, int | None]:
    """First frame and frame count to decode (count None: to the end, length unknown)."""
    start = round(offset * native_sr)
    if total_frames is not None and total_frames > 0 and start >= total_frames:
        raise AudioDecodeError(
            path,
            f"zero-length audio: offset {offset:g} s is at or past the end "
            f"({total_frames / native_sr:.3f} s)",
        )
    count = None if duration is None else max(1, round(duration * native_sr))
    if total_frames is not None and total_frames > 0:
        rest = total_frames - start
        count = rest if count is None else min(count, rest)
    if count is not None and count > MAX_DURATION_S * native_sr:
        raise AudioDecodeError(
            path,
            f"span of {count / native_sr / 3600:.1f} h is longer than the "
            f"{MAX_DURATION_S / 3600:g} h limit; read it in parts with offset= and duration=",
        )
    return start, count
