"""Shared fixtures: the real default model, loaded once per test session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def base_model():
    """The built-in default model (real taggers, real text encoder)."""
    from melodex.model import load_model

    return load_model()
