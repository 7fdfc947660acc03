"""What melodex accepts as audio: extensions, header limits, and the checks every reader runs first."""

from __future__ import annotations

import os
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

#: Most wall-clock seconds one file may take to decode (a legal 3 h file takes ~30 s); beyond
#: it the file is refused with this reason instead of holding a run.
FILE_TIME_LIMIT_S = 300.0
#: Bytes read from the start of a file to find an audio header before anything reads the rest.
SNIFF_BYTES = 1 << 16

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


# --------------------------------------------------------------------------- header sniffing

#: Container signatures at the start of a file (after any ID3v2 tag).
_MAGIC = (
    (0, b"RIFF"),  # WAV
    (0, b"RF64"),  # WAV over 4 GB
    (0, b"BW64"),
    (0, b"FORM"),  # AIFF / AIFC
    (0, b"fLaC"),
    (0, b"OggS"),  # Vorbis, Opus, FLAC in Ogg
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska (mka)
    (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"),  # ASF (wma)
    (0, b"ADIF"),  # AAC
    (4, b"ftyp"),  # MP4 / M4A
    (4, b"moov"),
    (4, b"mdat"),
    (4, b"free"),
    (4, b"wide"),
    (4, b"skip"),
)


def _id3_end(head: bytes) -> int:
    """Bytes taken by an ID3v2 tag at the start of ``head`` (0 when there is none)."""
    if len(head) < 10 or head[:3] != b"ID3" or any(b & 0x80 for b in head[6:10]):
        return 0
    size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]  # syncsafe
    footer = 10 if head[5] & 0x10 else 0
    return 10 + size + footer


def _has_frame_sync(data: bytes) -> bool:
    """Whether an MPEG audio / ADTS / FLAC frame sync (11 set bits) occurs in ``data``."""
    start = data.find(b"\xff")
    while 0 <= start < len(data) - 1:
        if data[start + 1] & 0xE0 == 0xE0:
            return True
        start = data.find(b"\xff", start + 1)
    return False


def check_header(path: str | os.PathLike[str]) -> None:
    """Refuse, from its first bytes, a file that holds no audio header, before anything reads it all.

    Why: FFmpeg, asked to open a ``.flac`` of zeros, scans the whole file for a frame sync (a
    20 GB sparse file took minutes), and hashing reads every byte. A file passes when it starts
    (after any ID3v2 tag) with a known container signature, or when an MPEG/ADTS/FLAC frame
    sync occurs in its first :data:`SNIFF_BYTES` (raw MP3 and AAC streams have no other header).
    Raises :class:`AudioDecodeError` naming what was found instead.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
            skip = _id3_end(head)
            if skip:
                f.seek(skip)
                head = f.read(SNIFF_BYTES)
                if not head:
                    raise AudioDecodeError(path, "an ID3 tag and no audio after it")
    except OSError as exc:
        raise AudioDecodeError(path, f"cannot read file: {exc.strerror or exc}") from None
    if not head and not skip:
        raise AudioDecodeError(path, "empty file (zero bytes)")
    if any(head[at : at + len(magic)] == magic for at, magic in _MAGIC):
        return
    if _has_frame_sync(head):
        return
    if not head.strip(b"\x00"):
        what = f"the first {len(head):,} bytes are all zero"
    else:
        what = f"it starts with {head[:8].hex(' ')}"
    where = " after its ID3 tag" if skip else ""
    raise AudioDecodeError(path, f"not an audio file (no audio header{where}: {what})")
