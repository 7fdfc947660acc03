"""The repository's scripts (scripts/, bench/) imported as modules by the tests that check them.

Recording scripts hold the plain-numpy recipes (fixture tensors, test clips, tokenizers) that a
parity test must rebuild exactly as they were recorded; benches hold the code a smoke test runs.
They are files, not a package, so they are loaded by path.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def load_script(relative: str) -> ModuleType:
    """The module of ``ROOT / relative`` (e.g. ``"scripts/record_ttmr_references.py"``)."""
    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(f"melodex_script_{path.stem}", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def recorded_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of a recorded ``.npz`` fixture, read into memory (the file is closed)."""
    with np.load(path) as data:
        return dict(data)
