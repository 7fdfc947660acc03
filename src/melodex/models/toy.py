"""A tiny deterministic joint model for tests and smoke runs: not for music.

Audio: each 1-s window at 16 kHz becomes its log energies in a few frequency bands (centred,
plus a constant so silence still has a direction), projected by a fixed seeded matrix; text: every word is hashed (BLAKE2b) to a signed coordinate. It is
cheap (numpy only, no torch), deterministic to the bit, and has every part a real model has
(window vectors, tag confidences, identity, a folder), so library, store, server and fault tests
run in milliseconds. The tags are the band names, so "tag" and "describe" answer too.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from melodex.errors import bad_value
from melodex.models.base import WindowedJointModel, WindowOutputs, l2_normalize
from melodex.models.config import ModelConfig, options_dict, parse_options
from melodex.models.folder import check_weights

ARCHITECTURE = "toy-hash"
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class ToyOptions:
    """``config.options`` of a toy model."""

    bands: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        if not 2 <= int(self.bands) <= 64:
            raise bad_value("options.bands", self.bands, "2..64")


class ToyModel(WindowedJointModel):
    """See the module docstring."""

    def __init__(
        self, config: ModelConfig, weights: dict[str, np.ndarray], *, source: str | None = None
    ) -> None:
        super().__init__(config, weights, source=source)
        self.options = parse_options(ToyOptions, config.options, source=source or config.name)
        check_weights(
            weights,
            {"projection": (self.options.bands + 1, config.dim)},
            source=source or config.name,
        )
        self._projection = weights["projection"].astype(np.float32)
        n = self.window_samples // 2 + 1
        edges = np.unique(np.geomspace(1, n, self.options.bands + 1).astype(int))
        self._edges = np.concatenate([[0], edges[1:-1], [n]])

    @property
    def tag_names(self) -> list[str]:
        return [f"band {i}" for i in range(self.options.bands)]

    def window_outputs(self, windows: np.ndarray) -> WindowOutputs:
        power = np.abs(np.fft.rfft(np.asarray(windows, np.float64), axis=1)) ** 2
        energy = np.stack(
            [
                power[:, a:b].sum(axis=1)
                for a, b in zip(self._edges[:-1], self._edges[1:], strict=True)
            ],
            axis=1,
        )
        energy = np.pad(energy, ((0, 0), (0, self.options.bands - energy.shape[1])))
        logs = np.log1p(energy).astype(np.float32)
        share = energy / np.maximum(energy.sum(axis=1, keepdims=True), 1e-12)
        centred = logs - logs.mean(axis=1, keepdims=True)
        features = np.concatenate([centred, np.ones((len(logs), 1), np.float32)], axis=1)
        return WindowOutputs(raw=features @ self._projection, tag_scores=share.astype(np.float32))

    def encode_text(
        self, texts: Sequence[str] | str, *, batch_size: int = 64, normalize: bool = True
    ) -> np.ndarray:
        single = isinstance(texts, str)
        items = [texts] if single else list(texts)
        out = np.zeros((len(items), self.dim), np.float32)
        for row, text in enumerate(items):
            for word in _WORD.findall(text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                index = int.from_bytes(digest[:4], "little") % self.dim
                out[row, index] += 1.0 if digest[4] & 1 else -1.0
        out = l2_normalize(out) if normalize else out
        return out[0] if single else out


def build_toy_model(*, dim: int = 16, bands: int = 8, seed: int = 0, name: str = "toy") -> ToyModel:
    """A toy model made in memory (save it to get a folder that ``--model`` takes)."""
    options = ToyOptions(bands=bands, seed=seed)
    config = ModelConfig(
        name=name,
        architecture=ARCHITECTURE,
        sample_rate=16000,
        window_seconds=1.0,
        max_windows=8,
        text_encoder="hashed words",
        dim=dim,
        options=options_dict(options),
        licence="MIT",
    )
    rng = np.random.default_rng(seed)
    weights = {"projection": rng.standard_normal((bands + 1, dim)).astype(np.float32)}
    return ToyModel(config, weights)


def load(
    config: ModelConfig, weights: dict[str, np.ndarray], *, source: str | None = None
) -> ToyModel:
    """The registry's loader for ``toy-hash`` folders."""
    return ToyModel(config, weights, source=source)
