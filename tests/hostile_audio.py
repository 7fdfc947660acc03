"""A corpus of hostile audio files, each made here: headers that lie, odd encodings, junk.

Every builder returns the file it wrote. The cases follow what was seen to break decoders: WAV
with 36/45/53-bit samples (as in scipy's test files ``test-8000Hz-le-3ch-5S-36bit.wav`` ...),
chunk sizes that point past the file, zero channels, absurd sample rates, an ID3 tag with no
frames and nothing after it, frames cut short, and a huge sparse file of zeros.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tests.music_fixtures import tone_piece, write_audio

_EXTENSIBLE = 0xFFFE
_PCM_GUID = b"\x01\x00\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


def wav_bytes(
    *,
    bits: int = 16,
    channels: int = 1,
    rate: int = 8000,
    frames: int = 100,
    extensible: bool = False,
    fmt_size: int | None = None,
    data_size: int | None = None,
    riff_size: int | None = None,
    fmt_tag: int = 1,
) -> bytes:
    """A PCM WAV with any bit depth (samples are whole bytes, left-justified, zero data)."""
    width = (bits + 7) // 8
    align = width * channels
    fmt = struct.pack("<HHIIHH", _EXTENSIBLE if extensible else fmt_tag, channels, rate,
                      (rate * align) & 0xFFFFFFFF, align, bits)  # fmt: skip
    if extensible:
        fmt += struct.pack("<HHI", 22, bits, (1 << channels) - 1 if channels < 32 else 0)
        fmt += _PCM_GUID
    data = bytes(np.random.default_rng(bits).integers(0, 256, frames * align, dtype=np.uint8))
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt) if fmt_size is None else fmt_size)
        + fmt
        + b"data"
        + struct.pack("<I", len(data) if data_size is None else data_size)
        + data
    )
    return b"RIFF" + struct.pack("<I", len(body) if riff_size is None else riff_size) + body


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _good_flac(path: Path, seed: int = 1) -> Path:
    return write_audio(path, tone_piece(seed, 2.0, kind="plucked"))


#: name -> builder of a file no decoder can turn into samples (each must be reported).
BAD: dict[str, Callable[[Path], Path]] = {
    "issue-36bit.wav": lambda p: _write(p, wav_bytes(bits=36, rate=8000, frames=30)),
    "scipy-3ch-36bit.wav": lambda p: _write(p, wav_bytes(bits=36, channels=3, extensible=True)),
    "scipy-3ch-45bit.wav": lambda p: _write(p, wav_bytes(bits=45, channels=3, extensible=True)),
    "scipy-3ch-53bit.wav": lambda p: _write(p, wav_bytes(bits=53, channels=3, extensible=True)),
    "plain-53bit.wav": lambda p: _write(p, wav_bytes(bits=53, channels=1)),
    "zero-channels.wav": lambda p: _write(p, wav_bytes(channels=0)),
    "huge-rate.wav": lambda p: _write(p, wav_bytes(rate=4_000_000_000)),
    "zero-rate.wav": lambda p: _write(p, wav_bytes(rate=0)),
    "fmt-size-huge.wav": lambda p: _write(p, wav_bytes(fmt_size=0xFFFFFFF0)),
    "fmt-size-zero.wav": lambda p: _write(p, wav_bytes(fmt_size=0)),
    "unknown-format-tag.wav": lambda p: _write(p, wav_bytes(fmt_tag=0x7777)),
    "data-size-zero.wav": lambda p: _write(p, wav_bytes(data_size=0, frames=0)),
    "id3-no-frames.mp3": lambda p: _write(p, b"ID3\x04\x00\x00\x00\x00\x00\x00"),
    "id3-then-junk.mp3": lambda p: _write(p, b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\0" * 4000),
    "header-only.flac": lambda p: _write(p, _good_flac(p).read_bytes()[:42]),
    "riff-only.wav": lambda p: _write(p, b"RIFF\x24\x00\x00\x00WAVE"),
    "zeros.flac": lambda p: _write(p, b"\0" * 70_000),
    "text.ogg": lambda p: _write(p, b"OggS is not enough to be an ogg file\n" * 50),
}

#: name -> builder of a damaged file that still holds audio a decoder recovers (each is indexed).
RECOVERABLE: dict[str, Callable[[Path], Path]] = {
    "data-size-past-end.wav": lambda p: _write(p, wav_bytes(frames=16000, data_size=1 << 30)),
    "riff-size-wrong.wav": lambda p: _write(p, wav_bytes(frames=16000, riff_size=7)),
}


def sparse_file(path: Path, size: int = 20 << 30) -> Path:
    """A file of ``size`` zero bytes that takes no disk space (as `truncate -s 20G` makes)."""
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def build(folder: Path) -> tuple[set[str], set[str]]:
    """Write the corpus and three good files into ``folder``: (good paths, bad paths)."""
    folder.mkdir(parents=True, exist_ok=True)
    bad = {str(make(folder / name)) for name, make in BAD.items()}
    bad.add(str(sparse_file(folder / "sparse-20GB.flac")))
    good = {str(make(folder / name)) for name, make in RECOVERABLE.items()}
    for i, ext in enumerate((".flac", ".wav", ".mp3")):
        good.add(str(write_audio(folder / f"good{i}{ext}", tone_piece(i, 3.0, kind="organ"))))
    os.sync()
    return good, bad


def truncated(path: Path, source: Path, keep: int) -> Path:
    """The first ``keep`` bytes of ``source``: a file whose last frame is cut short."""
    return _write(path, source.read_bytes()[:keep])
