"""Convolutional and transformer audio encoders over log-mel windows (B, frames, mels).

- :class:`ShortChunkCNN`, Won et al. 2020, as the tag-based metric learning seed's acoustic branch.
- :class:`ResNetAttention`, TTMR++'s "modified ResNet-50 with attention pooling", scaled down.
- :class:`TaggingTransformer`, Won et al. 2021's music tagging transformer (TTMR, WikiMuTe).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from melodex.encoders.audio_base import AudioEncoder, EncoderConfig
from melodex.errors import ParameterError

# ----------------------------------------------------------------------------- short-chunk CNN


@dataclass(frozen=True)
class ShortChunkCNNConfig(EncoderConfig):
    """Seven 3x3 conv / BN / ReLU / 2x2 max-pool blocks, a 1x1 conv to ``out_dim``, global max.

    Defaults are the seed code's acoustic branch (channels 128, 128, 256, 256, 256, 256, 512;
    embedding 256) on 128 mel bands x 173 frames at 22,050 Hz.
    """

    frontend: str | dict[str, Any] = "shortchunk"
    channels: tuple[int, ...] = (128, 128, 256, 256, 256, 256, 512)
    out_dim: int = 256


class ShortChunkCNN(AudioEncoder):
    name = "short_chunk_cnn"

    def __init__(self, config: ShortChunkCNNConfig | None = None) -> None:
        super().__init__()
        config = config or ShortChunkCNNConfig()
        self._init_common(config, config.out_dim)
        n_frames, n_mels = self.frontend.output_shape  # type: ignore[misc]
        need = 2 ** len(config.channels)
        if min(n_frames, n_mels) < need:
            raise ParameterError(
                f"short_chunk_cnn: {len(config.channels)} 2x2 pools need at least {need} frames "
                f"and mel bands; the front-end gives {n_frames} x {n_mels}"
            )
        self.spec_bn = nn.BatchNorm2d(1)
        blocks: list[nn.Module] = []
        c_in = 1
        for c_out in config.channels:
            blocks += [
                nn.Conv2d(c_in, c_out, 3, padding=1),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            c_in = c_out
        self.layers = nn.Sequential(*blocks)
        self.emb = nn.Conv2d(c_in, config.out_dim, 1)  # the seed's Conv_emb: 1x1 conv + ReLU

    def forward(self, x: Tensor) -> Tensor:
        self._check_mel(x)
        h = self.layers(self.spec_bn(x.transpose(1, 2).unsqueeze(1)))  # (B, C, F', T')
        return torch.relu(self.emb(h)).amax(dim=(2, 3))


# ----------------------------------------------------------------------------- ResNet + attention


@dataclass(frozen=True)
class ResNetAttentionConfig(EncoderConfig):
    """CLIP-style modified ResNet (3-conv stem, bottleneck blocks, avg-pool downsampling).

    ``width=64, layers=(3, 4, 6, 3), heads=8, out_dim=768, input_bn=False`` is TTMR++'s
    ResNet-50 (feature width ``32 * width`` = 2048); the defaults are a CPU-sized version.
    """

    frontend: str | dict[str, Any] = "ttmrpp"
    width: int = 16
    layers: tuple[int, int, int, int] = (1, 1, 1, 1)
    heads: int = 4
    out_dim: int = 256
    input_bn: bool = True


class _Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        c_out = planes * self.expansion
        self.body = nn.Sequential(
            nn.Conv2d(c_in, planes, 1, bias=False),
            nn.BatchNorm2d(planes),
            nn.ReLU(inplace=True),
            nn.Conv2d(planes, planes, 3, padding=1, bias=False),
            nn.BatchNorm2d(planes),
            nn.ReLU(inplace=True),
            nn.AvgPool2d(stride) if stride > 1 else nn.Identity(),
            nn.Conv2d(planes, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.down: nn.Module = nn.Identity()
        if stride > 1 or c_in != c_out:
            self.down = nn.Sequential(
                nn.AvgPool2d(stride) if stride > 1 else nn.Identity(),
                nn.Conv2d(c_in, c_out, 1, bias=False),
                nn.BatchNorm2d(c_out),
            )

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.body(x) + self.down(x))


class AttentionPool(nn.Module):
    """Multi-head attention pooling over time, the query being the mean token (CLIP's pool).

    TTMR++ pools over all (frequency, time) cells with a positional table that, through an
    exponent slip (``2 ** num_of_pool`` with ``num_of_pool = 32``), has one row: one learned
    vector added to every token. We pool over time (frequency averaged first) and keep that one
    learned vector, so any window length works.
    """

    def __init__(self, dim: int, heads: int, out_dim: int) -> None:
        super().__init__()
        if dim % heads:
            raise ParameterError(f"attention pool: width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.pos = nn.Parameter(torch.randn(dim) / dim**0.5)
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.c_proj = nn.Linear(dim, out_dim)

    def forward(self, tokens: Tensor) -> Tensor:
        """(B, T, C) -> (B, out_dim)."""
        seq = torch.cat([tokens.mean(1, keepdim=True), tokens], dim=1) + self.pos
        b, n, c = seq.shape
        h = self.heads

        def split(t: Tensor) -> Tensor:
            return t.view(b, -1, h, c // h).transpose(1, 2)

        q, k, v = split(self.q_proj(seq[:, :1])), split(self.k_proj(seq)), split(self.v_proj(seq))
        out = F.scaled_dot_product_attention(q, k, v)  # (B, h, 1, C / h)
        return self.c_proj(out.transpose(1, 2).reshape(b, c))


class ResNetAttention(AudioEncoder):
    name = "resnet_attention"

    def __init__(self, config: ResNetAttentionConfig | None = None) -> None:
        super().__init__()
        config = config or ResNetAttentionConfig()
        self._init_common(config, config.out_dim)
        if len(config.layers) != 4 or min(config.layers) < 1:
            raise ParameterError(
                f"resnet_attention: layers must be 4 positive counts, got {config.layers}"
            )
        n_frames, n_mels = self.frontend.output_shape  # type: ignore[misc]
        if min(n_frames, n_mels) < 32:
            raise ParameterError(
                f"resnet_attention downsamples by 32; input {n_frames} x {n_mels} is too small"
            )
        w = config.width
        self.input_bn: nn.Module = nn.BatchNorm2d(1) if config.input_bn else nn.Identity()
        self.stem = nn.Sequential(
            nn.Conv2d(1, w // 2, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(w // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(w // 2, w // 2, 3, padding=1, bias=False),
            nn.BatchNorm2d(w // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(w // 2, w, 3, padding=1, bias=False),
            nn.BatchNorm2d(w),
            nn.ReLU(inplace=True),
            nn.AvgPool2d(2),
        )
        stages: list[nn.Module] = []
        c_in = w
        for i, n_blocks in enumerate(config.layers):
            planes = w * 2**i
            blocks = [_Bottleneck(c_in, planes, stride=1 if i == 0 else 2)]
            c_in = planes * _Bottleneck.expansion
            blocks += [_Bottleneck(c_in, planes) for _ in range(n_blocks - 1)]
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = AttentionPool(c_in, config.heads, config.out_dim)

    def forward(self, x: Tensor) -> Tensor:
        self._check_mel(x)
        h = self.stages(self.stem(self.input_bn(x.transpose(1, 2).unsqueeze(1))))  # (B, C, F', T')
        return self.pool(h.mean(2).transpose(1, 2))


# ----------------------------------------------------------------------------- tagging transformer


@dataclass(frozen=True)
class TaggingTransformerConfig(EncoderConfig):
    """Residual CNN front-end over the mel patch, then a [CLS] transformer over time.

    Defaults are TTMR's ("transformer_cnn_cf_mel": four 2x2-pooling residual blocks of 128
    channels, channels x frequency flattened to 256-d tokens, 4 layers, 8 heads, feed-forward
    4 x 256, dropout 0.1, learned positions up to 512 tokens); Won et al. 2021 pool the last
    block (2, 1) instead. ``out_dim`` = ``attention_dim`` (the [CLS] output).

    The defaults cost ~34 s per forward of 16 TTMR windows on a busy 2-core CPU (the residual
    CNN runs 128 channels at full 128 x 992 resolution); ``conv_dim=32, attention_dim=128,
    heads=4, layers=2`` (0.56 M parameters) takes ~5 s and suits CPU demos.
    """

    frontend: str | dict[str, Any] = "ttmr"
    conv_dim: int = 128
    pools: tuple[tuple[int, int], ...] = ((2, 2), (2, 2), (2, 2), (2, 2))
    attention_dim: int = 256
    heads: int = 8
    layers: int = 4
    dropout: float = 0.1
    max_len: int = 512


class _ResBlock(nn.Module):
    """Two 3x3 conv/BN with a (projected) residual, ReLU, then max-pool (Won et al.'s Res2D)."""

    def __init__(self, c_in: int, c_out: int, pool: tuple[int, int]) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1),
            nn.BatchNorm2d(c_out),
        )
        self.skip: nn.Module = nn.Identity()
        if c_in != c_out:
            self.skip = nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out))
        self.pool = nn.MaxPool2d(pool)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(torch.relu(self.body(x) + self.skip(x)))


class TaggingTransformer(AudioEncoder):
    name = "tagging_transformer"

    def __init__(self, config: TaggingTransformerConfig | None = None) -> None:
        super().__init__()
        config = config or TaggingTransformerConfig()
        self._init_common(config, config.attention_dim)
        _, n_mels = self.frontend.output_shape  # type: ignore[misc]
        n_freq = n_mels
        for pf, _ in config.pools:
            n_freq //= pf
        if n_freq < 1:
            raise ParameterError(
                f"tagging_transformer: pools {config.pools} leave no frequency bins"
            )
        self.input_bn = nn.BatchNorm2d(1)
        blocks, c_in = [], 1
        for pool in config.pools:
            blocks.append(_ResBlock(c_in, config.conv_dim, tuple(pool)))
            c_in = config.conv_dim
        self.cnn = nn.Sequential(*blocks)
        d = config.attention_dim
        self.to_tokens = nn.Linear(n_freq * config.conv_dim, d)
        self.cls_token = nn.Parameter(torch.randn(d))
        self.pos_embedding = nn.Parameter(torch.randn(1, config.max_len + 1, d))
        self.dropout = nn.Dropout(config.dropout)
        layer = nn.TransformerEncoderLayer(
            d,
            config.heads,
            dim_feedforward=4 * d,
            dropout=config.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.transformer = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)

    def forward(self, x: Tensor) -> Tensor:
        self._check_mel(x)
        h = self.cnn(self.input_bn(x.transpose(1, 2).unsqueeze(1)))  # (B, C, F', T')
        b, c, f, t = h.shape
        if t > self.config.max_len:
            raise ParameterError(
                f"tagging_transformer: {t} time steps exceed max_len={self.config.max_len}"
            )
        tokens = self.to_tokens(h.permute(0, 3, 1, 2).reshape(b, t, c * f))  # (B, T', d)
        seq = torch.cat([self.cls_token.expand(b, 1, -1), tokens], dim=1)
        seq = self.dropout(seq + self.pos_embedding[:, : t + 1])
        return self.transformer(seq)[:, 0]
