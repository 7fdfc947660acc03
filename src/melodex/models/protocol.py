"""What the library, the server and the lab need from any joint model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from melodex.models.config import AudioEmbedding, ModelConfig

AudioInput = Sequence[str | Path | np.ndarray] | str | Path | np.ndarray
"""Files, or mono waveforms at the model's sample rate; one of them, or a sequence."""


@runtime_checkable
class JointModel(Protocol):
    """Audio and text into one space: a dot product of the two says how well text fits audio.

    ``source`` is how the model can be loaded again (a built-in name, a resolved folder, or a
    ``family:argument`` spec; None for a model made in memory): a library records it, so later
    commands find the model without ``--model``.
    """

    config: ModelConfig
    source: str | None

    @property
    def dim(self) -> int: ...

    @property
    def identity(self) -> str: ...

    @property
    def licence(self) -> str | None: ...

    @property
    def tag_names(self) -> list[str]: ...

    def encode_text(
        self, texts: Sequence[str] | str, *, batch_size: int = 64, normalize: bool = True
    ) -> np.ndarray: ...

    def embed_waveform(
        self, y: np.ndarray, *, max_windows: int | None | str = ...
    ) -> AudioEmbedding: ...

    def embed_file(
        self, path: str | Path, *, max_windows: int | None | str = ...
    ) -> AudioEmbedding: ...

    def encode_audio(
        self, audio: AudioInput, *, batch_size: int = 8, max_windows: int | None | str = ...
    ) -> np.ndarray: ...

    def save(self, folder: str | Path) -> Path: ...
