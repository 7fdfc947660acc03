"""Make small real audio files in every format for tests: a seeded 440 Hz tone plus a chord."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 44100
SECONDS = 3.0
TONE_HZ = 440.0
TAGS = {"title": "Test Tone", "artist": "Melodex Band", "album": "Fixtures", "genre": "Ambient"}

# extension -> (libsndfile format, subtype) for files soundfile writes itself
SOUNDFILE_FORMATS = {
    ".wav": ("WAV", "PCM_16"),
    ".flac": ("FLAC", "PCM_16"),
    ".ogg": ("OGG", "VORBIS"),
    ".aiff": ("AIFF", "PCM_16"),
}
# extension -> ffmpeg codec arguments for files the Debian ffmpeg binary writes
FFMPEG_FORMATS = {
    ".mp3": ["-c:a", "libmp3lame", "-b:a", "128k"],
    ".m4a": ["-c:a", "aac", "-b:a", "128k"],
    ".opus": ["-c:a", "libopus", "-b:a", "96k"],
    ".wma": ["-c:a", "wmav2", "-b:a", "128k"],
}
LOSSLESS = {".wav", ".flac", ".aiff"}


def stereo_signal(seconds: float = SECONDS, sr: int = SR, seed: int = 0) -> np.ndarray:
    """(frames, 2) float32: 440 Hz in both channels (in phase), a C-major chord split L/R, noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * sr)) / sr
    tone = 0.5 * np.sin(2 * np.pi * TONE_HZ * t)
    left = tone + 0.1 * np.sin(2 * np.pi * 261.63 * t) + 0.1 * np.sin(2 * np.pi * 392.0 * t)
    right = tone + 0.1 * np.sin(2 * np.pi * 329.63 * t)
    x = np.stack([left, right], axis=1) + 0.005 * rng.standard_normal((t.size, 2))
    return (0.8 * x).astype(np.float32)


def write_soundfile(path: Path, x: np.ndarray, sr: int = SR, tags: dict | None = None) -> Path:
    fmt, subtype = SOUNDFILE_FORMATS[path.suffix]
    with sf.SoundFile(path, "w", sr, x.shape[1], subtype=subtype, format=fmt) as f:
        for key, value in (tags or {}).items():
            setattr(f, key, value)
        # libsndfile's Vorbis encoder crashes on very large single writes: write in blocks.
        for i in range(0, len(x), 8192):
            f.write(x[i : i + 8192])
    return path


def write_ffmpeg(path: Path, source_wav: Path, tags: dict | None = None) -> Path:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("the ffmpeg binary is needed to make test files")
    meta = [arg for key, value in (tags or {}).items() for arg in ("-metadata", f"{key}={value}")]
    cmd = [ffmpeg, "-nostdin", "-v", "error", "-y", "-i", str(source_wav)]
    cmd += FFMPEG_FORMATS[path.suffix] + meta + [str(path)]
    subprocess.run(cmd, check=True, timeout=60)
    return path


def make_all(folder: Path, seconds: float = SECONDS) -> dict[str, Path]:
    """One tagged file per format in ``folder``; returns extension -> path."""
    x = stereo_signal(seconds)
    files = {ext: write_soundfile(folder / f"tone{ext}", x, tags=TAGS) for ext in SOUNDFILE_FORMATS}
    for ext in FFMPEG_FORMATS:
        files[ext] = write_ffmpeg(folder / f"tone{ext}", files[".wav"], tags=TAGS)
    return files


def dominant_hz(y: np.ndarray, sr: int) -> float:
    """Frequency of the largest FFT magnitude (Hann-windowed)."""
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.argmax(spectrum) * sr / len(y))


def truncate(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst
