"""Trained joint models: an audio encoder and a text encoder, each with a projection head.

This is the architecture every Lab config trains (``architecture: "dual-encoder"``). It serves
the library exactly like the zero-shot default: ``encode_text``, ``embed_waveform``,
``encode_audio``, saved as a model folder (``config.json`` + ``model.safetensors``).

Pretrained parts that stay frozen (a packaged sentence-transformer, the packaged musicnn) are not
copied into the weights file: they are rebuilt from their package, and the config names them.

A network whose front-end reads files (AcousticBrainz descriptors, the two-branch seed's audio
input) embeds a document, not a waveform: ``embed_file`` and ``encode_audio`` take the JSON's
path, and a waveform is refused with a `ParameterError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from melodex.encoders.audio import (
    AudioEncoder,
    ProjectionHead,
    ProjectionHeadConfig,
    audio_encoder_from_spec,
    audio_encoder_spec,
)
from melodex.encoders.text_trainable import build_text_encoder, encoder_config_dict
from melodex.errors import ModelLoadError, ParameterError
from melodex.models.base import WindowedJointModel, WindowOutputs
from melodex.models.config import AudioEmbedding, ModelConfig, options_dict, parse_options
from melodex.models.protocol import AudioInput

ARCHITECTURE = "dual-encoder"


class DualEncoder(nn.Module):
    """The trainable network: audio features -> joint vector, text -> joint vector."""

    def __init__(
        self,
        audio_encoder: AudioEncoder,
        text_encoder: nn.Module,
        *,
        dim: int = 128,
        head: str = "mlp",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.audio_encoder = audio_encoder
        self.text_encoder = text_encoder
        self.audio_head = ProjectionHead(
            ProjectionHeadConfig(
                in_dim=audio_encoder.out_dim, out_dim=dim, kind=head, dropout=dropout
            )
        )
        self.text_head = ProjectionHead(
            ProjectionHeadConfig(
                in_dim=text_encoder.out_dim, out_dim=dim, kind=head, dropout=dropout
            )
        )
        self.dim = dim

    @property
    def frontend(self):  # noqa: ANN201 (a melodex.frontends.Frontend)
        return self.audio_encoder.frontend

    def audio_features(self, frontend_out: Tensor) -> Tensor:
        return self.audio_encoder(frontend_out)

    def text_features(self, texts: list[str]) -> Tensor:
        return self.text_encoder(self.text_encoder.tokenize(texts))

    def embed_audio_features(self, features: Tensor) -> Tensor:
        """Encoder outputs (B, F) -> (B, dim) normalised; the head-only training path."""
        return self.audio_head(features)

    def embed_text_features(self, features: Tensor) -> Tensor:
        return self.text_head(features)

    def frozen_prefixes(self) -> tuple[str, ...]:
        """State-dict prefixes rebuilt from packages instead of saved."""
        prefixes = [
            f"text_encoder.{p}" for p in getattr(self.text_encoder, "frozen_prefixes", tuple)()
        ]
        cfg = getattr(self.audio_encoder, "config", None)
        if self.audio_encoder.name == "musicnn_backbone" and not getattr(cfg, "trainable", False):
            prefixes.append("audio_encoder.tagger.")
        return tuple(prefixes)

    def spec(self) -> dict[str, Any]:
        """JSON-able description from which :func:`build_dual_encoder` rebuilds the network."""
        head = self.audio_head.config
        return {
            "audio_encoder": audio_encoder_spec(self.audio_encoder),
            "text_encoder": encoder_config_dict(self.text_encoder),
            "dim": self.dim,
            "head": head.kind,
            "dropout": head.dropout,
        }

    def trainable_state(self) -> dict[str, Tensor]:
        """A copy of the saved weights: later optimiser steps must not change it. (On CPU
        ``detach().cpu()`` is the live tensor itself, so it is cloned.)"""
        skip = self.frozen_prefixes()
        return {
            k: v.detach().to("cpu", copy=True).contiguous()
            for k, v in self.state_dict().items()
            if not k.startswith(skip)
        }


def build_dual_encoder(spec: dict[str, Any]) -> DualEncoder:
    """Rebuild the network (untrained heads) from :meth:`DualEncoder.spec`."""
    try:
        audio = audio_encoder_from_spec(spec["audio_encoder"])
        text_meta = spec["text_encoder"]
        text = build_text_encoder(text_meta["name"], **text_meta["config"])
        return DualEncoder(
            audio,
            text,
            dim=int(spec["dim"]),
            head=spec["head"],
            dropout=float(spec.get("dropout", 0.0)),
        )
    except KeyError as exc:
        raise ModelLoadError(f"dual-encoder spec lacks {exc}") from exc


@dataclass(frozen=True)
class DualEncoderOptions:
    """``config.options`` of a dual-encoder model."""

    network: dict[str, Any]  # DualEncoder.spec(): rebuilds the network around the weights
    tags: list[str] = field(default_factory=list)  # tag vocabulary, for tag confidences
    trained_on: str | None = None  # the manifest it was trained on


class DualEncoderModel(WindowedJointModel):
    """A trained :class:`DualEncoder` behind the :class:`~melodex.models.JointModel` API."""

    def __init__(
        self,
        config: ModelConfig,
        net: DualEncoder,
        weights: dict[str, np.ndarray],
        *,
        source: str | None = None,
    ):
        super().__init__(config, weights, source=source)
        self.options = parse_options(DualEncoderOptions, config.options, source=config.name)
        self.net = net.eval()
        self._tags: list[str] = list(self.options.tags)
        self._tag_vectors: np.ndarray | None = None

    @property
    def tag_names(self) -> list[str]:
        return list(self._tags)

    @property
    def sample_rate(self) -> int:
        return int(self.net.frontend.sample_rate)

    @property
    def window_samples(self) -> int:
        return int(self.net.frontend.window_samples)

    @torch.inference_mode()
    def encode_text(
        self, texts: Sequence[str] | str, *, batch_size: int = 64, normalize: bool = True
    ) -> np.ndarray:
        single = isinstance(texts, str)
        items = [texts] if single else list(texts)
        out = np.zeros((len(items), self.dim), np.float32)
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            out[start : start + len(chunk)] = self.net.embed_text_features(
                self.net.text_features(chunk)
            ).numpy()
        return out[0] if single else out

    def _tag_matrix(self) -> np.ndarray:
        if self._tag_vectors is None:
            self._tag_vectors = (
                self.encode_text(self._tags) if self._tags else np.zeros((0, self.dim), np.float32)
            )
        return self._tag_vectors

    @property
    def reads_files(self) -> bool:
        """True when the audio side is a descriptor document, not decoded audio."""
        return bool(getattr(self.net.frontend, "reads_files", False))

    def _no_waveforms(self) -> ParameterError:
        return ParameterError(
            f"model {self.config.name!r} reads AcousticBrainz descriptor documents, not "
            "waveforms: give embed_file / encode_audio the .json file's path"
        )

    @torch.inference_mode()
    def embed_descriptor(self, path: str | Path) -> AudioEmbedding:
        """One AcousticBrainz document -> its embedding (one "window": the whole track).

        The same computation as the trainer's evaluation: the encoder (standardising with the
        stored training statistics), the head's raw output, L2-normalised. A missing or
        malformed file is a `DatasetFormatError` naming it."""
        feats, length = self.net.frontend.read_document(path)
        raw = self.net.audio_head.net(self.net.audio_features(torch.from_numpy(feats)))
        n_samples = round((length or 0.0) * self.sample_rate)
        return self.pool(WindowOutputs(raw=raw.numpy()), np.zeros(1, np.int64), n_samples)

    def embed_file(
        self, path: str | Path, *, max_windows: int | None | str = "config"
    ) -> AudioEmbedding:
        """Decode a file and embed it (a descriptor model reads the JSON document instead)."""
        if self.reads_files:
            self._window_limit(max_windows)  # still check the argument
            return self.embed_descriptor(path)
        return super().embed_file(path, max_windows=max_windows)

    def embed_waveform(
        self, y: np.ndarray, *, max_windows: int | None | str = "config"
    ) -> AudioEmbedding:
        if self.reads_files:
            raise self._no_waveforms()
        return super().embed_waveform(y, max_windows=max_windows)

    def encode_audio(
        self, audio: AudioInput, *, batch_size: int = 8, max_windows: int | None | str = "config"
    ) -> np.ndarray:
        if not self.reads_files:
            return super().encode_audio(audio, batch_size=batch_size, max_windows=max_windows)
        single = isinstance(audio, str | Path | np.ndarray)
        items = [audio] if single else list(audio)
        if any(not isinstance(item, str | Path) for item in items):
            raise self._no_waveforms()
        out = np.zeros((len(items), self.dim), np.float32)
        for i, item in enumerate(items):
            out[i] = self.embed_file(item, max_windows=max_windows).vector
        return out[0] if single else out

    @torch.inference_mode()
    def window_outputs(self, windows: np.ndarray) -> WindowOutputs:
        """Windows -> the audio head's outputs before normalisation."""
        feats = self.net.frontend(torch.from_numpy(np.ascontiguousarray(windows)))
        raw = self.net.audio_head.net(self.net.audio_features(feats))
        return WindowOutputs(raw=raw.numpy())

    def pooled_tag_scores(self, vector: np.ndarray, window_scores: np.ndarray | None) -> np.ndarray:
        """Each tag's text vector against the pooled track vector."""
        tags = self._tag_matrix()
        return (tags @ vector).astype(np.float32) if len(tags) else np.zeros(0, np.float32)


def make_model_config(
    net: DualEncoder,
    *,
    name: str,
    tags: Sequence[str],
    max_windows: int | None,
    extra: dict[str, Any] | None = None,
) -> ModelConfig:
    frontend = net.frontend
    return ModelConfig(
        name=name,
        architecture=ARCHITECTURE,
        sample_rate=int(frontend.sample_rate),
        window_seconds=float(frontend.window_seconds),
        max_windows=max_windows,
        text_encoder=net.spec()["text_encoder"]["name"],
        dim=net.dim,
        options=options_dict(
            DualEncoderOptions(network=net.spec(), tags=list(tags), **(extra or {}))
        ),
    )


def export_model(
    net: DualEncoder,
    *,
    name: str,
    tags: Sequence[str] = (),
    max_windows: int | None = 8,
    extra: dict[str, Any] | None = None,
) -> DualEncoderModel:
    """Wrap a trained network as a saveable joint model."""
    config = make_model_config(net, name=name, tags=tags, max_windows=max_windows, extra=extra)
    weights = {k: v.numpy() for k, v in net.trainable_state().items()}
    return DualEncoderModel(config, net, weights)


def load(
    config: ModelConfig, weights: dict[str, np.ndarray], *, source: str | None = None
) -> DualEncoderModel:
    """The registry's loader for ``dual-encoder`` folders."""
    where = source or config.name
    if "network" not in config.options:
        raise ModelLoadError(f"{where}: dual-encoder config lacks options.network")
    net = build_dual_encoder(config.options["network"])
    expected = {
        k: v for k, v in net.state_dict().items() if not k.startswith(net.frozen_prefixes())
    }
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    wrong = [
        k for k in expected if k in weights and tuple(weights[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or wrong:
        raise ModelLoadError(
            f"{where}: weights do not match the config: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}, wrong shape {wrong[:5]}"
        )
    net.load_state_dict(
        {k: torch.from_numpy(np.array(v)) for k, v in weights.items()}, strict=False
    )
    if config.dim != net.dim:
        raise ModelLoadError(f"{where}: config dim {config.dim} but network dim {net.dim}")
    return DualEncoderModel(config, net, weights, source=source)


__all__ = [
    "DualEncoder",
    "DualEncoderModel",
    "DualEncoderOptions",
    "build_dual_encoder",
    "export_model",
]
