"""The models layer: joint audio-text models, their folders, and what can be loaded.

It imports nothing from the library, the lab or the doors (an import contract checks it):

- :mod:`~melodex.models.config`: ``ModelConfig`` (``config.json``) and ``AudioEmbedding``;
- :mod:`~melodex.models.folder`: model folders on disk (safetensors, never pickles);
- :mod:`~melodex.models.protocol`: the ``JointModel`` protocol every model follows;
- :mod:`~melodex.models.base`: the windowed base class (identity, save, decode, pool);
- :mod:`~melodex.models.registry`: architecture and family names -> lazy loaders;
- one module per architecture: ``zero_shot``, ``dual``, ``linear``, ``toy``.
"""

from __future__ import annotations

from melodex.models.config import AudioEmbedding, ModelConfig
from melodex.models.protocol import AudioInput, JointModel
from melodex.models.registry import DEFAULT_MODEL, listing, load_model

__all__ = [
    "DEFAULT_MODEL",
    "AudioEmbedding",
    "AudioInput",
    "JointModel",
    "ModelConfig",
    "listing",
    "load_model",
]
