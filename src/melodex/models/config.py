"""What a model folder's ``config.json`` holds, and what a model gives for one track."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from melodex.errors import ModelLoadError

#: Config fields that describe a model without changing its vectors: left out of the
#: fingerprint, so adding them never invalidates a library indexed before.
METADATA_FIELDS = frozenset({"licence"})


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model around its weights; saved as JSON beside them.

    ``options`` holds the architecture's own settings; each architecture reads them into its
    typed options dataclass (see :func:`parse_options`), which rejects unknown keys.
    """

    name: str
    architecture: str
    version: str = "1"
    sample_rate: int = 16000
    window_seconds: float = 3.0
    max_windows: int | None = 8
    text_encoder: str = "all-MiniLM-L6-v2"
    dim: int = 384
    options: dict[str, Any] = field(default_factory=dict)
    licence: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        return {k: v for k, v in data.items() if not (k in METADATA_FIELDS and v is None)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def vector_json(self) -> str:
        """The config as the fingerprint sees it: every field that can change a vector."""
        data = {k: v for k, v in dataclasses.asdict(self).items() if k not in METADATA_FIELDS}
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ModelLoadError(f"{source}: unknown config keys {unknown}")
        missing = [k for k in ("name", "architecture") if k not in data]
        if missing:
            raise ModelLoadError(f"{source}: config lacks {missing}")
        return cls(**data)


@dataclass
class AudioEmbedding:
    """One track's embedding: the pooled vector, the window vectors and where they start."""

    vector: np.ndarray  # (D,) L2-normalised
    window_vectors: np.ndarray  # (W, D) L2-normalised
    window_starts: np.ndarray  # (W,) seconds
    duration: float  # seconds of audio decoded
    tag_scores: np.ndarray  # (T,) the model's tag confidences, pooled over windows


OptionsT = TypeVar("OptionsT")


def parse_options(cls: type[OptionsT], options: dict[str, Any], *, source: str) -> OptionsT:
    """``config.options`` -> the architecture's options dataclass; unknown or missing keys and
    wrong values become a ModelLoadError naming the model."""
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(options) - known)
    if unknown:
        raise ModelLoadError(f"{source}: unknown {cls.__name__} option(s) {unknown}")
    required = [
        f.name
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    missing = [name for name in required if name not in options]
    if missing:
        raise ModelLoadError(f"{source}: options lack {', '.join(repr(m) for m in missing)}")
    try:
        return cls(**options)
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"{source}: {exc}") from exc


def options_dict(options: Any) -> dict[str, Any]:
    """A typed options dataclass -> the JSON-able dict saved in ``config.options``."""
    return dataclasses.asdict(options)
