"""Read the plain-data pickles some dataset releases ship, without running their code.

Several releases (MSD-eCALS's ``MSD_id_to_7D_id.pkl`` and ``7D_id_to_path.pkl``, the
MagnaTagATune "pub" split lists ``*_list_pub.cP``) are pickles of plain dicts, lists and strings,
often written by Python 2. Unpickling a downloaded file normally runs whatever callables it
names; `load_plain_pickle` refuses every global (class or function reference) and persistent
id, so only the built-in containers and scalars the pickle opcodes build themselves can come out.
Python 2 ``str`` values are decoded as Latin-1 (byte for byte).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from melodex.data.files import DatasetFormatError

__all__ = ["load_plain_pickle"]


class _NoGlobals(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(
            f"it refers to {module}.{name}; only plain dicts, lists, strings and numbers are read"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("it uses persistent ids")


def load_plain_pickle(path: str | Path, *, what: str = "pickle") -> Any:
    """The plain data in the pickle at ``path``.

    Raises `DatasetFormatError` naming the file when it is missing, truncated, or refers to any
    class or function (which a plain-data release never needs).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(f"{what} not found: {path}")
    try:
        with path.open("rb") as fh:
            return _NoGlobals(fh, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError) as exc:
        raise DatasetFormatError(f"{path}: not a plain-data pickle: {exc}") from None
    except (MemoryError, RecursionError):
        raise DatasetFormatError(f"{path}: pickle too large or nested too deeply") from None
