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

import math
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import mutagen
import mutagen.asf
import numpy as np
import soundfile as sf
import soxr

from melodex.errors import AudioDecodeError, ParameterError

__all__ = [
    "AudioDecodeError",
    "MAX_CHANNELS",
    "MAX_DURATION_S",
    "MAX_SAMPLE_RATE",
    "SUPPORTED_EXTENSIONS",
    "AudioInfo",
    "frame_windows",
    "load_audio",
    "probe",
    "read_tags",
    "select_windows",
]

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


# --------------------------------------------------------------------------- output assembly


class _Sink:
    """Downmixed blocks in, resampled mono float32 out, without a full-rate copy of the track."""

    def __init__(self, path: Path, native_sr: int, sr: int, expected: int | None) -> None:
        self.path = path
        self.limit = int(MAX_DURATION_S * sr) + sr
        self.stream = (
            None
            if native_sr == sr
            else soxr.ResampleStream(native_sr, sr, 1, dtype="float32", quality=_RESAMPLE_QUALITY)
        )
        cap = 0 if expected is None else min(math.ceil(expected * sr / native_sr) + 16, self.limit)
        self.buf = np.empty(max(cap, 1 << 15), dtype=np.float32)
        self.n = 0

    def add(self, mono: np.ndarray, last: bool = False) -> None:
        mono = np.ascontiguousarray(mono)  # a no-op for the views _downmix returns
        out = mono if self.stream is None else self.stream.resample_chunk(mono, last=last)
        k = out.shape[0]
        if self.n + k > self.buf.shape[0]:
            if self.n + k > self.limit:
                raise AudioDecodeError(
                    self.path,
                    f"decodes to more than the {MAX_DURATION_S / 3600:g} h limit; "
                    "read it in parts with offset= and duration=",
                )
            grown = np.empty(min(max(2 * self.buf.shape[0], self.n + k), self.limit), np.float32)
            grown[: self.n] = self.buf[: self.n]
            self.buf = grown
        self.buf[self.n : self.n + k] = out
        self.n += k

    def result(self) -> np.ndarray:
        if self.stream is not None:
            self.add(np.zeros(0, dtype=np.float32), last=True)
        if self.n == 0:
            raise AudioDecodeError(self.path, "zero-length audio: no samples decoded")
        if self.n < 0.9 * self.buf.shape[0]:
            return self.buf[: self.n].copy()  # free the unused tail of an over-estimate
        return self.buf[: self.n]


def _downmix(x: np.ndarray) -> np.ndarray:
    """Mean over channels of a (frames, channels) float32 block, in float32.

    For planar data pass the transposed (channels, frames) array: each column is then a
    contiguous row, so nothing is copied before the sum.
    """
    ch = x.shape[1]
    if ch == 1:
        return x[:, 0]
    if ch == 2:
        out = np.add(x[:, 0], x[:, 1])
        out *= np.float32(0.5)
        return out
    return x.mean(axis=1, dtype=np.float32)


# --------------------------------------------------------------------------- backends


class _OpenError(Exception):
    """The backend does not recognise the file (as opposed to failing while decoding it)."""


class _StreamError(Exception):
    """The backend recognised the file but its decoder reported an error mid-stream."""

    def __init__(self, message: str, expected: int | None = None) -> None:
        super().__init__(message)
        self.expected = expected  # output samples the header declares, when known


def _sf_name(path: Path) -> str | bytes:
    """The name to give libsndfile: bytes for non-UTF-8 names, which soundfile cannot encode."""
    name = str(path)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # surrogate-escaped bytes from a non-UTF-8 file name
        return os.fsencode(name)
    return name


def _load_soundfile(path: Path, sr: int, offset: float, duration: float | None) -> np.ndarray:
    try:
        f = sf.SoundFile(_sf_name(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise _OpenError(str(exc)) from None
    with f:
        _check_stream(path, f.samplerate, f.channels)
        total = f.frames if f.frames > 0 else None
        start, count = _span_frames(path, f.samplerate, total, offset, duration)
        if start:
            try:
                f.seek(start)
            except (sf.LibsndfileError, RuntimeError) as exc:  # data cut short of the offset
                raise _StreamError(f"cannot seek to {offset:g} s: {exc}") from None
        sink = _Sink(path, f.samplerate, sr, count)
        block = np.empty((_BLOCK_FRAMES, f.channels), dtype=np.float32)
        remaining = count
        while remaining is None or remaining > 0:
            want = _BLOCK_FRAMES if remaining is None else min(_BLOCK_FRAMES, remaining)
            try:
                got = f.read(want, dtype="float32", always_2d=True, out=block[:want])
            except (sf.LibsndfileError, RuntimeError) as exc:
                expected = None if count is None else round(count * sr / f.samplerate)
                raise _StreamError(str(exc), expected) from None
            if got.shape[0] == 0:
                break
            sink.add(_downmix(got))
            if remaining is not None:
                remaining -= got.shape[0]
            if got.shape[0] < want:
                break
        return sink.result()


def _first_audio_stream(path: Path, container: av.container.InputContainer) -> av.AudioStream:
    if not container.streams.audio:
        raise AudioDecodeError(path, "no audio stream in the file")
    stream = container.streams.audio[0]
    _check_stream(path, stream.codec_context.sample_rate, stream.codec_context.channels)
    return stream


def _stream_frames(container: av.container.InputContainer, stream: av.AudioStream) -> int | None:
    """Frames the container declares, or None when it does not say."""
    rate = stream.codec_context.sample_rate
    if stream.duration is not None and stream.time_base is not None:
        return int(stream.duration * stream.time_base * rate)
    if container.duration is not None:
        return int(container.duration / av.time_base * rate)
    return None


def _open_av(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), mode="r")
    except av.FFmpegError as exc:
        raise _OpenError(str(exc)) from None


def _decoded_blocks(
    container: av.container.InputContainer, stream: av.AudioStream
) -> Iterator[np.ndarray]:
    """(frames, channels) float32 blocks at the stream's native rate (views of planar data)."""
    resampler = av.AudioResampler(format="fltp", rate=stream.codec_context.sample_rate)
    for frame in container.decode(stream):
        for out in resampler.resample(frame):
            yield out.to_ndarray().T
    for out in resampler.resample(None):
        yield out.to_ndarray().T


def _load_pyav(path: Path, sr: int, offset: float, duration: float | None) -> np.ndarray:
    container = _open_av(path)
    with container:
        stream = _first_audio_stream(path, container)
        native = stream.codec_context.sample_rate
        declared = _stream_frames(container, stream)
        # The declared length may be an estimate: use it to refuse absurd spans and to size the
        # output, never to cut decoding short.
        start, count = _span_frames(path, native, None, offset, duration)
        if count is None and declared is not None and declared > 0:
            _span_frames(path, native, declared, 0.0, None)  # raises if the header is absurd
        expected = count if count is not None else (declared - start if declared else None)
        sink = _Sink(path, native, sr, expected)
        skip, remaining = start, count
        try:
            for block in _decoded_blocks(container, stream):
                if skip:
                    drop = min(skip, block.shape[0])
                    block, skip = block[drop:], skip - drop
                if remaining is not None:
                    block = block[:remaining]
                    remaining -= block.shape[0]
                if block.shape[0]:
                    sink.add(_downmix(block))
                if remaining == 0:
                    break
        except av.FFmpegError as exc:
            raise _StreamError(str(exc)) from None
        if sink.n == 0 and skip:
            raise AudioDecodeError(path, f"zero-length audio: offset {offset:g} s is past the end")
        return sink.result()


# --------------------------------------------------------------------------- public API


_Backend = Callable[[Path, int, float, float | None], np.ndarray]


def _backends(ext: str) -> list[tuple[str, _Backend]]:
    """Decoders to try, in order. Opus goes to FFmpeg first: it decodes it ~2x faster."""
    if ext in _PYAV_FIRST_EXTENSIONS:
        return [("FFmpeg", _load_pyav), ("libsndfile", _load_soundfile)]
    if ext in _SOUNDFILE_EXTENSIONS:
        return [("libsndfile", _load_soundfile), ("FFmpeg", _load_pyav)]
    return [("FFmpeg", _load_pyav)]


def load_audio(
    path: str | os.PathLike[str],
    *,
    sr: int,
    offset: float = 0.0,
    duration: float | None = None,
) -> np.ndarray:
    """Decode ``path`` to a mono float32 1-D array at ``sr`` Hz.

    Parameters
    ----------
    path : str or path-like
        An audio file with an extension in :data:`SUPPORTED_EXTENSIONS`.
    sr : int
        Output sample rate in Hz.
    offset : float
        Seconds to skip from the start.
    duration : float or None
        Seconds to read after ``offset``; None reads to the end.

    Returns
    -------
    np.ndarray, shape (n,), float32
        Channels averaged, resampled with soxr "HQ"; never empty.

    Raises
    ------
    AudioDecodeError
        For any problem with the file (missing, unreadable, empty, unknown format, corrupt,
        no audio stream, no samples, absurd header).
    ValueError
        For bad arguments (a bug in the caller, not a property of the file).

    Examples
    --------
    >>> y = load_audio("song.flac", sr=16000, offset=30.0, duration=10.0)  # doctest: +SKIP
    >>> y.shape, y.dtype  # doctest: +SKIP
    ((160000,), dtype('float32'))
    """
    if (
        isinstance(sr, bool)
        or not isinstance(sr, int | np.integer)
        or not 0 < sr <= MAX_SAMPLE_RATE
    ):
        raise ParameterError(f"sr must be an integer in 1..{MAX_SAMPLE_RATE}, got {sr!r}")
    if not math.isfinite(offset) or offset < 0:
        raise ParameterError(f"offset must be a finite number >= 0, got {offset!r}")
    if duration is not None and (not math.isfinite(duration) or duration <= 0):
        raise ParameterError(f"duration must be a finite number > 0 or None, got {duration!r}")
    path = Path(path)
    _check_file(path)
    ext = _check_extension(path)
    sr = int(sr)

    open_errors: list[str] = []
    stream_error: str | None = None
    expected: int | None = None
    for name, backend in _backends(ext):
        try:
            y = backend(path, sr, offset, duration)
        except _OpenError as exc:
            open_errors.append(f"{name}: {exc}")
            continue
        except _StreamError as exc:
            stream_error = stream_error or f"{name}: {exc}"
            expected = expected or exc.expected
            continue
        if stream_error is not None and expected and len(y) < _RECOVERED * expected:
            # FFmpeg skips damaged frames without an error: a file another decoder found
            # damaged, of which it decodes only a part, is corrupt, not short.
            raise AudioDecodeError(
                path,
                f"corrupt or truncated data ({stream_error}; {name} skips the damage and "
                f"decodes only {len(y) / sr:.1f} s of the {expected / sr:.1f} s declared)",
            )
        return y
    if stream_error is not None:
        raise AudioDecodeError(path, f"corrupt or truncated data ({stream_error})")
    raise AudioDecodeError(
        path,
        "not an audio file, an unrecognised format, or a damaged container "
        f"({'; '.join(open_errors)})",
    )


def probe(path: str | os.PathLike[str]) -> AudioInfo:
    """Read duration, sample rate, channels and codec from the headers, without decoding.

    The duration is what the headers declare (for an MP3 without a Xing header, an estimate); a
    truncated file may decode to less. Raises :class:`AudioDecodeError` like :func:`load_audio`.
    """
    path = Path(path)
    _check_file(path)
    ext = _check_extension(path)
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
    if not tags and path.suffix.lower() in _SOUNDFILE_EXTENSIONS:
        tags = _soundfile_tags(path)
    if not tags and path.suffix.lower() in _PYAV_EXTENSIONS:
        tags = _ffmpeg_tags(path)
    return tags


def _ffmpeg_tags(path: Path) -> dict[str, str]:
    """Container metadata as FFmpeg sees it (Matroska and others mutagen does not parse)."""
    try:
        with av.open(str(path), mode="r") as container:
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


def frame_windows(y: np.ndarray, *, window: int, hop: int | None = None) -> np.ndarray:
    """Cut a 1-D signal into windows of ``window`` samples, ``hop`` apart (default: ``window``).

    The rule: windows start at 0, hop, 2*hop, ...; every window that fits entirely is kept. After
    them one more window, zero-padded at the end, is kept when it holds at least half a window of
    samples (``2 * held >= window``) and some of those samples are in no full window; a shorter
    tail is dropped. A non-empty signal shorter than one window gives exactly one zero-padded
    window; an empty signal gives shape ``(0, window)``.

    Returns
    -------
    np.ndarray, shape (n_windows, window), float32
        A new C-contiguous array (safe to modify), filled from a strided view without Python loops.

    Examples
    --------
    >>> frame_windows(np.ones(250, np.float32), window=100).shape
    (3, 100)
    >>> frame_windows(np.ones(249, np.float32), window=100).shape
    (2, 100)
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ParameterError(f"y must be 1-D, got shape {y.shape}")
    if isinstance(window, bool) or int(window) != window or window < 1:
        raise ParameterError(f"window must be a positive integer, got {window!r}")
    hop = window if hop is None else hop
    if isinstance(hop, bool) or int(hop) != hop or hop < 1:
        raise ParameterError(f"hop must be a positive integer, got {hop!r}")
    window, hop, n = int(window), int(hop), y.shape[0]
    if n == 0:
        return np.zeros((0, window), dtype=np.float32)
    if n < window:
        out = np.zeros((1, window), dtype=np.float32)
        out[0, :n] = y
        return out
    n_full = 1 + (n - window) // hop
    covered = (n_full - 1) * hop + window
    tail_start = n_full * hop
    held = n - tail_start
    keep_tail = n > covered and held > 0 and 2 * held >= window
    out = np.zeros((n_full + keep_tail, window), dtype=np.float32)
    out[:n_full] = np.lib.stride_tricks.sliding_window_view(y, window)[::hop][:n_full]
    if keep_tail:
        out[n_full, :held] = y[tail_start:]
    return out


def select_windows(n_windows: int, *, max_windows: int | None) -> np.ndarray:
    """Indices of the windows to use for a track: all, or ``max_windows`` spread evenly.

    When ``max_windows`` is None or ``n_windows <= max_windows``, every index is returned.
    Otherwise the track is split into ``max_windows`` equal segments and the window at the centre
    of each is taken: index ``floor((2*i + 1) * n_windows / (2 * max_windows))``, computed in
    integers. The result is deterministic, sorted and unique.

    Examples
    --------
    >>> select_windows(10, max_windows=3).tolist()
    [1, 5, 8]
    """
    if isinstance(n_windows, bool) or int(n_windows) != n_windows or n_windows < 0:
        raise ParameterError(f"n_windows must be an integer >= 0, got {n_windows!r}")
    if max_windows is not None and (
        isinstance(max_windows, bool) or int(max_windows) != max_windows or max_windows < 1
    ):
        raise ParameterError(f"max_windows must be a positive integer or None, got {max_windows!r}")
    n = int(n_windows)
    if max_windows is None or n <= max_windows:
        return np.arange(n, dtype=np.int64)
    m = int(max_windows)
    i = np.arange(m, dtype=np.int64)
    return ((2 * i + 1) * n) // (2 * m)
