"""Mid-level descriptors of a track: tempo, key and mode, loudness, duration.

Plain functions over a mono float signal, in librosa's style; :func:`describe_signal` runs them
all and returns a frozen :class:`Descriptors`. They are cheap enough to run beside the taggers
while a library is indexed (see ``docs/descriptors.md`` for the measured cost and accuracy).

Analysis rule
    Tempo and key are computed on at most :data:`MAX_ANALYSIS_S` (60) seconds of audio: a track
    up to 60 s is used whole; a longer one contributes :data:`N_EXCERPTS` (4) excerpts of 15 s,
    the excerpt ``i`` centred at ``(2i + 1) / 8`` of the track (12.5 %, 37.5 %, 62.5 %, 87.5 %),
    so intros and fades weigh little. The excerpts are resampled (soxr) to
    :data:`ANALYSIS_SR` = 11,025 Hz: onsets and chroma need nothing above 5.5 kHz.
    Loudness is measured on the whole signal at the rate it is given.

Tempo (:func:`estimate_tempo`)
    librosa's spectral-flux onset strength (hop 256 samples = 23 ms) minus its mean, its
    autocorrelation tempogram (8 s windows) averaged over the analysed frames, weighted by a log-normal prior
    centred at :data:`PRIOR_BPM` = 120 BPM with a standard deviation of one octave (librosa's
    default), searched between 40 and 240 BPM; the peak lag is refined by parabolic
    interpolation. Octaves are **not** resolved: the estimate is the periodicity the prior favours,
    which may be twice or half the notated beat (a 6/8 jig at 100 dotted-quarter beats may come
    out at 200 or 300 eighth notes... or at 100). Filters should tolerate octave errors.

Key (:func:`estimate_key`)
    Constant-Q chroma (36 bins per octave, C1 to C8) summed over the analysed frames, each frame
    normalised by its maximum, correlated (Pearson) with the 24 rotations of a major and a minor
    key profile (:data:`KEY_PROFILES`: Temperley's Kostka-Payne profile by default, or
    Krumhansl-Kessler, which scored 0.17 lower on the demo corpus: its flatter weights let the
    upper harmonics of each note pull the estimate a fifth up). The tonic is spelled as in the demo corpus (``"Eb"``, ``"F#"``; ``"C#"`` and ``"G#"``
    in minor). Only major and minor: modal music gets its nearest major or minor key.

Loudness (:func:`loudness`)
    Integrated loudness in LUFS after ITU-R BS.1770-4, for one channel: K-weighting (the two
    biquads of the standard, derived for any sample rate with the bilinear transform, applied with
    :func:`scipy.signal.sosfilt`), 400 ms blocks every 100 ms, an absolute gate at -70 LUFS and a
    relative gate 10 LU below the ungated mean. A full-scale 997 Hz sine reads -3.01 LUFS. The
    input is the already-downmixed mono signal, so a stereo file reads about 3 LU lower than a
    BS.1770 meter summing both channels; at 16 kHz the K-weighting sees nothing above 8 kHz.

Silence and short signals
    Every estimator returns None (confidence 0.0) instead of guessing: tempo needs
    :data:`MIN_TEMPO_S` (3) seconds and some onset energy, key :data:`MIN_KEY_S` (1.5) seconds
    above :data:`SILENCE_DB`, loudness a block above the absolute gate.
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass
from typing import Literal

import numpy as np
import soxr

from melodex.errors import ParameterError

__all__ = [
    "ANALYSIS_SR",
    "KEY_PROFILES",
    "MAX_ANALYSIS_S",
    "MIN_KEY_S",
    "MIN_TEMPO_S",
    "PRIOR_BPM",
    "DescriptorFilter",
    "Descriptors",
    "KeyFilter",
    "analysis_excerpts",
    "describe_signal",
    "descriptor_filters",
    "estimate_key",
    "estimate_tempo",
    "k_weighting",
    "loudness",
    "parse_bpm_range",
    "parse_key_filter",
    "pitch_class",
]

#: Sample rate (Hz) tempo and key are computed at.
ANALYSIS_SR = 11_025
#: Most seconds of audio tempo and key look at; longer tracks are sampled in excerpts.
MAX_ANALYSIS_S = 60.0
#: Number of excerpts taken from a track longer than :data:`MAX_ANALYSIS_S`.
N_EXCERPTS = 4
#: Centre (BPM) of the log-normal tempo prior; its standard deviation is one octave.
PRIOR_BPM = 120.0
#: Shortest signal (s) a tempo is estimated for.
MIN_TEMPO_S = 3.0
#: Shortest excerpt (s) a key is estimated from.
MIN_KEY_S = 1.5
#: Peak level (dBFS) below which a signal counts as silent for tempo and key.
SILENCE_DB = -60.0

_HOP = 256  # onset and chroma hop at ANALYSIS_SR: 23.2 ms
_TEMPO_RANGE = (40.0, 240.0)
_TEMPOGRAM_WIN = 348  # frames: ~8.1 s at 23.2 ms
_BINS_PER_OCTAVE = 36
_N_OCTAVES = 7

_SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_MAJOR_TONICS = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_MINOR_TONICS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")

#: Major and minor key profiles (C tonic first), 12 weights each.
KEY_PROFILES: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    # Krumhansl & Kessler (1982), probe-tone ratings.
    "krumhansl": (
        (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88),
        (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17),
    ),
    # Temperley (2007), pitch-class distributions of the Kostka-Payne corpus.
    "temperley": (
        (0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366, 0.057, 0.400),
        (0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067, 0.133, 0.330),
    ),
}

Mode = Literal["major", "minor"]


@dataclass(frozen=True)
class Descriptors:
    """What :func:`describe_signal` measures; None where the signal gives no answer.

    Attributes
    ----------
    bpm : tempo in beats per minute (octave-ambiguous, see :func:`estimate_tempo`).
    bpm_confidence : 0..1, the mean normalised autocorrelation of the onset strength at the beat
        period (1.0 for a perfectly periodic click train, near 0 for noise).
    key : tonic name, e.g. ``"D"``, ``"Eb"``, ``"F#"``.
    mode : ``"major"`` or ``"minor"``.
    key_confidence : 0..1, the Pearson correlation of the chroma with the chosen key profile
        (clipped at 0).
    loudness_lufs : integrated loudness (BS.1770, mono, gated) in LUFS.
    duration : length of the signal in seconds.
    """

    bpm: float | None
    bpm_confidence: float
    key: str | None
    mode: Mode | None
    key_confidence: float
    loudness_lufs: float | None
    duration: float


# --------------------------------------------------------------------------- checks


def _check_signal(y: np.ndarray, sr: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ParameterError(f"y must be a 1-D mono signal, got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.floating):
        raise ParameterError(f"y must hold floats, got dtype {y.dtype}")
    if isinstance(sr, bool) or not isinstance(sr, int | np.integer) or sr <= 0:
        raise ParameterError(f"sr must be a positive integer, got {sr!r}")
    if not np.all(np.isfinite(y)):
        raise ParameterError("y holds NaN or infinite samples")
    return y.astype(np.float32, copy=False)


def _is_silent(y: np.ndarray) -> bool:
    return y.size == 0 or float(np.max(np.abs(y))) < 10 ** (SILENCE_DB / 20)


# --------------------------------------------------------------------------- excerpts


def analysis_excerpts(
    y: np.ndarray,
    *,
    sr: int,
    max_seconds: float = MAX_ANALYSIS_S,
    n_excerpts: int = N_EXCERPTS,
) -> list[np.ndarray]:
    """The parts of ``y`` tempo and key look at, resampled to :data:`ANALYSIS_SR`.

    The whole signal when it lasts at most ``max_seconds``; otherwise ``n_excerpts`` excerpts of
    ``max_seconds / n_excerpts`` seconds, excerpt ``i`` centred at ``(2i + 1) / (2 n_excerpts)`` of
    the track.

    Returns
    -------
    list of np.ndarray, each shape (n,), float32 at :data:`ANALYSIS_SR`
    """
    y = _check_signal(y, sr)
    n = y.shape[0]
    if n <= max_seconds * sr:
        spans = [(0, n)]
    else:
        width = int(max_seconds / n_excerpts * sr)
        centres = [(2 * i + 1) * n // (2 * n_excerpts) for i in range(n_excerpts)]
        spans = [(c - width // 2, c - width // 2 + width) for c in centres]
    out = []
    for a, b in spans:
        part = y[a:b]
        if sr != ANALYSIS_SR and part.size:
            part = soxr.resample(part, sr, ANALYSIS_SR, quality="HQ")
        out.append(np.ascontiguousarray(part, dtype=np.float32))
    return out


# --------------------------------------------------------------------------- tempo


def _tempo_prior(bpms: np.ndarray, start_bpm: float) -> np.ndarray:
    with np.errstate(divide="ignore"):
        prior = np.exp(-0.5 * (np.log2(bpms) - np.log2(start_bpm)) ** 2)
    prior[(bpms < _TEMPO_RANGE[0]) | (bpms > _TEMPO_RANGE[1])] = 0.0
    return prior


def estimate_tempo(
    excerpts: list[np.ndarray], *, start_bpm: float = PRIOR_BPM
) -> tuple[float | None, float]:
    """Tempo (BPM) and its confidence from excerpts at :data:`ANALYSIS_SR`.

    The onset-strength autocorrelation tempogram of each excerpt is averaged over all frames,
    multiplied by a log-normal prior centred at ``start_bpm`` (one octave standard deviation,
    zero outside 40-240 BPM), and its peak lag refined by a parabola through the neighbours.

    Returns
    -------
    (bpm, confidence) : (float or None, float)
        None and 0.0 when the excerpts hold less than :data:`MIN_TEMPO_S` seconds in all, are
        silent, or have no periodicity.
    """
    import librosa

    sr = ANALYSIS_SR
    total = sum(x.shape[0] for x in excerpts)
    if total < MIN_TEMPO_S * sr or all(_is_silent(x) for x in excerpts):
        return None, 0.0
    acc = np.zeros(_TEMPOGRAM_WIN, dtype=np.float64)
    frames = 0
    for x in excerpts:
        if x.shape[0] < 2048 or _is_silent(x):
            continue
        env = librosa.onset.onset_strength(y=x, sr=sr, hop_length=_HOP, n_fft=1024, n_mels=64)
        env = env - env.mean()  # without its mean, noise has no periodicity
        if not np.any(env > 0):
            continue
        tg = librosa.feature.tempogram(
            onset_envelope=env, sr=sr, hop_length=_HOP, win_length=_TEMPOGRAM_WIN
        )
        acc += tg.sum(axis=1)
        frames += tg.shape[1]
    if frames == 0:
        return None, 0.0
    ac = acc / frames
    bpms = librosa.tempo_frequencies(_TEMPOGRAM_WIN, hop_length=_HOP, sr=sr)
    score = ac * _tempo_prior(bpms, start_bpm)
    lag = int(np.argmax(score))
    if score[lag] <= 0:
        return None, 0.0
    confidence = float(np.clip(ac[lag], 0.0, 1.0))
    frac = 0.0
    if 0 < lag < _TEMPOGRAM_WIN - 1:  # parabolic refinement of the lag
        a, b, c = ac[lag - 1], ac[lag], ac[lag + 1]
        denom = a - 2 * b + c
        if denom < 0:
            frac = float(np.clip(0.5 * (a - c) / denom, -0.5, 0.5))
    bpm = 60.0 * sr / (_HOP * (lag + frac))
    return round(bpm, 2), round(confidence, 4)


# --------------------------------------------------------------------------- key


def _chroma(excerpts: list[np.ndarray]) -> np.ndarray | None:
    """Mean of max-normalised CQT chroma frames over the excerpts, shape (12,), C first."""
    import librosa

    total = np.zeros(12, dtype=np.float64)
    count = 0
    for x in excerpts:
        if x.shape[0] < MIN_KEY_S * ANALYSIS_SR or _is_silent(x):
            continue
        ch = librosa.feature.chroma_cqt(
            y=x,
            sr=ANALYSIS_SR,
            hop_length=_HOP,
            bins_per_octave=_BINS_PER_OCTAVE,
            n_octaves=_N_OCTAVES,
            n_chroma=12,
            norm=np.inf,
            threshold=0.0,
        )
        keep = ch.max(axis=0) > 0
        total += ch[:, keep].sum(axis=1)
        count += int(keep.sum())
    if count == 0 or not np.any(total > 0):
        return None
    return total / count


def estimate_key(
    excerpts: list[np.ndarray], *, profile: str = "temperley"
) -> tuple[str | None, Mode | None, float]:
    """Key (tonic name), mode and confidence from excerpts at :data:`ANALYSIS_SR`.

    The mean chroma is correlated with the 24 rotations of the major and minor ``profile``
    (a name in :data:`KEY_PROFILES`); the best correlation wins.

    Returns
    -------
    (key, mode, confidence) : (str or None, "major" | "minor" | None, float)
        None, None, 0.0 when the excerpts are silent or shorter than :data:`MIN_KEY_S`.
    """
    if profile not in KEY_PROFILES:
        raise ParameterError(f"unknown key profile {profile!r}; known: {sorted(KEY_PROFILES)}")
    chroma = _chroma(excerpts)
    if chroma is None or np.ptp(chroma) == 0:
        return None, None, 0.0
    best: tuple[float, int, Mode] = (-2.0, 0, "major")
    for mode, prof in zip(("major", "minor"), KEY_PROFILES[profile], strict=True):
        p = np.asarray(prof)
        for tonic in range(12):
            r = float(np.corrcoef(chroma, np.roll(p, tonic))[0, 1])
            if r > best[0]:
                best = (r, tonic, mode)  # type: ignore[assignment]
    r, tonic, mode = best
    names = _MAJOR_TONICS if mode == "major" else _MINOR_TONICS
    return names[tonic], mode, round(max(r, 0.0), 4)


# --------------------------------------------------------------------------- loudness


def k_weighting(sr: int) -> np.ndarray:
    """BS.1770 K-weighting filter at ``sr`` as second-order sections, shape (2, 6).

    The high shelf (+4 dB above ~1.7 kHz) and the RLB high-pass (~38 Hz) of the standard, from
    their analogue parameters by the bilinear transform (libebur128's constants); at 48 kHz they equal the coefficients
    printed in ITU-R BS.1770-4 to 1e-8.
    """
    if sr <= 0:
        raise ParameterError(f"sr must be positive, got {sr!r}")
    # high shelf (constants of libebur128, fitted to the 48 kHz coefficients of the standard)
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / sr)
    vh = 10 ** (gain_db / 20)
    vb = vh**0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf = [
        (vh + vb * k / q + k * k) / a0,
        2 * (k * k - vh) / a0,
        (vh - vb * k / q + k * k) / a0,
        1.0,
        2 * (k * k - 1) / a0,
        (1 - k / q + k * k) / a0,
    ]
    # RLB high-pass
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / sr)
    a0 = 1 + k / q + k * k
    hp = [1.0, -2.0, 1.0, 1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]
    return np.array([shelf, hp], dtype=np.float64)


def loudness(y: np.ndarray, *, sr: int) -> float | None:
    """Integrated loudness of a mono signal in LUFS (ITU-R BS.1770-4, one channel).

    K-weighted mean square over 400 ms blocks with 75 % overlap; blocks below -70 LUFS are
    dropped, then blocks more than 10 LU below the mean of the rest. A signal shorter than
    400 ms is one block. None when every block is gated (silence).
    """
    from scipy.signal import sosfilt

    y = _check_signal(y, sr)
    if y.size == 0:
        return None
    z = sosfilt(k_weighting(int(sr)), y.astype(np.float64))
    block, step = int(round(0.4 * sr)), int(round(0.1 * sr))
    c = np.concatenate([[0.0], np.cumsum(z * z)])
    if z.size <= block:
        ms = np.array([c[-1] / z.size])
    else:
        starts = np.arange(0, z.size - block + 1, step)
        ms = (c[starts + block] - c[starts]) / block
    with np.errstate(divide="ignore"):
        lev = -0.691 + 10 * np.log10(ms)
    kept = ms[lev > -70.0]
    if kept.size == 0:
        return None
    gate = -0.691 + 10 * math.log10(kept.mean()) - 10.0
    with np.errstate(divide="ignore"):
        kept = kept[-0.691 + 10 * np.log10(kept) > gate]
    return round(-0.691 + 10 * math.log10(kept.mean()), 2)


# --------------------------------------------------------------------------- all together


def describe_signal(
    y: np.ndarray,
    *,
    sr: int,
    max_seconds: float = MAX_ANALYSIS_S,
    key_profile: str = "temperley",
    start_bpm: float = PRIOR_BPM,
) -> Descriptors:
    """Tempo, key, mode, loudness and duration of a mono signal.

    Parameters
    ----------
    y : np.ndarray, shape (n,), float
        Mono audio, as :func:`melodex.audio.load_audio` returns it.
    sr : int
        Its sample rate in Hz (any; tempo and key resample to :data:`ANALYSIS_SR`).
    max_seconds : float
        Audio analysed for tempo and key (see :func:`analysis_excerpts`).
    key_profile : str
        A name in :data:`KEY_PROFILES`.
    start_bpm : float
        Centre of the tempo prior.

    Examples
    --------
    >>> sr = 22050
    >>> t = np.arange(10 * sr) / sr
    >>> y = np.sin(2 * np.pi * 440 * t) * (t % 0.5 < 0.05)  # 120 BPM beeps of A4
    >>> d = describe_signal(y.astype(np.float32), sr=sr)
    >>> round(d.bpm), d.duration
    (120, 10.0)
    """
    y = _check_signal(y, sr)
    duration = round(y.shape[0] / sr, 3)
    if _is_silent(y):
        return Descriptors(None, 0.0, None, None, 0.0, loudness(y, sr=sr), duration)
    excerpts = analysis_excerpts(y, sr=sr, max_seconds=max_seconds)
    bpm, bpm_conf = estimate_tempo(excerpts, start_bpm=start_bpm)
    key, mode, key_conf = estimate_key(excerpts, profile=key_profile)
    return Descriptors(bpm, bpm_conf, key, mode, key_conf, loudness(y, sr=sr), duration)


# --------------------------------------------------------------------------- filters

_ACCIDENTAL = {"": 0, "#": 1, "b": -1, "-sharp": 1, "-flat": -1, " sharp": 1, " flat": -1}
_TONIC_RE = re.compile(r"^([a-g])(#|b|-sharp|-flat| sharp| flat|♯|♭)?$", re.IGNORECASE)
_MODE_WORDS = {"major": "major", "maj": "major", "minor": "minor", "min": "minor", "m": "minor"}


def pitch_class(tonic: str) -> int:
    """Pitch class (C = 0) of a tonic name: ``"D"``, ``"f#"``, ``"Bb"``, ``"E-flat"``, ``"C♯"``."""
    m = _TONIC_RE.match(tonic.strip())
    if not m:
        raise ParameterError(f"not a key name: {tonic!r} (expected a letter A-G with # or b)")
    acc = (m.group(2) or "").lower().replace("♯", "#").replace("♭", "b")
    return ("c", "", "d", "", "e", "f", "", "g", "", "a", "", "b").index(
        m.group(1).lower()
    ) + _ACCIDENTAL[acc]


@dataclass(frozen=True)
class KeyFilter:
    """A key filter: a tonic pitch class, a mode, or both (None matches anything).

    Call it on ``(key, mode)``; a track whose key or mode is unknown matches only a filter that
    does not ask for it.
    """

    pitch_class: int | None
    mode: Mode | None

    def __call__(self, key: str | None, mode: str | None) -> bool:
        if self.mode is not None and mode != self.mode:
            return False
        if self.pitch_class is not None:
            if key is None:
                return False
            try:
                return pitch_class(key) % 12 == self.pitch_class
            except ValueError:
                return False
        return True


def parse_key_filter(text: str) -> KeyFilter:
    """Parse a ``--key`` value: ``"minor"``, ``"D"``, ``"D minor"``, ``"F# maj"``, ``"Bbm"``.

    Examples
    --------
    >>> parse_key_filter("D minor")
    KeyFilter(pitch_class=2, mode='minor')
    >>> parse_key_filter("major")("G", "major")
    True
    """
    s = " ".join(str(text).split()).strip()
    if not s:
        raise ParameterError("empty key filter; expected e.g. 'minor', 'D', 'D minor'")
    low = s.lower()
    if low in ("major", "minor"):
        return KeyFilter(None, low)  # type: ignore[arg-type]
    m = re.match(r"^(.*?)(?:\s*(major|maj|minor|min)|(?<=[A-Ga-g#b])(m))$", s, re.IGNORECASE)
    tonic, mode = s, None
    if m and m.group(1):
        tonic = m.group(1)
        mode = _MODE_WORDS[(m.group(2) or m.group(3)).lower()]
    try:
        pc = pitch_class(tonic) % 12
    except ValueError:
        raise ParameterError(
            f"bad key filter {text!r}: expected 'major', 'minor', a tonic (D, F#, Bb) "
            "or a tonic and mode ('D minor')"
        ) from None
    return KeyFilter(pc, mode)  # type: ignore[arg-type]


def parse_bpm_range(text: str) -> tuple[float, float]:
    """Parse a ``--bpm`` value: ``"60-90"`` -> ``(60.0, 90.0)``; ``"120"`` -> 120 +/- 4 %.

    Bounds are inclusive, positive and at most 400; the low bound must not exceed the high one.
    """
    s = str(text).strip().lower().removesuffix("bpm").strip()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(?:-|\.\.|–|to)\s*(\d+(?:\.\d+)?)", s)
    if m:
        lo, hi = float(m.group(1)), float(m.group(2))
    elif re.fullmatch(r"\d+(?:\.\d+)?", s):
        lo, hi = float(s) * 0.96, float(s) * 1.04
    else:
        raise ParameterError(
            f"bad bpm range {text!r}: expected 'LOW-HIGH' (e.g. 60-90) or one tempo"
        )
    if not 0 < lo <= hi <= 400:
        raise ParameterError(f"bad bpm range {text!r}: need 0 < low <= high <= 400")
    return round(lo, 3), round(hi, 3)


@dataclass(frozen=True)
class DescriptorFilter:
    """Parsed ``--bpm``/``--key`` filters; call it on a :class:`Descriptors` (or use the parts).

    ``octaves=True`` also accepts a tempo whose double or half lies in the range, since tempo
    estimates are octave-ambiguous.
    """

    bpm: tuple[float, float] | None = None
    key: KeyFilter | None = None
    octaves: bool = False

    def bpm_matches(self, bpm: float | None) -> bool:
        if self.bpm is None:
            return True
        if bpm is None:
            return False
        lo, hi = self.bpm
        factors = (1.0, 2.0, 0.5) if self.octaves else (1.0,)
        return any(lo <= bpm * f <= hi for f in factors)

    def __call__(self, d: Descriptors) -> bool:
        key_ok = self.key is None or self.key(d.key, d.mode)
        return key_ok and self.bpm_matches(d.bpm)


def descriptor_filters(text: str, *, octaves: bool = False) -> DescriptorFilter:
    """Parse filter options, e.g. ``'--bpm 60-90 --key "D minor"'`` or ``"--key=minor"``.

    Each of ``--bpm`` and ``--key`` may appear once; anything else is an error naming it.

    Examples
    --------
    >>> f = descriptor_filters('--bpm 60-90 --key "D minor"')
    >>> f.bpm, f.key
    ((60.0, 90.0), KeyFilter(pitch_class=2, mode='minor'))
    """
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ParameterError(f"bad filter spec {text!r}: {exc}") from None
    found: dict[str, str] = {}
    i = 0
    while i < len(words):
        word = words[i]
        name, eq, value = word.partition("=")
        if name not in ("--bpm", "--key"):
            raise ParameterError(
                f"bad filter spec {text!r}: unknown option {word!r} (use --bpm, --key)"
            )
        if not eq:
            if i + 1 >= len(words):
                raise ParameterError(f"bad filter spec {text!r}: {name} needs a value")
            value = words[i + 1]
            i += 1
            # an unquoted "--key D minor": take a following mode word too
            if name == "--key" and i + 1 < len(words) and words[i + 1].lower() in _MODE_WORDS:
                value += " " + words[i + 1]
                i += 1
        if name in found:
            raise ParameterError(f"bad filter spec {text!r}: {name} given twice")
        found[name] = value
        i += 1
    return DescriptorFilter(
        bpm=parse_bpm_range(found["--bpm"]) if "--bpm" in found else None,
        key=parse_key_filter(found["--key"]) if "--key" in found else None,
        octaves=octaves,
    )
