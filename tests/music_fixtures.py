"""Small real audio files for library tests: synthesised, seeded, written in real formats."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 22050


def tone_piece(seed: int, seconds: float = 7.0, *, kind: str = "plucked") -> np.ndarray:
    """A short seeded melody: decaying harmonic notes (plucked), sustained ones (organ) or clicks."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    y = np.zeros(n, np.float32)
    t_note = 0.25 if kind != "organ" else 0.6
    starts = np.arange(0, seconds - t_note, t_note)
    for start in starts:
        f0 = 220.0 * 2 ** (rng.integers(0, 24) / 12)
        length = int(t_note * SR * (3 if kind == "plucked" else 1))
        i0 = int(start * SR)
        t = np.arange(min(length, n - i0)) / SR
        if kind == "clicks":
            note = rng.standard_normal(len(t)) * np.exp(-t * 40)
        else:
            env = np.exp(-t * 6) if kind == "plucked" else np.minimum(1, t * 20)
            note = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 6)) * env
        y[i0 : i0 + len(t)] += 0.2 * note.astype(np.float32)
    return np.clip(y, -1, 1)


def write_audio(
    path: Path, y: np.ndarray, *, sr: int = SR, tags: dict[str, str] | None = None
) -> Path:
    """Write ``y`` in the format given by the extension (ffmpeg for mp3/m4a/opus)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ext = path.suffix.lower()
    if ext in (".wav", ".flac", ".ogg"):
        sf.write(path, y, sr)
        if tags:
            import mutagen

            f = mutagen.File(path, easy=True)
            if f is not None and ext != ".wav":
                for key, value in tags.items():
                    f[key] = value
                f.save()
        return path
    wav = path.with_suffix(".tmp.wav")
    sf.write(wav, y, sr)
    meta = [a for k, v in (tags or {}).items() for a in ("-metadata", f"{k}={v}")]
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(wav), *meta, str(path)],
        check=True,
    )
    wav.unlink()
    return path
