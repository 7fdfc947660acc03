"""Feature front-ends: a batch of mono float32 waveforms (B, samples) -> model inputs.

Each front-end is a frozen dataclass that is both its own config and the extractor: call it on a
``(B, samples)`` torch tensor (at ``sample_rate``, usually ``window_samples`` long). ``key()`` is
a stable string naming every parameter that changes the output (plus a version), so a feature
cache on disk can be keyed by it; ``to_dict()`` / :func:`get_frontend` round-trip through JSON.

Spectrogram front-ends return ``(B, n_frames, n_mels)`` (time first, as
:mod:`melodex.encoders.musicnn`); :class:`HandcraftedFrontend` returns ``(B, feature_dim)``.

Presets (``FRONTENDS``); the seed notes do not give front-end details except the tag-based metric
learning README, so the others follow the authors' published code:

- ``"shortchunk"``: tag-based metric learning seed, "sampling rate: 22050Hz, FFT window: Hanning,
  window length: 1024, hop size: 512, number of Mel bands: 128" and ``--input_length 173``
  frames (173 frames = 88,064 samples = 3.99 s with centred frames). The README does not name the
  log; we use dB (``10 log10(max(mel, 1e-10))``, no top-dB clipping), as the short-chunk CNN's
  reference code (torchaudio ``AmplitudeToDB``); the model's input batch norm rescales anyway.
  Centred frames with reflect padding (librosa < 0.10's default, which made the authors' data).
- ``"ttmr"``: TTMR (Doh et al., 2023) code: 16 kHz, 1024-point FFT, hop 160 (10 ms), 128 HTK mel
  bands without area normalisation up to 8 kHz (torchaudio ``MelScale`` defaults), dB, 9.91 s
  windows (992 frames). Not "512 FFT": that is musicnn's.
- ``"ttmrpp"``: TTMR++ code: 22,050 Hz, 1024-point FFT, hop 220, 128 Slaney mel bands, Whisper's
  log (``log10``, floor at max - 8, then ``(x + 4) / 4``), 10 s windows (1003 frames). Whisper
  takes the max over the whole batch; we take it per example, so a clip's features do not depend
  on its batch-mates.
- ``"musicnn"``: musicnn's own front-end (``melodex.encoders.musicnn.window_log_mels``), 16 kHz,
  3 s windows -> (B, 187, 96).
- ``"handcrafted"``: the two-branch seed's MFCC, spectral roll-off and zero-crossing rate.
- ``"acousticbrainz"``: no waveform at all: the same kinds of statistics read from an
  AcousticBrainz low-level JSON document (MARD's audio side), :class:`DescriptorFrontend`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor

from melodex.audio import acousticbrainz
from melodex.encoders import musicnn
from melodex.errors import ParameterError

__all__ = [
    "FRONTENDS",
    "DescriptorFrontend",
    "Frontend",
    "HandcraftedFrontend",
    "LogMelFrontend",
    "MusicnnFrontend",
    "frontend_to_config",
    "get_frontend",
]

LogKind = Literal["db", "log1p", "whisper", "none"]


def _import_librosa() -> Any:
    try:
        import librosa
    except ImportError as exc:  # a dev/lab dependency, not needed by the library door
        raise ImportError(
            "melodex.frontends needs librosa for mel filters and handcrafted features; "
            "install it with `pip install librosa`"
        ) from exc
    return librosa


def _check_batch(waveforms: Tensor, name: str) -> Tensor:
    if not isinstance(waveforms, Tensor):
        waveforms = torch.as_tensor(np.asarray(waveforms, dtype=np.float32))
    if waveforms.ndim != 2:
        raise ParameterError(
            f"{name}: expected waveforms of shape (B, samples), got {tuple(waveforms.shape)}"
        )
    return waveforms.to(torch.float32)


class _FrontendBase:
    """Shared config behaviour: a type tag, a stable cache key and JSON round-trips."""

    kind: ClassVar[str]
    version: ClassVar[int] = 1
    sample_rate: int
    window_samples: int

    def key(self) -> str:
        """Stable cache key: kind, version and every field, in field order."""
        fields = ",".join(f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self))  # type: ignore[arg-type]
        return f"{self.kind}/v{self.version}/{fields}"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, **dataclasses.asdict(self)}  # type: ignore[call-overload]

    @property
    def window_seconds(self) -> float:
        return self.window_samples / self.sample_rate


@lru_cache(maxsize=8)
def _mel_basis(
    sr: int, n_fft: int, n_mels: int, f_min: float, f_max: float | None, htk: bool, norm: str | None
) -> Tensor:
    """(1 + n_fft // 2, n_mels) float32 mel filters from librosa, computed once per setting."""
    librosa = _import_librosa()
    fb = librosa.filters.mel(
        sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=f_min, fmax=f_max, htk=htk, norm=norm
    )
    return torch.from_numpy(np.ascontiguousarray(fb.T, dtype=np.float32))


@dataclass(frozen=True)
class LogMelFrontend(_FrontendBase):
    """Log-mel spectrogram: |STFT|^2 (periodic Hann, centred frames) -> mel filters -> log.

    ``log``: ``"db"`` = 10 log10(max(mel, 1e-10)); ``"log1p"`` = log10(1 + log_scale * mel)
    (musicnn's form); ``"whisper"`` = TTMR++'s; ``"none"`` = the mel power itself, equal to
    ``librosa.feature.melspectrogram`` with the same parameters. Mel filters are librosa's
    (``htk=False, norm="slaney"`` by default). Output (B, n_frames, n_mels) with
    ``n_frames = 1 + samples // hop`` (centred frames).
    """

    kind: ClassVar[str] = "logmel"
    sample_rate: int = 22050
    n_fft: int = 1024
    hop: int = 512
    n_mels: int = 128
    f_min: float = 0.0
    f_max: float | None = None
    htk: bool = False
    mel_norm: str | None = "slaney"
    log: LogKind = "db"
    log_scale: float = 10000.0
    pad_mode: str = "reflect"
    window_samples: int = 88064

    def __post_init__(self) -> None:
        if self.log not in ("db", "log1p", "whisper", "none"):
            raise ParameterError(f"LogMelFrontend: unknown log {self.log!r}")
        if self.pad_mode not in ("reflect", "constant"):
            raise ParameterError(
                f"LogMelFrontend: pad_mode must be 'reflect' or 'constant', got {self.pad_mode!r}"
            )
        if self.hop <= 0 or self.n_fft <= 0 or self.n_mels <= 0:
            raise ParameterError(f"LogMelFrontend: n_fft, hop and n_mels must be positive: {self}")

    def n_frames_for(self, samples: int) -> int:
        return 1 + samples // self.hop

    @property
    def n_frames(self) -> int:
        """Frames of one ``window_samples`` window."""
        return self.n_frames_for(self.window_samples)

    @property
    def output_shape(self) -> tuple[int, int]:
        return (self.n_frames, self.n_mels)

    def mel_power(self, waveforms: Tensor) -> Tensor:
        """(B, samples) -> (B, n_frames, n_mels) mel power, before the log."""
        y = _check_batch(waveforms, "LogMelFrontend")
        window = torch.hann_window(self.n_fft, periodic=True, dtype=torch.float32, device=y.device)
        spec = torch.stft(
            y,
            self.n_fft,
            self.hop,
            window=window,
            center=True,
            pad_mode=self.pad_mode,
            return_complex=True,
        )
        power = torch.view_as_real(spec).square().sum(-1)  # (B, 1 + n_fft // 2, frames)
        fb = _mel_basis(
            self.sample_rate,
            self.n_fft,
            self.n_mels,
            self.f_min,
            self.f_max,
            self.htk,
            self.mel_norm,
        ).to(y.device)
        return torch.matmul(power.transpose(1, 2), fb)

    def __call__(self, waveforms: Tensor) -> Tensor:
        mel = self.mel_power(waveforms)
        if self.log == "db":
            return 10.0 * torch.log10(mel.clamp_min(1e-10))
        if self.log == "log1p":
            return torch.log10(1.0 + self.log_scale * mel)
        if self.log == "whisper":
            lg = torch.log10(mel.clamp_min(1e-10))
            floor = lg.amax(dim=(1, 2), keepdim=True) - 8.0
            return (torch.maximum(lg, floor) + 4.0) / 4.0
        return mel


@dataclass(frozen=True)
class MusicnnFrontend(_FrontendBase):
    """musicnn's log-mel (16 kHz, 512 FFT, hop 256, 96 bands, log10(1 + 10^4 mel)) on 3 s windows.

    Delegates to :func:`melodex.encoders.musicnn.window_log_mels`; output (B, 187, 96).
    """

    kind: ClassVar[str] = "musicnn"
    sample_rate: int = musicnn.MUSICNN_SR
    window_samples: int = musicnn.WINDOW_SAMPLES
    n_mels: int = musicnn.N_MELS
    n_frames: int = musicnn.N_FRAMES

    def __post_init__(self) -> None:
        expected = (musicnn.MUSICNN_SR, musicnn.WINDOW_SAMPLES, musicnn.N_MELS, musicnn.N_FRAMES)
        got = (self.sample_rate, self.window_samples, self.n_mels, self.n_frames)
        if got != expected:
            raise ParameterError(
                f"MusicnnFrontend is fixed at (sr, window, mels, frames) = {expected}, got {got}"
            )

    @property
    def output_shape(self) -> tuple[int, int]:
        return (self.n_frames, self.n_mels)

    def __call__(self, waveforms: Tensor) -> Tensor:
        y = _check_batch(waveforms, "MusicnnFrontend")
        # window_log_mels runs in inference mode; clone so the result can feed a trained model
        return musicnn.window_log_mels(y.detach().cpu().numpy()).clone()


@dataclass(frozen=True)
class HandcraftedFrontend(_FrontendBase):
    """The two-branch seed's audio features: MFCC, spectral roll-off, zero-crossing rate.

    Per window, frame-level ``librosa.feature`` values are summarised by their mean and standard
    deviation over frames, giving ``feature_dim = 2 * n_mfcc + 4`` values in this order:
    ``[mfcc mean (n_mfcc), mfcc std (n_mfcc), rolloff mean, rolloff std (Hz), zcr mean, zcr std]``.
    The seed does not say how many coefficients; 13 is what its feature source (AcousticBrainz
    low-level ``mfcc``) stores. Roll-off at 85% of the energy ("e.g. 85%" in the seed). ZCR is
    crossings per sample (a sine at f Hz gives ~2 f / sample_rate).

    The features are not standardised here: their scales differ by orders of magnitude (Hz
    vs. rates), and the mean/std must be learned on the training split only, so the trainer
    fits them (``HandcraftedMLP.fit_standardisation``) and the encoder stores them as buffers.
    """

    kind: ClassVar[str] = "handcrafted"
    sample_rate: int = 22050
    n_mfcc: int = 13
    n_fft: int = 2048
    hop: int = 512
    roll_percent: float = 0.85
    window_samples: int = 220500

    def __post_init__(self) -> None:
        if not 0.0 < self.roll_percent < 1.0:
            raise ParameterError(
                f"HandcraftedFrontend: roll_percent must be in (0, 1), got {self.roll_percent}"
            )
        if self.n_mfcc <= 0:
            raise ParameterError(f"HandcraftedFrontend: n_mfcc must be positive, got {self.n_mfcc}")

    @property
    def feature_dim(self) -> int:
        return 2 * self.n_mfcc + 4

    @property
    def output_shape(self) -> tuple[int]:
        return (self.feature_dim,)

    def feature_names(self) -> list[str]:
        return (
            [f"mfcc{i}_mean" for i in range(self.n_mfcc)]
            + [f"mfcc{i}_std" for i in range(self.n_mfcc)]
            + ["rolloff_mean", "rolloff_std", "zcr_mean", "zcr_std"]
        )

    def __call__(self, waveforms: Tensor) -> Tensor:
        librosa = _import_librosa()
        y = _check_batch(waveforms, "HandcraftedFrontend").detach().cpu().numpy()
        sr, n_fft, hop = self.sample_rate, self.n_fft, self.hop
        mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=self.n_mfcc, n_fft=n_fft, hop_length=hop)
        rolloff = librosa.feature.spectral_rolloff(
            y=y, sr=sr, n_fft=n_fft, hop_length=hop, roll_percent=self.roll_percent
        )[:, 0]
        zcr = librosa.feature.zero_crossing_rate(y, frame_length=n_fft, hop_length=hop)[:, 0]
        feats = np.concatenate(
            [
                mfcc.mean(-1),
                mfcc.std(-1),
                np.stack([rolloff.mean(-1), rolloff.std(-1), zcr.mean(-1), zcr.std(-1)], axis=1),
            ],
            axis=1,
        )
        return torch.from_numpy(feats.astype(np.float32))


@dataclass(frozen=True)
class DescriptorFrontend(_FrontendBase):
    """AcousticBrainz low-level descriptors read from a JSON document instead of decoded audio.

    The two-branch seed's audio branch reads AcousticBrainz documents (MARD's audio side), not
    waveforms. :meth:`read` turns one document into a ``(1, feature_dim)`` array: one "window"
    of `melodex.audio.acousticbrainz.DESCRIPTOR_DIM` (369) raw values, standardised later by
    the encoder with training-split statistics (``handcrafted_mlp`` stores them). Callers that
    see ``reads_files`` pass a file path to :meth:`read`; calling the front-end on waveforms is
    an error. ``sample_rate`` is the AcousticBrainz analysis rate and ``window_samples`` one
    second: both only fill a model config, nothing is decoded.
    """

    kind: ClassVar[str] = "acousticbrainz"
    reads_files: ClassVar[bool] = True
    feature_set: str = acousticbrainz.FEATURE_SET
    sample_rate: int = 44100
    window_samples: int = 44100

    def __post_init__(self) -> None:
        if self.feature_set != acousticbrainz.FEATURE_SET:
            raise ParameterError(
                f"DescriptorFrontend: unknown feature_set {self.feature_set!r}; "
                f"known: {acousticbrainz.FEATURE_SET!r}"
            )

    @property
    def feature_dim(self) -> int:
        return acousticbrainz.DESCRIPTOR_DIM

    @property
    def output_shape(self) -> tuple[int]:
        return (self.feature_dim,)

    def feature_names(self) -> list[str]:
        return list(acousticbrainz.DESCRIPTOR_NAMES)

    def read_document(self, path: str | Path) -> tuple[np.ndarray, float | None]:
        """``((1, feature_dim) float32 features, the track's length in seconds or None)``;
        a missing or malformed file is a `DatasetFormatError` naming it."""
        doc = acousticbrainz.read_lowlevel(path)
        vector = acousticbrainz.descriptor_vector(doc, where=str(path))
        return vector[None, :], acousticbrainz.descriptor_duration(doc)

    def read(self, path: str | Path) -> np.ndarray:
        """The ``(1, feature_dim)`` float32 features of one document."""
        return self.read_document(path)[0]

    def __call__(self, waveforms: Tensor) -> Tensor:
        raise ParameterError(
            "the acousticbrainz front-end reads AcousticBrainz JSON documents, not waveforms: "
            "give the model the document's path (embed_file), not decoded audio"
        )


Frontend = LogMelFrontend | MusicnnFrontend | HandcraftedFrontend | DescriptorFrontend
_KINDS: dict[str, type[Any]] = {
    cls.kind: cls
    for cls in (LogMelFrontend, MusicnnFrontend, HandcraftedFrontend, DescriptorFrontend)
}

FRONTENDS: dict[str, Frontend] = {
    "shortchunk": LogMelFrontend(),
    "ttmr": LogMelFrontend(
        sample_rate=16000,
        n_fft=1024,
        hop=160,
        n_mels=128,
        f_max=8000.0,
        htk=True,
        mel_norm=None,
        log="db",
        window_samples=158560,  # 9.91 s
    ),
    "ttmrpp": LogMelFrontend(
        sample_rate=22050, n_fft=1024, hop=220, n_mels=128, log="whisper", window_samples=220500
    ),
    "musicnn": MusicnnFrontend(),
    "handcrafted": HandcraftedFrontend(),
    "acousticbrainz": DescriptorFrontend(),
}


def get_frontend(spec: str | dict[str, Any] | Frontend) -> Frontend:
    """A front-end from a preset name, a ``to_dict()`` dict (with ``"type"``) or an instance."""
    if isinstance(spec, _FrontendBase):
        return spec  # type: ignore[return-value]
    if isinstance(spec, str):
        if spec not in FRONTENDS:
            raise ParameterError(
                f"unknown front-end preset {spec!r}; available: {', '.join(FRONTENDS)}"
            )
        return FRONTENDS[spec]
    if isinstance(spec, dict):
        params = dict(spec)
        kind = params.pop("type", None)
        if kind not in _KINDS:
            raise ParameterError(
                f"front-end config needs a 'type' among {sorted(_KINDS)}, got {kind!r}"
            )
        cls = _KINDS[kind]
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ParameterError(f"unknown {kind} front-end parameter(s) {unknown}")
        return cls(**params)
    raise TypeError(f"cannot make a front-end from {type(spec).__name__}")


def frontend_to_config(frontend: str | dict[str, Any] | Frontend) -> str | dict[str, Any]:
    """JSON form of a front-end: the preset name when it is one, else its ``to_dict()``."""
    if isinstance(frontend, str | dict):
        return frontend
    for name, preset in FRONTENDS.items():
        if preset == frontend:
            return name
    return frontend.to_dict()
