"""One exception family, so callers can catch melodex failures without catching bugs."""

from __future__ import annotations

from pathlib import Path


class MelodexError(Exception):
    """Base class of every error melodex raises on purpose."""


class ParameterError(MelodexError, ValueError):
    """A bad argument: the message names the parameter and the value it got.

    It is also a ``ValueError``, so code written against the standard library's convention
    still catches it; the doors (CLI, server) show it as one line instead of a traceback.
    """


class AudioDecodeError(MelodexError):
    """A file could not be turned into samples; names the file and the cause."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ModelLoadError(MelodexError):
    """A model folder is missing, malformed, or does not match its config."""


class DatasetFormatError(MelodexError):
    """A dataset file is missing, or a row of it is malformed; names the file and the line.

    Defined here (re-exported by ``melodex.data.files``) so the foundations that read release
    files standing in for audio (AcousticBrainz documents) raise the same error as the loaders.
    """


class StoreError(MelodexError):
    """The library store is unreadable, locked, or was made by another model."""


def bad_value(name: str, value: object, expected: str) -> ParameterError:
    """``ParameterError`` saying ``name`` got ``value`` but must be ``expected``."""
    return ParameterError(f"{name} must be {expected}, not {value!r}")
