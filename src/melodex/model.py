"""Joint audio-text models: one encode API for both sides, models as folders.

A model folder holds ``config.json`` (architecture, sample rate, window, text encoder,
dimensions, version) and ``model.safetensors``. ``load_model()`` with no argument gives the
built-in default, ``melodex-base``, which ships inside the package and needs no network.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from melodex.errors import ModelLoadError

DEFAULT_MODEL = "melodex-base"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model around its weights; saved as JSON beside them."""

    name: str
    architecture: str
    version: str = "1"
    sample_rate: int = 16000
    window_seconds: float = 3.0
    max_windows: int | None = 8
    text_encoder: str = "all-MiniLM-L6-v2"
    dim: int = 384
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

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


class JointModel(Protocol):
    """What the library, the server and the evaluator need from any joint model."""

    config: ModelConfig

    @property
    def dim(self) -> int: ...

    @property
    def identity(self) -> str: ...

    @property
    def tag_names(self) -> list[str]: ...

    def encode_text(
        self, texts: Sequence[str] | str, *, batch_size: int = 64, normalize: bool = True
    ) -> np.ndarray: ...

    def embed_waveform(self, y: np.ndarray, *, max_windows: int | None = ...) -> AudioEmbedding: ...

    def embed_file(self, path: str | Path, *, max_windows: int | None = ...) -> AudioEmbedding: ...

    def encode_audio(
        self,
        audio: Sequence[str | Path | np.ndarray] | str | Path | np.ndarray,
        *,
        batch_size: int = 8,
        max_windows: int | None = ...,
    ) -> np.ndarray: ...

    def save(self, folder: str | Path) -> Path: ...


_ARCHITECTURES: dict[str, Callable[[ModelConfig, dict[str, np.ndarray], Path], JointModel]] = {}


def register_architecture(
    name: str,
) -> Callable[[Callable[..., JointModel]], Callable[..., JointModel]]:
    """Decorator: make ``load_model`` able to rebuild folders whose config names ``name``."""

    def wrap(builder: Callable[..., JointModel]) -> Callable[..., JointModel]:
        _ARCHITECTURES[name] = builder
        return builder

    return wrap


def builtin_models() -> list[str]:
    """Names of the models that ship inside the package."""
    root = resources.files("melodex") / "weights" / "models"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / CONFIG_FILE).is_file())


def model_folder(name_or_path: str | Path) -> Path:
    """A built-in model name or a folder path -> the folder, or a clear error."""
    path = Path(os.path.expanduser(name_or_path))  # pathlib raises on an unknown ~user
    if path.is_dir():
        return path
    builtin = resources.files("melodex") / "weights" / "models" / str(name_or_path)
    if builtin.is_dir():
        return Path(str(builtin))
    raise ModelLoadError(
        f"no model {str(name_or_path)!r}: not a folder, and not a built-in model "
        f"(built-in: {', '.join(builtin_models()) or 'none'})"
    )


def read_model_folder(folder: Path) -> tuple[ModelConfig, dict[str, np.ndarray]]:
    """Read and check config.json and model.safetensors from a model folder."""
    config_path = folder / CONFIG_FILE
    weights_path = folder / WEIGHTS_FILE
    if not config_path.is_file():
        raise ModelLoadError(f"{folder}: no {CONFIG_FILE} (is this a melodex model folder?)")
    try:
        data = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{config_path}: unreadable config: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelLoadError(f"{config_path}: config must be a JSON object")
    config = ModelConfig.from_dict(data, source=str(config_path))
    if not weights_path.is_file():
        raise ModelLoadError(f"{folder}: no {WEIGHTS_FILE}")
    try:
        from safetensors.numpy import load_file

        weights = load_file(str(weights_path))
    except Exception as exc:  # safetensors raises its own error types
        raise ModelLoadError(f"{weights_path}: unreadable weights: {exc}") from exc
    return config, weights


def write_model_folder(
    folder: str | Path, config: ModelConfig, weights: dict[str, np.ndarray]
) -> Path:
    """Write a model folder atomically enough: weights first, config last (its presence marks done)."""
    from safetensors.numpy import save_file

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    tmp_weights = out / (WEIGHTS_FILE + ".tmp")
    # np.require keeps 0-d tensors 0-d (ascontiguousarray would make them 1-d)
    save_file({k: np.require(v, requirements="C") for k, v in weights.items()}, str(tmp_weights))
    tmp_weights.replace(out / WEIGHTS_FILE)
    tmp_config = out / (CONFIG_FILE + ".tmp")
    tmp_config.write_text(config.to_json() + "\n")
    tmp_config.replace(out / CONFIG_FILE)
    return out


def check_weights(
    weights: dict[str, np.ndarray], expected: dict[str, tuple[int, ...]], *, source: str
) -> None:
    """Fail with the tensor's name when a weight is missing, extra or of the wrong shape."""
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    if missing or extra:
        raise ModelLoadError(f"{source}: weights missing {missing}, unexpected {extra}")
    for key, shape in expected.items():
        if tuple(weights[key].shape) != tuple(shape):
            raise ModelLoadError(
                f"{source}: tensor {key!r} has shape {tuple(weights[key].shape)}, config implies {shape}"
            )


def weights_fingerprint(config: ModelConfig, weights: dict[str, np.ndarray]) -> str:
    """A short hash that changes whenever vectors made by the model could change."""
    h = hashlib.blake2b(digest_size=8)
    h.update(config.to_json().encode())
    for key in sorted(weights):
        h.update(key.encode())
        h.update(np.ascontiguousarray(weights[key]).tobytes())
    return h.hexdigest()


def pooled_vectors(
    model: JointModel,
    audio: Sequence[str | Path | np.ndarray] | str | Path | np.ndarray,
    *,
    max_windows: int | None | str = "config",
) -> np.ndarray:
    """The shared body of every ``encode_audio``: files or waveforms at the model's rate ->
    (N, dim) pooled track vectors; a single input gives (dim,)."""
    single = isinstance(audio, str | Path) or (isinstance(audio, np.ndarray) and audio.ndim == 1)
    items = [audio] if single else list(audio)
    vectors = [
        model.embed_waveform(np.asarray(item, np.float32), max_windows=max_windows).vector
        if isinstance(item, np.ndarray)
        else model.embed_file(item, max_windows=max_windows).vector
        for item in items
    ]
    out = np.stack(vectors) if vectors else np.zeros((0, model.dim), np.float32)
    return out[0] if single else out


def load_model(name_or_path: str | Path = DEFAULT_MODEL) -> JointModel:
    """Load a built-in model by name, or a model folder by path."""
    import melodex.dual  # noqa: F401  (registers the trained architecture)
    import melodex.evaluate.baselines  # noqa: F401  (registers the linear-projection baselines)
    import melodex.tagspace  # noqa: F401  (registers the built-in architecture)

    folder = model_folder(name_or_path)
    config, weights = read_model_folder(folder)
    builder = _ARCHITECTURES.get(config.architecture)
    if builder is None:
        raise ModelLoadError(
            f"{folder / CONFIG_FILE}: unknown architecture {config.architecture!r} "
            f"(known: {', '.join(sorted(_ARCHITECTURES))})"
        )
    return builder(config, weights, folder)
