"""One base class for every windowed joint model: identity, saving, decoding and pooling.

A subclass says only how a batch of audio windows becomes joint vectors
(:meth:`WindowedJointModel.window_outputs`) and how texts do (``encode_text``). The rest is
shared, so every model cuts, selects and pools windows by the same rules:

- a waveform is cut by :func:`melodex.audio.frame_windows` into windows of
  :attr:`~WindowedJointModel.window_samples`; ``max_windows`` of them are taken, spread evenly
  (:func:`melodex.audio.select_windows`);
- the track vector is the mean of the windows' raw outputs, then L2-normalised; window vectors
  are the raw outputs, each L2-normalised;
- tag confidences are the mean of the windows' (or what :meth:`pooled_tag_scores` says).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from melodex.audio import frame_windows, load_audio, select_windows
from melodex.errors import bad_value
from melodex.models.config import AudioEmbedding, ModelConfig
from melodex.models.folder import weights_fingerprint, write_model_folder
from melodex.models.protocol import AudioInput


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows (or one vector) scaled to unit length, float32; zero rows stay zero."""
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


@dataclass
class WindowOutputs:
    """What a model makes of a batch of windows: raw joint outputs and, if it has them, tag
    confidences per window."""

    raw: np.ndarray  # (W, dim), before normalisation
    tag_scores: np.ndarray | None = None  # (W, T)


class WindowedJointModel:
    """Base of the joint models: subclasses implement ``window_outputs`` and ``encode_text``."""

    def __init__(
        self, config: ModelConfig, weights: dict[str, np.ndarray], *, source: str | None = None
    ) -> None:
        self.config = config
        self._weights = weights
        self.source = source

    # -- identity -------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self.config.dim

    @property
    def licence(self) -> str | None:
        return self.config.licence

    @property
    def tag_names(self) -> list[str]:
        return []

    @cached_property
    def identity(self) -> str:
        """Name plus a weights fingerprint: a store refuses vectors from another model."""
        return f"{self.config.name}@{weights_fingerprint(self.config, self._weights)}"

    @property
    def sample_rate(self) -> int:
        return int(self.config.sample_rate)

    @property
    def window_samples(self) -> int:
        return round(self.config.window_seconds * self.config.sample_rate)

    def save(self, folder: str | Path) -> Path:
        return write_model_folder(folder, self.config, self._weights)

    # -- what subclasses provide ----------------------------------------------------------
    def window_outputs(self, windows: np.ndarray) -> WindowOutputs:
        """(W, window_samples) float32 audio -> raw outputs (and tag scores) per window."""
        raise NotImplementedError

    def encode_text(
        self, texts: Sequence[str] | str, *, batch_size: int = 64, normalize: bool = True
    ) -> np.ndarray:
        raise NotImplementedError

    def pooled_tag_scores(self, vector: np.ndarray, window_scores: np.ndarray | None) -> np.ndarray:
        """A track's tag confidences from its pooled vector and per-window scores."""
        if window_scores is None or len(window_scores) == 0:
            return np.zeros(0, np.float32)
        return window_scores.mean(axis=0).astype(np.float32)

    # -- audio ----------------------------------------------------------------------------
    def _window_limit(self, max_windows: int | None | str) -> int | None:
        if max_windows == "config":
            return self.config.max_windows
        if max_windows is not None and (
            isinstance(max_windows, bool | str) or int(max_windows) < 1
        ):
            raise bad_value("max_windows", max_windows, "a positive integer, None or 'config'")
        return max_windows  # type: ignore[return-value]

    def select(self, y: np.ndarray, max_windows: int | None | str) -> tuple[np.ndarray, np.ndarray]:
        """A waveform -> (the chosen windows, their indices)."""
        windows = frame_windows(np.asarray(y, np.float32), window=self.window_samples)
        chosen = select_windows(len(windows), max_windows=self._window_limit(max_windows))
        return np.ascontiguousarray(windows[chosen]), chosen

    def pool(self, outputs: WindowOutputs, chosen: np.ndarray, n_samples: int) -> AudioEmbedding:
        """Window outputs -> one track's embedding (see the module docstring)."""
        raw = np.asarray(outputs.raw, np.float32)
        vector = l2_normalize(raw.mean(axis=0))
        return AudioEmbedding(
            vector=vector,
            window_vectors=l2_normalize(raw),
            window_starts=(chosen * self.window_samples / self.sample_rate).astype(np.float32),
            duration=n_samples / self.sample_rate,
            tag_scores=self.pooled_tag_scores(vector, outputs.tag_scores),
        )

    def embed_waveform(
        self, y: np.ndarray, *, max_windows: int | None | str = "config"
    ) -> AudioEmbedding:
        """A mono signal at the model's rate -> pooled vector, window vectors, tag scores."""
        windows, chosen = self.select(y, max_windows)
        return self.pool(self.window_outputs(windows), chosen, len(y))

    def embed_file(
        self, path: str | Path, *, max_windows: int | None | str = "config"
    ) -> AudioEmbedding:
        """Decode a file and embed it; AudioDecodeError names the file on failure."""
        # load_audio never returns an empty array: it raises AudioDecodeError naming the file
        return self.embed_waveform(load_audio(path, sr=self.sample_rate), max_windows=max_windows)

    def encode_audio(
        self, audio: AudioInput, *, batch_size: int = 8, max_windows: int | None | str = "config"
    ) -> np.ndarray:
        """Files or waveforms -> (N, dim) pooled track vectors (a single input gives (dim,)).

        The windows of up to ``batch_size`` inputs go through the network in one call.
        """
        if isinstance(batch_size, bool) or int(batch_size) < 1:
            raise bad_value("batch_size", batch_size, "a positive integer")
        single = isinstance(audio, str | Path) or (
            isinstance(audio, np.ndarray) and audio.ndim == 1
        )
        items = [audio] if single else list(audio)
        out = np.zeros((len(items), self.dim), np.float32)
        for start in range(0, len(items), int(batch_size)):
            chunk = items[start : start + int(batch_size)]
            signals = [
                np.asarray(item, np.float32)
                if isinstance(item, np.ndarray)
                else load_audio(item, sr=self.sample_rate)
                for item in chunk
            ]
            picked = [self.select(y, max_windows) for y in signals]
            outputs = self.window_outputs(np.concatenate([w for w, _ in picked]))
            bounds = np.cumsum([0] + [len(w) for w, _ in picked])
            for j, (y, (_, chosen)) in enumerate(zip(signals, picked, strict=True)):
                part = slice(bounds[j], bounds[j + 1])
                scores = outputs.tag_scores[part] if outputs.tag_scores is not None else None
                emb = self.pool(WindowOutputs(outputs.raw[part], scores), chosen, len(y))
                out[start + j] = emb.vector
        return out[0] if single else out
