"""TTMR++ (Doh et al., ICASSP 2024) as a melodex model: ``ttmr-pp:CHECKPOINT.pth``.

A port of the authors' model (github.com/seungheondoh/music-text-representation-pp, commit
4bc7aa7, ``mtrpp/model/dual_encoder.py``, ``mtrpp/modules/{resnet,mel,pooling_layer}.py``),
parameter names kept so their checkpoints load as they are:

- audio: 22,050 Hz mono, 10-s windows; log-mel as Whisper computes it (1024-point STFT, hop 220,
  128 Slaney mel bands, ``log10`` floored at the batch's maximum minus 8, then ``(x + 4) / 4``);
  a CLIP-style modified ResNet-50 (3-conv stem, anti-aliased bottlenecks) and attention pooling;
  ``LayerNorm`` + ``Linear`` to the joint space (128-d in the release);
- text: RoBERTa (``roberta-base``), the first token's last hidden state, ``LayerNorm`` +
  ``Linear``; tokenised with padding to the longest and truncation at ``max_length`` (128).

Preprocessing as the authors' ``get_latent.py``, with the rules melodex fixes for whole tracks:

- the whole track is peak-normalised to [-1, 1] by min-max and quantised to int16 and back
  (``int16_to_float32(float32_to_int16(audio))``); a constant signal becomes zeros (the
  original divides by zero);
- windows: melodex's rule (:func:`melodex.audio.frame_windows`: 10-s windows, a tail of at
  least 5 s kept zero-padded, a shorter track one padded window; at most ``max_windows``
  spread evenly). The original keeps every full 10-s chunk, drops the tail, and fails on
  tracks under 10 s;
- the log-mel floor (maximum minus 8) is taken over all of one track's chosen windows, as the
  original's single batch per track does; tracks are never batched together;
- the track vector is the mean of the window outputs, L2-normalised (the original returns the
  mean unnormalised; its retrieval normalises).

Upstream quirk kept: the attention pool's positional embedding has one row (the original sizes
it with ``n_frames // 2**32``), added to every position.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from melodex.encoders.musicnn import mel_filterbank
from melodex.errors import ModelLoadError, bad_value
from melodex.models.base import WindowedJointModel, WindowOutputs, l2_normalize
from melodex.models.checkpoint_adapter import (
    check_state,
    checkpoint_path,
    load_text_parts,
    numpy_weights,
    read_hparams,
    read_state_dict,
    text_source,
)
from melodex.models.config import ModelConfig, options_dict, parse_options
from melodex.models.protocol import AudioInput

FAMILY = "ttmr-pp"
ARCHITECTURE = "ttmr-pp"
LICENCE = "CC-BY-NC-4.0 (TTMR++ weights, per the authors' README); melodex port MIT"
WEIGHTS = (
    "ttmrpp_resnet_roberta.pth and ttmrpp_resnet_roberta.yaml from "
    "huggingface.co/seungheondoh/ttmr-pp, plus roberta-base's config and tokenizer"
)
#: Checkpoint keys the network does not use: the loss temperature (twice: the model's and the
#: loss module's reference to it) and transformers' position-id buffers of older versions.
IGNORED = ("logit_scale", "position_ids")


@dataclass(frozen=True)
class TtmrPPOptions:
    """The hparams that shape the network (defaults: the authors' ``train.py``)."""

    width: int = 64
    n_heads: int = 8
    audio_dim: int = 512
    text_dim: int = 768
    mlp_dim: int = 128
    n_mels: int = 128
    n_fft: int = 1024
    hop_size: float = 0.01
    sr: int = 22050
    duration: int = 10
    max_length: int = 128
    text_arch: str = "roberta-base"
    text_config: dict[str, Any] = field(default_factory=dict)  # the RoBERTa config

    @property
    def hop_length(self) -> int:
        return int(self.hop_size * self.sr)


def whisper_log_mel(audio: Tensor, filters: Tensor, *, n_fft: int, hop_length: int) -> Tensor:
    """(B, samples) -> (B, n_mels, frames) as ``mtrpp.modules.mel.MelEncoder``: the floor is the
    maximum over the *whole batch* minus 8 (log10 units)."""
    window = torch.hann_window(n_fft, device=audio.device)
    stft = torch.stft(audio, n_fft, hop_length, window=window, return_complex=True)
    power = stft[..., :-1].abs() ** 2
    log_spec = torch.clamp(filters @ power, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0


class Bottleneck(nn.Module):
    """CLIP's anti-aliased bottleneck: stride by average pooling, never by a strided conv."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.avgpool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.downsample: nn.Module | None = None
        if stride > 1 or inplanes != planes * self.expansion:
            self.downsample = nn.Sequential(
                OrderedDict(
                    [
                        ("-1", nn.AvgPool2d(stride)),
                        ("0", nn.Conv2d(inplanes, planes * self.expansion, 1, bias=False)),
                        ("1", nn.BatchNorm2d(planes * self.expansion)),
                    ]
                )
            )

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.avgpool(F.relu(self.bn2(self.conv2(out))))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class AttentionPool2d(nn.Module):
    """One query (the mean of all positions) attending over the feature map."""

    def __init__(self, positions: int, embed_dim: int, num_heads: int, output_dim: int) -> None:
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.zeros(positions, embed_dim))
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.c_proj = nn.Linear(embed_dim, output_dim)
        self.num_heads = num_heads

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(start_dim=2).permute(2, 0, 1)  # (HW, B, C)
        x = torch.cat([x.mean(dim=0, keepdim=True), x], dim=0)
        x = x + self.positional_embedding[:, None, :].to(x.dtype)
        out, _ = F.multi_head_attention_forward(
            query=x[:1],
            key=x,
            value=x,
            embed_dim_to_check=x.shape[-1],
            num_heads=self.num_heads,
            q_proj_weight=self.q_proj.weight,
            k_proj_weight=self.k_proj.weight,
            v_proj_weight=self.v_proj.weight,
            in_proj_weight=None,
            in_proj_bias=torch.cat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias]),
            bias_k=None,
            bias_v=None,
            add_zero_attn=False,
            dropout_p=0.0,
            out_proj_weight=self.c_proj.weight,
            out_proj_bias=self.c_proj.bias,
            use_separate_proj_weight=True,
            training=False,
            need_weights=False,
        )
        return out.squeeze(0)


class ModifiedResNet(nn.Module):
    """The audio tower: log-mel -> 3-conv stem -> 4 bottleneck stages -> attention pool."""

    def __init__(self, opts: TtmrPPOptions, layers: tuple[int, ...] = (3, 4, 6, 3)) -> None:
        super().__init__()
        width = opts.width
        self.opts = opts
        self.register_buffer(
            "filters",
            torch.tensor(mel_filterbank(sr=opts.sr, n_fft=opts.n_fft, n_mels=opts.n_mels)),
            persistent=False,
        )
        self.conv1 = nn.Conv2d(1, width // 2, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width // 2)
        self.conv2 = nn.Conv2d(width // 2, width // 2, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width // 2)
        self.conv3 = nn.Conv2d(width // 2, width, kernel_size=3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.avgpool = nn.AvgPool2d(2)
        self._inplanes = width
        self.layer1 = self._make_layer(width, layers[0])
        self.layer2 = self._make_layer(width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(width * 8, layers[3], stride=2)
        # the original: f_out * int(n_frames // 2 ** (2 ** 5)) + 1, i.e. 1 for any real window
        n_frames = int(opts.sr * opts.duration // opts.hop_length)
        positions = (opts.n_mels // 32) * int(n_frames // 2**32) + 1
        self.attn_pool = AttentionPool2d(positions, width * 32, opts.n_heads, opts.audio_dim)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        layers = [Bottleneck(self._inplanes, planes, stride)]
        self._inplanes = planes * Bottleneck.expansion
        layers += [Bottleneck(self._inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, audio: Tensor) -> Tensor:
        x = whisper_log_mel(
            audio, self.filters, n_fft=self.opts.n_fft, hop_length=self.opts.hop_length
        )
        x = x.unsqueeze(1).type(self.conv1.weight.dtype)
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = self.avgpool(F.relu(self.bn3(self.conv3(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.attn_pool(x)


class TtmrPPNet(nn.Module):
    """The dual encoder; attribute names are the checkpoint's key prefixes."""

    def __init__(self, opts: TtmrPPOptions, text_config: Any) -> None:
        super().__init__()
        from transformers import AutoModel

        self.audio_encoder = ModifiedResNet(opts)
        # the original replaces pooler.dense by Identity: no pooler weights in its checkpoints
        self.text_encoder = AutoModel.from_config(text_config, add_pooling_layer=False)
        self.audio_projector = nn.Sequential(
            nn.LayerNorm(opts.audio_dim), nn.Linear(opts.audio_dim, opts.mlp_dim, bias=False)
        )
        self.text_projector = nn.Sequential(
            nn.LayerNorm(opts.text_dim), nn.Linear(opts.text_dim, opts.mlp_dim, bias=False)
        )

    def audio_forward(self, audio: Tensor) -> Tensor:
        return self.audio_projector(self.audio_encoder(audio))

    def text_forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        out = self.text_encoder(input_ids=input_ids, attention_mask=attention_mask)
        return self.text_projector(out["last_hidden_state"][:, 0, :])


def minmax_int16(y: np.ndarray) -> np.ndarray:
    """The original's ``int16_to_float32(float32_to_int16(y))``: min-max to [-1, 1] in float32,
    truncated to int16, divided by 32767 in float64, back to float32."""
    y = np.asarray(y, np.float32)
    if y.size == 0 or y.min() == y.max():
        return np.zeros_like(y)
    lo, hi = y.min(), y.max()
    x = ((y - lo) / (hi - lo)) * np.float32(2) - np.float32(1)
    q = (x * np.float32(32767.0)).astype(np.int16)
    return (q / 32767.0).astype(np.float32)


class TtmrPPModel(WindowedJointModel):
    """TTMR++ behind the :class:`~melodex.models.JointModel` API."""

    def __init__(
        self,
        config: ModelConfig,
        net: TtmrPPNet,
        tokenizer: Any,
        weights: dict[str, np.ndarray],
        *,
        source: str | None = None,
    ) -> None:
        super().__init__(config, weights, source=source)
        self.options = parse_options(TtmrPPOptions, config.options, source=config.name)
        self.net = net.eval()
        self.tokenizer = tokenizer

    @torch.inference_mode()
    def encode_text(
        self, texts: Sequence[str] | str, *, batch_size: int = 64, normalize: bool = True
    ) -> np.ndarray:
        if isinstance(batch_size, bool) or int(batch_size) < 1:
            raise bad_value("batch_size", batch_size, "a positive integer")
        single = isinstance(texts, str)
        items = [texts] if single else list(texts)
        out = np.zeros((len(items), self.dim), np.float32)
        for start in range(0, len(items), int(batch_size)):
            chunk = items[start : start + int(batch_size)]
            tokens = self.tokenizer(
                chunk,
                padding="longest",
                truncation=True,
                max_length=self.options.max_length,
                return_tensors="pt",
            )
            z = self.net.text_forward(tokens["input_ids"], tokens["attention_mask"])
            out[start : start + len(chunk)] = z.numpy()
        if normalize:
            out = l2_normalize(out)
        return out[0] if single else out

    @torch.inference_mode()
    def window_outputs(self, windows: np.ndarray) -> WindowOutputs:
        """One track's windows -> raw joint outputs (the mel floor spans all of them)."""
        if len(windows) == 0:
            return WindowOutputs(raw=np.zeros((0, self.dim), np.float32))
        audio = torch.from_numpy(np.ascontiguousarray(windows, np.float32))
        return WindowOutputs(raw=self.net.audio_forward(audio).numpy())

    def select(self, y: np.ndarray, max_windows: int | None | str) -> tuple[np.ndarray, np.ndarray]:
        return super().select(minmax_int16(y), max_windows)

    def encode_audio(
        self, audio: AudioInput, *, batch_size: int = 8, max_windows: int | None | str = "config"
    ) -> np.ndarray:
        """Files or waveforms -> (N, dim); one track per forward pass (the mel floor is per
        track), so ``batch_size`` only bounds memory like elsewhere."""
        if isinstance(batch_size, bool) or int(batch_size) < 1:
            raise bad_value("batch_size", batch_size, "a positive integer")
        single = isinstance(audio, str | Path) or (
            isinstance(audio, np.ndarray) and audio.ndim == 1
        )
        items = [audio] if single else list(audio)
        out = np.zeros((len(items), self.dim), np.float32)
        for i, item in enumerate(items):
            emb = (
                self.embed_waveform(np.asarray(item, np.float32), max_windows=max_windows)
                if isinstance(item, np.ndarray)
                else self.embed_file(item, max_windows=max_windows)
            )
            out[i] = emb.vector
        return out[0] if single else out

    def save(self, folder: str | Path) -> Path:
        """A self-contained melodex folder: config, safetensors weights, tokenizer files."""
        out = super().save(folder)
        self.tokenizer.save_pretrained(str(out))
        return out


def _options_from(
    hparams: dict[str, Any], state: dict[str, Any], text_config: Any
) -> TtmrPPOptions:
    """hparams (their names) + shapes the checkpoint fixes -> options."""
    defaults = TtmrPPOptions()
    names = [f for f in TtmrPPOptions.__dataclass_fields__ if f != "text_config"]
    picked = {k: hparams[k] for k in names if k in hparams}
    shapes = {
        "width": "audio_encoder.conv3.weight",
        "audio_dim": "audio_encoder.attn_pool.c_proj.weight",
        "mlp_dim": "audio_projector.1.weight",
    }
    for name, key in shapes.items():
        if key not in state:
            raise ModelLoadError(f"{FAMILY}: the checkpoint lacks {key}")
        picked[name] = int(state[key].shape[0])
    picked["text_dim"] = int(text_config.hidden_size)
    picked["text_config"] = text_config.to_dict()
    try:
        return TtmrPPOptions(**{**options_dict(defaults), **picked})
    except TypeError as exc:  # pragma: no cover - fields are fixed above
        raise ModelLoadError(f"{FAMILY}: bad hparams: {exc}") from exc


def _build(
    config: ModelConfig,
    state: dict[str, Tensor],
    tokenizer: Any,
    *,
    source: str | None,
    where: str,
) -> TtmrPPModel:
    from transformers import AutoConfig

    opts = parse_options(TtmrPPOptions, config.options, source=where)
    text_config = dict(opts.text_config)
    model_type = text_config.pop("model_type", "roberta")
    net = TtmrPPNet(opts, AutoConfig.for_model(model_type, **text_config))
    expected = net.state_dict()
    used = check_state(state, expected, ignore=IGNORED, where=where)
    net.load_state_dict(used, strict=True)
    weights = numpy_weights(used)
    return TtmrPPModel(config, net, tokenizer, weights, source=source)


def make_config(opts: TtmrPPOptions, *, name: str = FAMILY) -> ModelConfig:
    return ModelConfig(
        name=name,
        architecture=ARCHITECTURE,
        sample_rate=opts.sr,
        window_seconds=float(opts.duration),
        max_windows=8,
        text_encoder=opts.text_arch,
        dim=opts.mlp_dim,
        options=options_dict(opts),
        licence=LICENCE,
    )


def load(argument: str) -> TtmrPPModel:
    """``ttmr-pp:CHECKPOINT.pth`` (or a folder holding one): the authors' checkpoint, its
    ``.yaml`` hparams beside it, and the text tower's config and tokenizer (a folder named as
    the hparams' ``text_arch`` beside it, else the hub)."""
    path = checkpoint_path(argument, family=FAMILY, weights=WEIGHTS)
    state = read_state_dict(path, family=FAMILY)
    if "audio_encoder.conv3.weight" not in state:
        raise ModelLoadError(f"{FAMILY}:{path}: not a TTMR++ checkpoint (no audio_encoder.conv3)")
    hparams = read_hparams(path, family=FAMILY)
    text_arch = str(hparams.get("text_arch", TtmrPPOptions.text_arch))
    text_config, tokenizer = load_text_parts(
        text_source(path, text_arch), family=FAMILY, checkpoint=path
    )
    opts = _options_from({**hparams, "text_arch": text_arch}, state, text_config)
    return _build(make_config(opts), state, tokenizer, source=None, where=f"{FAMILY}:{path}")


def load_folder(
    config: ModelConfig, weights: dict[str, np.ndarray], *, source: str | None = None
) -> TtmrPPModel:
    """The registry's loader for saved ``ttmr-pp`` folders (tokenizer files beside)."""
    from transformers import AutoTokenizer

    if source is None or not Path(source).is_dir():
        raise ModelLoadError(f"{config.name}: a ttmr-pp folder is loaded from its path")
    tokenizer = AutoTokenizer.from_pretrained(source)
    state = {k: torch.from_numpy(np.array(v)) for k, v in weights.items()}
    return _build(config, state, tokenizer, source=source, where=source)


__all__ = ["TtmrPPModel", "TtmrPPNet", "TtmrPPOptions", "load", "load_folder", "minmax_int16"]
