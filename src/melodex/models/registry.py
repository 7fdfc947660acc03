"""Which models melodex can load: a static table of names to lazy loaders.

Two kinds of names:

- **architectures**, named in a model folder's ``config.json`` (``zero-shot-tags``,
  ``dual-encoder``, ...): :func:`load_model` reads the folder and hands config and weights to
  the architecture's loader;
- **families**, written ``family:argument`` (e.g. ``clap-hf:laion/clap-htsat-unfused``): a
  pretrained model from outside melodex, loaded by its adapter from a hub id, folder or file.

Loaders are ``"module:function"`` strings, imported only when used, so listing what can be
loaded (``melodex models``) imports no model code.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from melodex.errors import ModelLoadError
from melodex.models.config import ModelConfig
from melodex.models.folder import builtin_models, is_builtin, model_folder, read_model_folder
from melodex.models.protocol import JointModel

DEFAULT_MODEL = "melodex-base"


@dataclass(frozen=True)
class Architecture:
    """A kind of model folder melodex can rebuild."""

    name: str
    loader: str  # "module:function(config, weights, *, source)"
    summary: str
    licence: str  # of the code; a folder's weights carry their own (config.licence)


@dataclass(frozen=True)
class Family:
    """Pretrained models from outside melodex, named ``prefix:argument``."""

    prefix: str
    loader: str  # "module:function(argument) -> JointModel"
    summary: str
    argument: str  # what goes after the colon
    licence: str  # of the released weights
    weights: str  # where a user gets them


ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture(
            "zero-shot-tags",
            "melodex.models.zero_shot:load",
            "musicnn taggers + a sentence encoder, no paired training (melodex-base)",
            "MIT",
        ),
        Architecture(
            "dual-encoder",
            "melodex.models.dual:load",
            "an audio and a text encoder with projection heads, trained in the lab",
            "MIT",
        ),
        Architecture(
            "linear-projection",
            "melodex.models.linear:load",
            "CCA / WSABIE / random projections of frozen musicnn and sentence features",
            "MIT",
        ),
        Architecture(
            "toy-hash",
            "melodex.models.toy:load",
            "a tiny deterministic model for tests and smoke runs (band energies, hashed words)",
            "MIT",
        ),
    )
}

FAMILIES: dict[str, Family] = {}


def _import(target: str) -> Callable[..., Any]:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def split_family(name: str) -> tuple[Family, str] | None:
    """``"clap-hf:laion/x"`` -> (its family, ``"laion/x"``); None when not a family spec."""
    prefix, sep, argument = name.partition(":")
    if not sep or prefix not in FAMILIES:
        return None
    if not argument:
        family = FAMILIES[prefix]
        raise ModelLoadError(f"{name!r}: say which model after the colon ({family.argument})")
    return FAMILIES[prefix], argument


def load_from_folder(folder: Path, *, source: str | None = None) -> JointModel:
    """Rebuild the model a folder holds, by the architecture its config names."""
    config, weights = read_model_folder(folder)
    return build(config, weights, source=source, where=folder / "config.json")


def build(
    config: ModelConfig,
    weights: dict[str, Any],
    *,
    source: str | None = None,
    where: str | Path | None = None,
) -> JointModel:
    """A config and its weights -> the model, through the architecture's loader."""
    arch = ARCHITECTURES.get(config.architecture)
    if arch is None:
        raise ModelLoadError(
            f"{where or config.name}: unknown architecture {config.architecture!r} "
            f"(known: {', '.join(sorted(ARCHITECTURES))})"
        )
    return _import(arch.loader)(config, weights, source=source)


def load_model(name_or_path: str | Path = DEFAULT_MODEL) -> JointModel:
    """Load a built-in model by name, a model folder by path, or a ``family:argument`` spec.

    The model's ``source`` records how to load it again: the built-in name, the folder's
    resolved path, or the spec.
    """
    text = str(name_or_path)
    path = Path(os.path.expanduser(text))  # pathlib raises on an unknown ~user
    if not path.is_dir():
        found = split_family(text)
        if found is not None:
            family, argument = found
            model = _import(family.loader)(argument)
            model.source = text
            return model
    folder = model_folder(name_or_path)
    source = text if is_builtin(text) and not path.is_dir() else str(folder.resolve())
    return load_from_folder(folder, source=source)


def listing() -> dict[str, Any]:
    """What can be loaded, for ``melodex models --json``: architectures, families, built-ins."""
    return {
        "architectures": [asdict(a) for a in ARCHITECTURES.values()],
        "families": [asdict(f) for f in FAMILIES.values()],
        "builtin": builtin_models(),
        "default": DEFAULT_MODEL,
    }
