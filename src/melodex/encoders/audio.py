"""Trainable audio encoders of the seed methods, their registry, and the projection head.

Every encoder is an ``nn.Module`` with ``out_dim``, ``frontend`` (the front-end whose output it
takes, :mod:`melodex.frontends`), ``config`` (a frozen, JSON-serialisable dataclass) and
``forward(x) -> (B, out_dim)``. Build one by name::

    enc = build_audio_encoder("short_chunk_cnn", channels=(32,) * 7)
    feats = enc(enc.frontend(waveforms))          # (B, 256)
    spec = audio_encoder_spec(enc)                 # {"name": ..., "params": {...}} for config.json
    same = audio_encoder_from_spec(spec)

Registry (``AUDIO_ENCODERS``):

- ``short_chunk_cnn``: Won et al. 2020 (tag-based metric learning seed), log-mel 22.05 kHz.
- ``resnet_attention``: TTMR++'s modified ResNet with attention pooling, compact by default.
- ``tagging_transformer``: music tagging transformer (TTMR; WikiMuTe's audio encoder).
- ``handcrafted_mlp``: the two-branch seed's audio branch on MFCC / roll-off / ZCR statistics
  (computed from audio, or read from AcousticBrainz documents with ``frontend: acousticbrainz``).
- ``musicnn_backbone``: the packaged pretrained musicnn, frozen or fine-tuned.

:class:`ProjectionHead` maps either modality's features to the joint space and L2-normalises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from melodex.encoders.audio_base import AudioEncoder, EncoderConfig
from melodex.encoders.audio_cnn import (
    ResNetAttention,
    ResNetAttentionConfig,
    ShortChunkCNN,
    ShortChunkCNNConfig,
    TaggingTransformer,
    TaggingTransformerConfig,
)
from melodex.encoders.musicnn import MusicnnTagger, available_taggers
from melodex.errors import ModelLoadError, ParameterError
from melodex.frontends import DescriptorFrontend, HandcraftedFrontend, MusicnnFrontend

__all__ = [
    "AUDIO_ENCODERS",
    "AudioEncoder",
    "HandcraftedMLP",
    "HandcraftedMLPConfig",
    "MusicnnBackbone",
    "MusicnnBackboneConfig",
    "ProjectionHead",
    "ProjectionHeadConfig",
    "ResNetAttention",
    "ResNetAttentionConfig",
    "ShortChunkCNN",
    "ShortChunkCNNConfig",
    "TaggingTransformer",
    "TaggingTransformerConfig",
    "audio_encoder_from_spec",
    "audio_encoder_spec",
    "build_audio_encoder",
]

# ----------------------------------------------------------------------------- handcrafted MLP


@dataclass(frozen=True)
class HandcraftedMLPConfig(EncoderConfig):
    """Two fully connected layers separated by ReLU, batch norm after the last one.

    The two-branch seed: "a two layer fully-connected network ... separated by a ReLU activation"
    with "the fully connected dimension layer ... 256" and "final embedding dimension ... 128",
    and, from its model [15], "batch normalization after the last linear layer". It names no
    dropout; ``dropout`` (after the ReLU) defaults to 0. Standardises its input with statistics
    the trainer fits on the training split (see :class:`melodex.frontends.HandcraftedFrontend`).

    ``frontend``: ``"handcrafted"`` (statistics computed from decoded audio, 30 values) or
    ``"acousticbrainz"`` (the seed's own input: 369 values read from an AcousticBrainz low-level
    document, :class:`melodex.frontends.DescriptorFrontend`).
    """

    frontend: str | dict[str, Any] = "handcrafted"
    hidden_dim: int = 256
    out_dim: int = 128
    dropout: float = 0.0
    batch_norm: bool = True


class HandcraftedMLP(AudioEncoder):
    name = "handcrafted_mlp"

    def __init__(self, config: HandcraftedMLPConfig | None = None) -> None:
        super().__init__()
        config = config or HandcraftedMLPConfig()
        self._init_common(config, config.out_dim)
        if not isinstance(self.frontend, HandcraftedFrontend | DescriptorFrontend):
            raise ParameterError(
                "handcrafted_mlp needs the handcrafted or acousticbrainz front-end, "
                f"got {config.frontend!r}"
            )
        self.in_dim = self.frontend.feature_dim
        self.net = nn.Sequential(
            nn.Linear(self.in_dim, config.hidden_dim),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden_dim, config.out_dim),
            nn.BatchNorm1d(config.out_dim) if config.batch_norm else nn.Identity(),
        )
        # identity until fitted: MFCC (dB-like), roll-off (Hz) and ZCR (rate) differ by orders
        # of magnitude, so without this the roll-off dominates the first layer
        self.register_buffer("feature_mean", torch.zeros(self.in_dim))
        self.register_buffer("feature_std", torch.ones(self.in_dim))

    @torch.no_grad()
    def fit_standardisation(self, features: Any) -> None:
        """Per-feature mean and standard deviation of ``(N, feature_dim)`` training features
        (population std; a constant feature keeps std 1)."""
        x = torch.as_tensor(np.asarray(features, dtype=np.float64)).reshape(-1, self.in_dim)
        if x.shape[0] == 0:
            raise ParameterError("handcrafted_mlp: no features to fit the standardisation on")
        mean, std = x.mean(dim=0), x.std(dim=0, unbiased=False)
        std = torch.where(std > 1e-8 * (1.0 + mean.abs()), std, torch.ones_like(std))
        self.feature_mean.copy_(mean.to(self.feature_mean.dtype))
        self.feature_std.copy_(std.to(self.feature_std.dtype))

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.in_dim:
            raise ParameterError(
                f"handcrafted_mlp: expected (B, {self.in_dim}) features, got {tuple(x.shape)}"
            )
        return self.net((x - self.feature_mean) / self.feature_std)


# ----------------------------------------------------------------------------- musicnn backbone


@dataclass(frozen=True)
class MusicnnBackboneConfig(EncoderConfig):
    """The packaged pretrained musicnn as a feature extractor.

    ``output``: ``"penultimate"`` (200-d batch-normalised dense layer) or ``"taggram"`` (the 50
    tag probabilities). ``trainable=False`` keeps it frozen (no gradients, always in eval mode).
    """

    frontend: str | dict[str, Any] = "musicnn"
    model: str = "MTT_musicnn"
    output: Literal["penultimate", "taggram"] = "penultimate"
    trainable: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.model not in available_taggers():
            raise ParameterError(
                f"unknown musicnn model {self.model!r}; available: {available_taggers()}"
            )
        if self.output not in ("penultimate", "taggram"):
            raise ParameterError(f"output must be 'penultimate' or 'taggram', got {self.output!r}")


# Front-end batch-norm scales and their signs: the port folds each front-end BN into a max-pool
# that is only exact while the scale keeps its sign, so fine-tuning leaves them alone.
_FROZEN_BUFFERS = {f"{p}{i}" for p in "gs" for i in range(1, 6)}


class MusicnnBackbone(AudioEncoder):
    """Wraps :class:`melodex.encoders.musicnn.MusicnnTagger` (imported, not copied).

    The port keeps weights as buffers with batch norms folded into affine maps. With
    ``trainable=True`` those buffers become parameters, except the front-end BN scales and the
    sign vectors of the folded max-pool (``_FROZEN_BUFFERS``); batch norms act with their
    pretrained statistics (as "frozen BN" fine-tuning), there are no batch statistics to update.
    """

    name = "musicnn_backbone"

    def __init__(self, config: MusicnnBackboneConfig | None = None) -> None:
        super().__init__()
        config = config or MusicnnBackboneConfig()
        tagger = MusicnnTagger.from_pretrained(config.model)
        out_dim = tagger.embedding_dim if config.output == "penultimate" else len(tagger.tags)
        self._init_common(config, out_dim)
        if not isinstance(self.frontend, MusicnnFrontend):
            raise ParameterError(
                f"musicnn_backbone needs the musicnn front-end, got {config.frontend!r}"
            )
        self.tagger = tagger
        self.tags = list(tagger.tags)
        if config.trainable:
            self._unfreeze(tagger.net)
        else:
            tagger.requires_grad_(False)
        self.tagger.eval()

    @staticmethod
    def _unfreeze(net: nn.Module) -> None:
        for name in list(net._buffers):
            if name in _FROZEN_BUFFERS:
                continue
            value = net._buffers.pop(name)
            net.register_parameter(name, nn.Parameter(value.detach().clone()))
        net.requires_grad_(True)

    def train(self, mode: bool = True) -> MusicnnBackbone:
        super().train(mode)
        self.tagger.eval()  # no dropout, batch norms folded: train and eval are the same graph
        return self

    def forward(self, x: Tensor) -> Tensor:
        self._check_mel(x)
        if self.config.trainable:
            probs, pen = self.tagger(x)
        else:
            with torch.no_grad():
                probs, pen = self.tagger(x)
        return pen if self.config.output == "penultimate" else probs


# ----------------------------------------------------------------------------- registry

AUDIO_ENCODERS: dict[str, tuple[type[Any], type[AudioEncoder]]] = {
    "short_chunk_cnn": (ShortChunkCNNConfig, ShortChunkCNN),
    "resnet_attention": (ResNetAttentionConfig, ResNetAttention),
    "tagging_transformer": (TaggingTransformerConfig, TaggingTransformer),
    "handcrafted_mlp": (HandcraftedMLPConfig, HandcraftedMLP),
    "musicnn_backbone": (MusicnnBackboneConfig, MusicnnBackbone),
}


def build_audio_encoder(name: str, **params: Any) -> AudioEncoder:
    """An encoder of the registry from its name and config parameters (defaults otherwise)."""
    if name not in AUDIO_ENCODERS:
        raise ModelLoadError(
            f"unknown audio encoder {name!r}; available: {', '.join(AUDIO_ENCODERS)}"
        )
    config_cls, module_cls = AUDIO_ENCODERS[name]
    return module_cls(config_cls.from_dict(params, source=f"audio encoder {name!r}"))


def audio_encoder_spec(encoder: AudioEncoder) -> dict[str, Any]:
    """JSON-serialisable ``{"name", "params"}`` that :func:`audio_encoder_from_spec` rebuilds."""
    return {"name": encoder.name, "params": encoder.config.to_dict()}


def audio_encoder_from_spec(spec: dict[str, Any]) -> AudioEncoder:
    if set(spec) != {"name", "params"}:
        raise ModelLoadError(
            f"audio encoder spec needs exactly 'name' and 'params', got {sorted(spec)}"
        )
    return build_audio_encoder(spec["name"], **spec["params"])


# ----------------------------------------------------------------------------- projection head


@dataclass(frozen=True)
class ProjectionHeadConfig:
    """``kind``: ``"linear"``, ``"mlp"`` (Linear, ReLU, dropout, Linear) or ``"identity"``."""

    in_dim: int
    out_dim: int = 128
    kind: Literal["linear", "mlp", "identity"] = "mlp"
    hidden_dim: int | None = None  # mlp only; defaults to in_dim
    dropout: float = 0.0


class ProjectionHead(nn.Module):
    """Features of either modality -> L2-normalised joint-space vectors (B, out_dim)."""

    def __init__(self, config: ProjectionHeadConfig) -> None:
        super().__init__()
        self.config = config
        self.out_dim = config.out_dim
        if config.kind == "linear":
            self.net: nn.Module = nn.Linear(config.in_dim, config.out_dim)
        elif config.kind == "mlp":
            hidden = config.hidden_dim or config.in_dim
            self.net = nn.Sequential(
                nn.Linear(config.in_dim, hidden),
                nn.ReLU(),
                nn.Dropout(config.dropout),
                nn.Linear(hidden, config.out_dim),
            )
        elif config.kind == "identity":
            if config.in_dim != config.out_dim:
                raise ParameterError(
                    f"identity head needs in_dim == out_dim, got {config.in_dim} != {config.out_dim}"
                )
            self.net = nn.Identity()
        else:
            raise ParameterError(f"unknown projection head kind {config.kind!r}")

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(self.net(x), dim=-1)
