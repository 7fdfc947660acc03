"""A second look at a candidate duplicate pair, from the audio: spectral-shape envelopes aligned at
any offset.

Why: a library keeps a few window vectors per track, each a few seconds long and on a grid that
starts at the file's first sample. A copy trimmed by a cut that is not a whole number of windows
puts every window across two of the original's, and a window vector cannot be shifted by a
fraction (docs/curate.md measures how far blending the two neighbours gets). The shape of the
spectrum every 50 ms can: log energies in 48 bands of an eighth of an octave, less each frame's
mean over the bands (so loudness and the beat are left out: two pieces with the same pulse would
otherwise match), each band then standardised over time. A transcode, a resampled copy or a gain
change keeps it, and a trim is a time lag found by cross-correlation over the allowed range. Two
pieces of one style share their average spectrum, not the order of their notes, so their
envelopes do not correlate at any lag.

The cost is decoding each candidate track once (at 8 kHz) and one FFT correlation per pair;
only pairs the window vectors leave undecided come here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from melodex.errors import MelodexError

SAMPLE_RATE = 8000
HOP = 400  # 50 ms
FRAME = 1024
BANDS = 48  # an eighth of an octave each: notes move energy between bands
#: band edges in Hz, log-spaced from 60 Hz to just under Nyquist
EDGES = np.geomspace(60.0, 3900.0, BANDS + 1)


def envelope(path: str | Path) -> np.ndarray | None:
    """Standardised log band energies of a file, (frames, BANDS), every ``HOP`` samples at
    ``SAMPLE_RATE``; None when the file cannot be read (gone, a CUE track's virtual path)."""
    from melodex.audio.decode import load_audio

    try:
        y = load_audio(path, sr=SAMPLE_RATE)
    except (MelodexError, OSError, ValueError):
        return None
    if len(y) < FRAME:
        return None
    n = 1 + (len(y) - FRAME) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(y, FRAME)[::HOP][:n]
    power = np.abs(np.fft.rfft(frames * np.hanning(FRAME).astype(np.float32), axis=1)) ** 2
    freqs = np.fft.rfftfreq(FRAME, 1.0 / SAMPLE_RATE)
    band = np.searchsorted(EDGES, freqs, side="right") - 1
    keep = (band >= 0) & (band < BANDS)
    energy = np.zeros((n, BANDS), np.float64)
    np.add.at(energy.T, band[keep], power[:, keep].T)
    env = np.log(energy + 1e-6)
    env -= env.mean(axis=1, keepdims=True)  # the spectrum's shape: loudness and beat removed
    env -= env.mean(axis=0)
    env /= np.maximum(env.std(axis=0), 1e-6)
    return env.astype(np.float32)


def envelope_match(a: np.ndarray, b: np.ndarray, *, max_shift: float | None = None) -> float:
    """The best correlation of two standardised envelopes over time lags (up to ``max_shift``
    seconds; any overlap if None), over the overlapping frames; 0.0 when they overlap by less
    than half the shorter."""
    if a is None or b is None or len(a) < 2 or len(b) < 2:
        return 0.0
    if len(a) > len(b):
        a, b = b, a
    size = 1 << int(np.ceil(np.log2(len(a) + len(b))))
    spec = np.fft.rfft(a, size, axis=0).conj() * np.fft.rfft(b, size, axis=0)
    corr = np.fft.irfft(spec, size, axis=0).sum(axis=1)  # corr[lag]: a[t] with b[t + lag]
    lags = np.arange(size)
    lags = np.where(lags >= size // 2, lags - size, lags)
    overlap = np.minimum(len(a), len(b) - lags) - np.maximum(0, -lags)
    ok = overlap >= max(2, len(a) // 2)
    if max_shift is not None:
        ok &= np.abs(lags) <= max_shift * SAMPLE_RATE / HOP + 1
    if not ok.any():
        return 0.0
    score = np.where(ok, corr / np.maximum(overlap, 1) / a.shape[1], -np.inf)
    # the FFT scores use each whole track's standardisation: redo the best few on the overlap
    best = 0.0
    for lag in lags[np.argsort(-score)[: min(3, int(ok.sum()))]]:
        x = a[max(0, -lag) : min(len(a), len(b) - lag)]
        y = b[max(0, -lag) + lag : min(len(a), len(b) - lag) + lag]
        x, y = x - x.mean(axis=0), y - y.mean(axis=0)
        denom = float(np.sqrt((x * x).sum() * (y * y).sum()))
        if denom > 1e-12:
            best = max(best, float((x * y).sum()) / denom)
    return best


class Envelopes:
    """Each file's envelope, decoded once (None for one that cannot be read)."""

    def __init__(self) -> None:
        self._cache: dict[str, np.ndarray | None] = {}

    def __call__(self, path: str) -> np.ndarray | None:
        if path not in self._cache:
            self._cache[path] = envelope(path)
        return self._cache[path]
