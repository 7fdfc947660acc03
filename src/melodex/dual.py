"""Trained joint models: an audio encoder and a text encoder, each with a projection head.

This is the architecture every Lab config trains (``architecture: "dual-encoder"``). It serves
the library exactly like the zero-shot default: ``encode_text``, ``embed_waveform``,
``encode_audio``, saved as a model folder (``config.json`` + ``model.safetensors``).

Pretrained parts that stay frozen (a packaged sentence-transformer, the packaged musicnn) are not
copied into the weights file: they are rebuilt from their package, and the config names them.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from melodex.audio import frame_windows, load_audio, select_windows
from melodex.encoders.audio import (
    AudioEncoder,
    ProjectionHead,
    ProjectionHeadConfig,
    audio_encoder_from_spec,
    audio_encoder_spec,
)
from melodex.encoders.text_trainable import build_text_encoder, encoder_config_dict
from melodex.errors import ModelLoadError
from melodex.model import (
    AudioEmbedding,
    ModelConfig,
    pooled_vectors,
    register_architecture,
    weights_fingerprint,
    write_model_folder,
)

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
        skip = self.frozen_prefixes()
        return {
            k: v.detach().cpu().contiguous()
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


class DualEncoderModel:
    """A trained :class:`DualEncoder` behind the :class:`melodex.model.JointModel` API."""

    def __init__(self, config: ModelConfig, net: DualEncoder, weights: dict[str, np.ndarray]):
        self.config = config
        self.net = net.eval()
        self._weights = weights
        self._tags: list[str] = list(config.options.get("tags", []))
        self._tag_vectors: np.ndarray | None = None

    @property
    def dim(self) -> int:
        return self.config.dim

    @property
    def tag_names(self) -> list[str]:
        return list(self._tags)

    @cached_property
    def identity(self) -> str:
        return f"{self.config.name}@{weights_fingerprint(self.config, self._weights)}"

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

    @torch.inference_mode()
    def embed_waveform(
        self, y: np.ndarray, *, max_windows: int | None | str = "config"
    ) -> AudioEmbedding:
        limit = self.config.max_windows if max_windows == "config" else max_windows
        frontend = self.net.frontend
        windows = frame_windows(np.asarray(y, np.float32), window=frontend.window_samples)
        chosen = select_windows(len(windows), max_windows=limit)
        feats = frontend(torch.from_numpy(np.ascontiguousarray(windows[chosen])))
        raw = self.net.audio_head.net(self.net.audio_features(feats))  # before normalisation
        outputs = raw.numpy()
        vector = outputs.mean(axis=0)
        vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
        window_vectors = outputs / np.maximum(np.linalg.norm(outputs, axis=1, keepdims=True), 1e-12)
        tags = self._tag_matrix()
        return AudioEmbedding(
            vector=vector.astype(np.float32),
            window_vectors=window_vectors.astype(np.float32),
            window_starts=(chosen * frontend.window_samples / frontend.sample_rate).astype(
                np.float32
            ),
            duration=len(y) / frontend.sample_rate,
            tag_scores=(tags @ vector).astype(np.float32) if len(tags) else np.zeros(0, np.float32),
        )

    def embed_file(
        self, path: str | Path, *, max_windows: int | None | str = "config"
    ) -> AudioEmbedding:
        # load_audio never returns an empty array: it raises AudioDecodeError naming the file
        return self.embed_waveform(
            load_audio(path, sr=self.net.frontend.sample_rate), max_windows=max_windows
        )

    def encode_audio(
        self,
        audio: Sequence[str | Path | np.ndarray] | str | Path | np.ndarray,
        *,
        batch_size: int = 8,
        max_windows: int | None | str = "config",
    ) -> np.ndarray:
        """Files or waveforms at the model's rate -> (N, dim) pooled track vectors (one -> (dim,))."""
        return pooled_vectors(self, audio, max_windows=max_windows)

    def save(self, folder: str | Path) -> Path:
        return write_model_folder(folder, self.config, self._weights)


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
        options={"network": net.spec(), "tags": list(tags), **(extra or {})},
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


@register_architecture(ARCHITECTURE)
def _load(config: ModelConfig, weights: dict[str, np.ndarray], folder: Path) -> DualEncoderModel:
    if "network" not in config.options:
        raise ModelLoadError(f"{folder}: dual-encoder config lacks options.network")
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
            f"{folder}: weights do not match the config: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}, wrong shape {wrong[:5]}"
        )
    net.load_state_dict(
        {k: torch.from_numpy(np.array(v)) for k, v in weights.items()}, strict=False
    )
    if config.dim != net.dim:
        raise ModelLoadError(f"{folder}: config dim {config.dim} but network dim {net.dim}")
    return DualEncoderModel(config, net, weights)


__all__ = ["DualEncoder", "DualEncoderModel", "build_dual_encoder", "export_model"]
