"""Model folders on disk: ``config.json`` + ``model.safetensors``, read and written safely.

No pickles: weights are safetensors, configs JSON. Loading checks names and shapes and fails
with a :class:`~melodex.errors.ModelLoadError` naming the folder and the tensor.
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib import resources
from pathlib import Path

import numpy as np

from melodex.errors import ModelLoadError
from melodex.models.config import ModelConfig

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def builtin_root() -> Path:
    """Where the built-in model folders ship inside the package."""
    return Path(str(resources.files("melodex") / "weights" / "models"))


def builtin_models() -> list[str]:
    """Names of the models that ship inside the package."""
    root = builtin_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / CONFIG_FILE).is_file())


def is_builtin(name: str | Path) -> bool:
    return str(name) in builtin_models()


def model_folder(name_or_path: str | Path) -> Path:
    """A built-in model name or a folder path -> the folder, or a clear error."""
    path = Path(os.path.expanduser(name_or_path))  # pathlib raises on an unknown ~user
    if path.is_dir():
        return path
    if is_builtin(name_or_path):
        return builtin_root() / str(name_or_path)
    raise ModelLoadError(
        f"no model {str(name_or_path)!r}: not a folder, and not a built-in model "
        f"(built-in: {', '.join(builtin_models()) or 'none'}; `melodex models` lists what "
        "can be loaded)"
    )


def read_config(folder: Path) -> ModelConfig:
    """Read and check a folder's ``config.json``."""
    config_path = folder / CONFIG_FILE
    if not config_path.is_file():
        raise ModelLoadError(f"{folder}: no {CONFIG_FILE} (is this a melodex model folder?)")
    try:
        data = json.loads(config_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{config_path}: unreadable config: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelLoadError(f"{config_path}: config must be a JSON object")
    return ModelConfig.from_dict(data, source=str(config_path))


def read_model_folder(folder: Path) -> tuple[ModelConfig, dict[str, np.ndarray]]:
    """Read and check config.json and model.safetensors from a model folder."""
    config = read_config(folder)
    weights_path = folder / WEIGHTS_FILE
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
    h.update(config.vector_json().encode())
    for key in sorted(weights):
        h.update(key.encode())
        h.update(np.ascontiguousarray(weights[key]).tobytes())
    return h.hexdigest()
