"""melodex: map music and text into one space; index a music folder and search it by any text.

>>> import melodex                                   # doctest: +SKIP
>>> lib = melodex.Library("my-index")                # doctest: +SKIP
>>> lib.index("~/Music"); lib.search("calm piano")   # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from melodex._version import __version__
from melodex.errors import AudioDecodeError, MelodexError, ModelLoadError, StoreError

__all__ = [
    "AudioDecodeError",
    "Library",
    "MelodexError",
    "ModelLoadError",
    "StoreError",
    "load_model",
    "__version__",
]

if TYPE_CHECKING:
    from melodex.library.library import Library
    from melodex.models import load_model


def __getattr__(name: str) -> Any:
    """Import heavy parts (torch, lancedb) only when they are used."""
    if name == "Library":
        from melodex.library.library import Library

        return Library
    if name == "load_model":
        from melodex.models import load_model

        return load_model
    raise AttributeError(f"module 'melodex' has no attribute {name!r}")
