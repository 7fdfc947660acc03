"""Uploaded clips: size limit, content sniffing by magic bytes, and a time-limited decode.

Sniffing is a short table of container signatures written here rather than a libmagic
binding: the server only needs to tell the audio containers :func:`melodex.audio.load_audio`
reads from everything else, before any decoder sees the bytes, and a table needs no system
library. The sniffed format (never the client's file name) chooses the decoder.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

SNIFF_BYTES = 16


class UploadError(Exception):
    """An upload refused with an HTTP status, an error code and a message for the client."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def sniff_audio(head: bytes) -> str | None:
    """The file extension of the audio container ``head`` starts, or None if it is not one.

    Parameters
    ----------
    head : bytes
        The first bytes of the file (16 suffice).

    Examples
    --------
    >>> sniff_audio(b"fLaC\\x00\\x00\\x00\\x22")
    '.flac'
    >>> sniff_audio(b"<html>") is None
    True
    """
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return ".wav"
    if head[:4] == b"RF64" and head[8:12] == b"WAVE":
        return ".wav"
    if head[:4] == b"fLaC":
        return ".flac"
    if head[:4] == b"OggS":
        return ".ogg"  # Vorbis, Opus and FLAC in Ogg: libsndfile and FFmpeg both sniff inside
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return ".aiff"
    if head[4:8] == b"ftyp":
        return ".m4a"
    if head[:3] == b"ID3":
        return ".mp3"
    if head[:8] == b"\x30\x26\xb2\x75\x8e\x66\xcf\x11":  # ASF header object GUID
        return ".wma"
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: Matroska / WebM
        return ".mka"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:  # MPEG audio frame sync
        layer = (head[1] >> 1) & 0b11
        return ".aac" if layer == 0 else ".mp3"  # layer bits 00: an ADTS AAC stream
    return None


async def decode_clip(
    src: Path, dst: Path, *, sample_rate: int, max_seconds: float, timeout: float
) -> None:
    """Decode ``src`` into the float WAV ``dst`` in a child process killed after ``timeout`` s.

    Raises
    ------
    UploadError
        408 when decoding takes too long, 422 when the file is not decodable audio.
    """
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "melodex.audio.isolated_decode",
        str(src),
        str(dst),
        str(sample_rate),
        str(max_seconds),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.CancelledError:  # the client went away: stop the decoder too
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        raise
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise UploadError(
            408, "decode_timeout", f"decoding the clip took longer than {timeout:g} s"
        ) from None
    if proc.returncode != 0:
        reason = stderr.decode("utf-8", "replace").strip().splitlines()
        if proc.returncode != 2 or not reason:  # not a reason the decoder chose to give
            raise UploadError(
                422,
                "undecodable_audio",
                f"the clip could not be decoded (the decoder exited with code {proc.returncode})",
            )
        shown = reason[-1]
        # the reason names the temporary file: keep only what follows "path: "
        shown = shown.replace(str(src), "upload")
        raise UploadError(422, "undecodable_audio", f"the clip could not be decoded: {shown}")
