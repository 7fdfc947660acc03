"""Text queries of a zero-shot model without torch or sentence-transformers.

Why: a cold ``melodex search`` needs only the text side of the model, and the full model loads
torch, the musicnn taggers and sentence-transformers (~4 s of imports on 2 cores). For a
``zero-shot-tags`` folder whose text encoder is a BERT mean-pooling model, the text side is
:class:`~melodex.encoders.minilm_numpy.NumpyMiniLM` followed by :func:`project_query` (the same
function :class:`~melodex.models.zero_shot.ZeroShotTagModel` uses), and the identity is computed
from the same folder, so a store can check it. Anything else gets ``None`` from
:func:`fast_query_encoder` and callers take the full path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from melodex.errors import MelodexError
from melodex.models.config import ModelConfig
from melodex.models.folder import model_folder, read_model_folder, weights_fingerprint

ARCHITECTURE = "zero-shot-tags"
#: The options whose meaning this module knows (the zero-shot options of today).
KNOWN_OPTIONS = frozenset(
    {"taggers", "tags", "prompt", "space", "audio_power", "center_audio", "query_temperature"}
)
ENCODER_VERSION = "numpy-minilm-1"
"""Part of the query-cache key: vectors cached by another encoder version are not reused."""


def project_query(
    q: np.ndarray,
    tag_embeddings: np.ndarray,
    *,
    space: str,
    temperature: float | None,
    normalize: bool = True,
) -> np.ndarray:
    """Sentence embeddings (N, D) or (D,) -> the zero-shot model's joint query vectors.

    ``space="text"``: the sentence embedding itself. ``space="tag"``: the similarity to each
    tag's text (a softmax at ``temperature`` when given), centred, then L2-normalised.
    """
    if space == "text":
        return q
    sims = q @ tag_embeddings.T
    if temperature:
        z = sims / float(temperature)
        z = np.exp(z - z.max(axis=-1, keepdims=True))
        sims = z / z.sum(axis=-1, keepdims=True)
    sims = sims - sims.mean(axis=-1, keepdims=True)
    if not normalize:
        return sims.astype(np.float32)
    norms = np.linalg.norm(sims, axis=-1, keepdims=True)  # as models.base.l2_normalize
    return (sims / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


class FastQueryEncoder:
    """The text side of a zero-shot model folder; the sentence encoder loads on first use."""

    def __init__(self, config: ModelConfig, weights: dict[str, np.ndarray]):
        self.config = config
        self.identity = f"{config.name}@{weights_fingerprint(config, weights)}"
        self.cache_key = f"{self.identity}|{ENCODER_VERSION}"
        self._embeddings = np.asarray(weights["tag_embeddings"], np.float32)
        self._space = str(config.options.get("space", "text"))
        self._temperature = config.options.get("query_temperature")
        self._encoder = None

    def encode(self, text: str) -> np.ndarray:
        """One text -> its (dim,) joint query vector."""
        if self._encoder is None:
            from melodex.encoders.minilm_numpy import NumpyMiniLM

            self._encoder = NumpyMiniLM(self.config.text_encoder)
        q = self._encoder.encode([text])[0]
        return project_query(q, self._embeddings, space=self._space, temperature=self._temperature)


def fast_query_encoder(source: str | Path) -> FastQueryEncoder | None:
    """The torch-free text side of the model ``source`` names (a built-in name or a folder),
    or None when this module cannot reproduce it exactly (another architecture, option or
    text encoder, a ``family:argument`` spec, a folder that does not load)."""
    try:
        folder = model_folder(source)
        config, weights = read_model_folder(folder)
    except (MelodexError, OSError, ValueError):
        return None
    if config.architecture != ARCHITECTURE or not set(config.options) <= KNOWN_OPTIONS:
        return None
    if config.options.get("space", "text") not in ("text", "tag"):
        return None
    if "tag_embeddings" not in weights or not _text_encoder_supported(config.text_encoder):
        return None
    return FastQueryEncoder(config, weights)


def _text_encoder_supported(name: str) -> bool:
    from melodex.encoders.minilm_numpy import supported
    from melodex.encoders.text import resolve_text_model

    try:
        return supported(Path(resolve_text_model(name)))
    except (ImportError, OSError, ValueError):
        return False
