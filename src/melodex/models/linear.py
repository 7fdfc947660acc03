"""Linear-projection joint models: CCA, WSABIE and random baselines around frozen extractors.

Each is a pair of affine maps into a joint space, ``z_audio = (a - mu_a) @ W_a`` and
``z_text = (t - mu_t) @ W_t``, compared by cosine (architecture ``"linear-projection"``):

- audio features: the packaged musicnn taggers' tag probabilities (by default ``MTT_musicnn`` +
  ``MSD_musicnn``, 50 + 50 values, concatenated in that order, not merged) per window; a track's
  vector is the mean of its windows' projections (the maps are affine, so this equals projecting
  the window-mean features);
- text features: L2-normalised sentence embeddings (all-MiniLM-L6-v2 by default).

Fitting the maps is the lab's job (:mod:`melodex.evaluate.baselines`); this module only applies
them, so the library can serve a fitted baseline like any other model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from melodex.audio import frame_windows, load_audio, select_windows
from melodex.encoders.musicnn import MUSICNN_SR, WINDOW_SAMPLES
from melodex.encoders.text import DEFAULT_TEXT_MODEL, TextEncoder
from melodex.errors import ModelLoadError, ParameterError, bad_value
from melodex.models.base import WindowedJointModel, WindowOutputs, l2_normalize
from melodex.models.config import ModelConfig, parse_options
from melodex.models.folder import check_weights
from melodex.models.zero_shot import TaggerBank, merged_vocabulary

ARCHITECTURE = "linear-projection"
KINDS = ("cca", "wsabie", "random")
DEFAULT_TAGGERS = ("MTT_musicnn", "MSD_musicnn")

__all__ = [
    "ARCHITECTURE",
    "DEFAULT_TAGGERS",
    "KINDS",
    "BaselineFeatures",
    "CCAProjection",
    "LinearOptions",
    "LinearProjection",
    "LinearProjectionModel",
    "WsabieProjection",
]

# ------------------------------------------------------------------------------ projections


@dataclass
class LinearProjection:
    """Two affine maps into a joint space: ``z = (x - mean) @ proj`` on each side."""

    kind: str
    audio_mean: np.ndarray  # (Fa,)
    audio_proj: np.ndarray  # (Fa, dim)
    text_mean: np.ndarray  # (Ft,)
    text_proj: np.ndarray  # (Ft, dim)

    @property
    def dim(self) -> int:
        return int(self.audio_proj.shape[1])

    def project_audio(self, features: np.ndarray, *, normalize: bool = True) -> np.ndarray:
        """(N, Fa) audio features -> (N, dim) joint vectors (L2-normalised by default)."""
        return self._project(features, self.audio_mean, self.audio_proj, "audio", normalize)

    def project_text(self, features: np.ndarray, *, normalize: bool = True) -> np.ndarray:
        """(N, Ft) text features -> (N, dim) joint vectors (L2-normalised by default)."""
        return self._project(features, self.text_mean, self.text_proj, "text", normalize)

    @staticmethod
    def _project(
        x: np.ndarray, mean: np.ndarray, proj: np.ndarray, side: str, normalize: bool
    ) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if x.shape[-1] != mean.shape[0]:
            raise ParameterError(
                f"{side} features have {x.shape[-1]} dimensions, the projection expects "
                f"{mean.shape[0]}"
            )
        z = (x - mean) @ proj
        return l2_normalize(z) if normalize else z.astype(np.float32)

    def weights(self) -> dict[str, np.ndarray]:
        """The tensors saved in ``model.safetensors`` (float32)."""
        return {
            "audio_mean": np.asarray(self.audio_mean, np.float32),
            "audio_proj": np.asarray(self.audio_proj, np.float32),
            "text_mean": np.asarray(self.text_mean, np.float32),
            "text_proj": np.asarray(self.text_proj, np.float32),
        }

    def info(self) -> dict[str, Any]:
        """JSON-able facts about the fit, kept in the model config."""
        return {}


@dataclass
class CCAProjection(LinearProjection):
    correlations: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (dim,) descending

    def info(self) -> dict[str, Any]:
        return {"correlations": [float(c) for c in self.correlations]}


@dataclass
class WsabieProjection(LinearProjection):
    losses: list[float] = field(default_factory=list)  # mean WARP loss per epoch

    def info(self) -> dict[str, Any]:
        return {"losses": [float(v) for v in self.losses]}


# ------------------------------------------------------------------------------ features


class BaselineFeatures:
    """The frozen extractors: musicnn tag probabilities per window, sentence embeddings.

    Both load lazily (the taggers take ~2 s, the sentence encoder ~5 s).
    """

    def __init__(
        self,
        *,
        taggers: Sequence[str] = DEFAULT_TAGGERS,
        text_encoder: str | TextEncoder = DEFAULT_TEXT_MODEL,
        bank: TaggerBank | None = None,
    ):
        self.tagger_names = list(bank.names if bank is not None else taggers)
        self._bank = bank
        self._text = text_encoder if isinstance(text_encoder, TextEncoder) else None
        self.text_encoder_name = (
            text_encoder.name if isinstance(text_encoder, TextEncoder) else text_encoder
        )

    @property
    def bank(self) -> TaggerBank:
        if self._bank is None:
            self._bank = TaggerBank(self.tagger_names)
        return self._bank

    @property
    def text_encoder(self) -> TextEncoder:
        if self._text is None:
            self._text = TextEncoder(self.text_encoder_name)
        return self._text

    @property
    def audio_dim(self) -> int:
        return sum(len(t.tags) for t in self.bank.taggers)

    @property
    def text_dim(self) -> int:
        return self.text_encoder.dim

    def window_features(
        self, y: np.ndarray, *, max_windows: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """16 kHz mono signal -> ((W, audio_dim) tag probabilities, (W,) window starts in s)."""
        windows = frame_windows(np.asarray(y, np.float32), window=WINDOW_SAMPLES)
        if len(windows) == 0:
            raise ParameterError("empty waveform: no audio windows to embed")
        chosen = select_windows(len(windows), max_windows=max_windows)
        starts = (chosen * WINDOW_SAMPLES / MUSICNN_SR).astype(np.float32)
        return self.bank.tag_windows(windows[chosen]), starts

    def audio(
        self,
        audio: Sequence[str | Path | np.ndarray] | str | Path | np.ndarray,
        *,
        max_windows: int | None = 8,
    ) -> np.ndarray:
        """Files or 16 kHz waveforms -> (N, audio_dim) window-mean features (one gives (F,))."""
        single = isinstance(audio, str | Path) or (
            isinstance(audio, np.ndarray) and audio.ndim == 1
        )
        rows = []
        for item in [audio] if single else list(audio):
            y = item if isinstance(item, np.ndarray) else load_audio(item, sr=MUSICNN_SR)
            rows.append(self.window_features(y, max_windows=max_windows)[0].mean(axis=0))
        out = np.stack(rows) if rows else np.zeros((0, self.audio_dim), np.float32)
        return out[0] if single else out

    def text(self, texts: Sequence[str] | str, *, batch_size: int = 64) -> np.ndarray:
        """Texts -> (N, text_dim) L2-normalised sentence embeddings (one gives (F,))."""
        return self.text_encoder.encode(texts, batch_size=batch_size, normalize=True)


# ------------------------------------------------------------------------------ joint model


@dataclass(frozen=True)
class LinearOptions:
    """``config.options`` of a linear-projection model (what was fitted, on what)."""

    kind: str
    taggers: list[str]
    audio_feature_dim: int
    text_feature_dim: int
    audio_features: str = "musicnn tag probabilities, mean over windows"
    text_features: str = "L2-normalised sentence embedding"
    fit: dict[str, Any] = field(default_factory=dict)  # the fit's numeric options
    n_pairs: int = 0
    correlations: list[float] | None = None  # CCA: canonical correlations, descending
    losses: list[float] | None = None  # WSABIE: mean WARP loss per epoch

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise bad_value("options.kind", self.kind, f"one of {KINDS}")


class LinearProjectionModel(WindowedJointModel):
    """A fitted baseline behind the :class:`~melodex.models.JointModel` API."""

    def __init__(
        self,
        config: ModelConfig,
        weights: dict[str, np.ndarray],
        *,
        features: BaselineFeatures | None = None,
        source: str | None = None,
    ):
        super().__init__(config, weights, source=source)
        where = source or config.name
        opts = parse_options(LinearOptions, config.options, source=where)
        self.options = opts
        fa, ft = opts.audio_feature_dim, opts.text_feature_dim
        check_weights(
            weights,
            {
                "audio_mean": (fa,),
                "audio_proj": (fa, config.dim),
                "text_mean": (ft,),
                "text_proj": (ft, config.dim),
            },
            source=where,
        )
        self._where = where
        self.projection = LinearProjection(
            kind=opts.kind, **{k: np.asarray(v, np.float64) for k, v in weights.items()}
        )
        self._features = features or BaselineFeatures(
            taggers=opts.taggers, text_encoder=config.text_encoder
        )
        self._checked: set[str] = set()
        self._tags: list[str] | None = None
        self._merge: np.ndarray | None = None

    @property
    def kind(self) -> str:
        return self.projection.kind

    @property
    def window_samples(self) -> int:
        return WINDOW_SAMPLES

    @property
    def features(self) -> BaselineFeatures:
        """The frozen extractors, checked once against the weights' feature sizes."""
        f = self._features
        if "audio" not in self._checked and f._bank is not None:
            self._check("audio", f.audio_dim, self.projection.audio_mean.shape[0])
        if "text" not in self._checked and f._text is not None:
            self._check("text", f.text_dim, self.projection.text_mean.shape[0])
        return f

    def _check(self, side: str, got: int, want: int) -> None:
        if got != want:
            raise ModelLoadError(
                f"{self._where}: the {side} extractor gives {got} features but the projection "
                f"was fitted on {want}"
            )
        self._checked.add(side)

    def _vocabulary(self) -> tuple[list[str], np.ndarray]:
        if self._tags is None or self._merge is None:
            self._tags, self._merge = merged_vocabulary(self.features.bank.taggers)
        return self._tags, self._merge

    @property
    def tag_names(self) -> list[str]:
        """The taggers' merged vocabulary (duplicates across taggers averaged)."""
        return list(self._vocabulary()[0])

    def encode_text_features(self, features: np.ndarray, *, normalize: bool = True) -> np.ndarray:
        """Precomputed (N, Ft) text features -> (N, dim); for cached evaluation features."""
        return self.projection.project_text(features, normalize=normalize)

    def encode_audio_features(self, features: np.ndarray, *, normalize: bool = True) -> np.ndarray:
        """Precomputed (N, Fa) window-mean audio features -> (N, dim)."""
        return self.projection.project_audio(features, normalize=normalize)

    def encode_text(
        self, texts: Sequence[str] | str, *, batch_size: int = 64, normalize: bool = True
    ) -> np.ndarray:
        """Texts -> (N, dim) joint vectors (a single string gives (dim,))."""
        feats = self._features.text(texts, batch_size=batch_size)
        self._check("text", self._features.text_dim, self.projection.text_mean.shape[0])
        out = self.projection.project_text(np.atleast_2d(feats), normalize=normalize)
        return out[0] if isinstance(texts, str) else out

    def window_outputs(self, windows: np.ndarray) -> WindowOutputs:
        """16 kHz windows -> projected tag probabilities and merged tag confidences."""
        raw = self.features.bank.tag_windows(windows)
        self._check("audio", raw.shape[1], self.projection.audio_mean.shape[0])
        outputs = self.projection.project_audio(raw, normalize=False)  # affine: mean commutes
        merge = self._vocabulary()[1]
        return WindowOutputs(raw=outputs, tag_scores=(raw @ merge.T).astype(np.float32))


def load(
    config: ModelConfig, weights: dict[str, np.ndarray], *, source: str | None = None
) -> LinearProjectionModel:
    """The registry's loader for ``linear-projection`` folders."""
    return LinearProjectionModel(config, weights, source=source)
