"""TTMR (Doh et al., ICASSP 2023) as a melodex model: ``ttmr:best.pth``.

A port of the authors' contrastive model (github.com/seungheondoh/music-text-representation,
commit 5e54e0d: ``mtr/contrastive/model.py``, ``mtr/modules/{audio_rep,tokenizer,encoder,ops}.py``,
``mtr/utils/demo_utils.py``), parameter names kept so the released checkpoints
(``mtr.tar.gz`` on Zenodo: ``best.pth`` + ``hparams.yaml`` per model) load as they are:

- audio: 16 kHz mono, 9.91-s windows (158,560 samples); torchaudio's complex STFT (1024 points,
  hop 160, centred, reflect padding), **the real part squared** (upstream takes
  ``spec.real.abs().pow(2)``, not the magnitude: kept), 128 HTK mel bands (the filterbank and
  STFT window are read from the checkpoint, where torchaudio stored them), ``10 log10``;
  a 4-block residual CNN front end, a pre-norm transformer (4 layers, 8 heads, 256-d) with a
  [CLS] token; the [CLS] output, ``LayerNorm`` + ``Linear`` to the joint space (128-d);
- text: BERT (``bert-base-uncased``), the [CLS] token's last hidden state, ``LayerNorm`` +
  ``Linear``. The stochastic text representation (random subsets of tags) is a training-time
  sampler; at inference a text is tokenised as it is. The original tokenises one text without
  truncation (a text over 512 tokens fails there); melodex batches with padding and an
  attention mask and truncates at the tower's maximum length.

Whole tracks: melodex's window rule (:func:`melodex.audio.frame_windows`, at most
``max_windows`` spread evenly), the mean of window outputs, L2-normalised. The README's
``audio_infer`` keeps every full window and drops the tail; the authors' evaluation takes 3
evenly spaced, possibly overlapping windows. Both average the windows' outputs the same way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

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

FAMILY = "ttmr"
ARCHITECTURE = "ttmr"
LICENCE = "CC-BY-NC-4.0 (TTMR weights, per the authors' README); melodex port MIT"
WEIGHTS = (
    "mtr.tar.gz from zenodo.org/record/7322135 (a model folder holds best.pth and "
    "hparams.yaml), plus bert-base-uncased's config and tokenizer"
)
#: Not used by the network: the loss temperature (model and head) and old position-id buffers.
IGNORED = ("logit_scale", "position_ids")
REP = "audio_encoder.audio_representation."


@dataclass(frozen=True)
class TtmrOptions:
    """Hparams that shape the network (defaults: the released ``bert_stochastic`` model)."""

    sr: int = 16000
    duration: float = 9.91
    mel_dim: int = 128
    n_fft: int = 1024
    win_length: int = 1024
    mix_type: str = "cf"
    conv_ndim: int = 128  # fixed in the authors' code; read from the checkpoint
    attention_ndim: int = 256
    attention_nlayers: int = 4
    attention_nheads: int = 8  # the authors' MusicTransformer default, never configured
    attention_max_len: int = 512
    mlp_dim: int = 128
    text_backbone: str = "bert-base-uncased"
    text_config: dict[str, Any] = field(default_factory=dict)

    @property
    def window_samples(self) -> int:
        return int(self.duration * self.sr)


class AudioRepresentation(nn.Module):
    """torchaudio's Spectrogram(power=None) + MelScale + AmplitudeToDB, as TFRep uses them."""

    def __init__(self, opts: TtmrOptions) -> None:
        super().__init__()
        self.opts = opts
        self.spec_fn = nn.Module()
        self.spec_fn.register_buffer("window", torch.hann_window(opts.win_length))
        self.mel_scale = nn.Module()
        self.mel_scale.register_buffer("fb", torch.zeros(opts.n_fft // 2 + 1, opts.mel_dim))

    def melspec(self, wav: Tensor) -> Tensor:
        spec = torch.stft(
            wav,
            n_fft=self.opts.n_fft,
            hop_length=int(0.01 * self.opts.sr),
            win_length=self.opts.win_length,
            window=self.spec_fn.window,
            center=True,
            pad_mode="reflect",
            normalized=False,
            onesided=True,
            return_complex=True,
        )
        power = spec.real.abs().pow(2)  # upstream: the real part only
        mel = torch.matmul(power.transpose(-1, -2), self.mel_scale.fb).transpose(-1, -2)
        return 10.0 * torch.log10(torch.clamp(mel, min=1e-10))


class ResBlock(nn.Module):
    """``Res2DMaxPoolModule``: two 3x3 convs with a (projected) shortcut, then 2x2 max-pool."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv_1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.bn_1 = nn.BatchNorm2d(cout)
        self.conv_2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.bn_2 = nn.BatchNorm2d(cout)
        self.diff = cin != cout
        if self.diff:
            self.conv_3 = nn.Conv2d(cin, cout, 3, padding=1)
            self.bn_3 = nn.BatchNorm2d(cout)
        self.mp = nn.MaxPool2d((2, 2))

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn_2(self.conv_2(torch.relu(self.bn_1(self.conv_1(x)))))
        if self.diff:
            x = self.bn_3(self.conv_3(x))
        return self.mp(torch.relu(x + out))


class ResFrontEnd(nn.Module):
    """Four residual blocks; channels and frequency mixed ('cf') into one vector per frame."""

    def __init__(self, opts: TtmrOptions) -> None:
        super().__init__()
        c = opts.conv_ndim
        self.mix_type = opts.mix_type
        self.input_bn = nn.BatchNorm2d(1)
        self.layer1 = ResBlock(1, c)
        self.layer2 = ResBlock(c, c)
        self.layer3 = ResBlock(c, c)
        self.layer4 = ResBlock(c, c)
        fc_ndim = c if opts.mix_type == "ft" else (opts.mel_dim // 16) * c
        self.fc = nn.Linear(fc_ndim, opts.attention_ndim)

    def forward(self, spec: Tensor) -> Tensor:
        out = self.layer4(self.layer3(self.layer2(self.layer1(self.input_bn(spec)))))
        b, c, f, t = out.shape
        if self.mix_type == "ft":
            out = out.contiguous().view(b, c, -1).permute(0, 2, 1)
        else:
            out = out.permute(0, 3, 1, 2).contiguous().view(b, t, -1)
        return self.fc(out)


class PreNormAttention(nn.Module):
    """``Residual(PreNorm(Attention))`` without the wrappers' own parameters."""

    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.heads, self.scale = heads, dim_head**-0.5
        self.to_qkv = nn.Linear(dim, dim_head * heads * 3, bias=False)
        self.to_out = nn.Sequential(nn.Linear(dim_head * heads, dim), nn.Identity())

    def forward(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        q, k, v = (
            t.reshape(b, n, self.heads, -1).transpose(1, 2)
            for t in self.to_qkv(self.norm(x)).chunk(3, dim=-1)
        )
        attn = (torch.einsum("bhid,bhjd->bhij", q, k) * self.scale).softmax(dim=-1)
        out = torch.einsum("bhij,bhjd->bhid", attn, v).transpose(1, 2).reshape(b, n, -1)
        return x + self.to_out(out)


class PreNormFeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.net = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), nn.Identity(), nn.Linear(hidden, dim), nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.net(self.norm(x))


class MusicTransformer(nn.Module):
    """Log-mel -> CNN front end -> [CLS] + positions -> transformer; returns all tokens."""

    def __init__(self, opts: TtmrOptions) -> None:
        super().__init__()
        d = opts.attention_ndim
        self.audio_representation = AudioRepresentation(opts)
        self.frontend = ResFrontEnd(opts)
        self.pos_embedding = nn.Parameter(torch.zeros(1, opts.attention_max_len + 1, d))
        self.cls_token = nn.Parameter(torch.zeros(d))
        heads = opts.attention_nheads
        self.transformer = nn.Module()
        self.transformer.layers = nn.ModuleList(
            nn.ModuleList([PreNormAttention(d, heads, d // heads), PreNormFeedForward(d, d * 4)])
            for _ in range(opts.attention_nlayers)
        )

    def forward(self, wav: Tensor) -> Tensor:
        h = self.frontend(self.audio_representation.melspec(wav).unsqueeze(1))
        h = torch.cat((self.cls_token.repeat(h.shape[0], 1, 1), h), dim=1)
        h = h + self.pos_embedding[:, : h.size(1)]
        for attn, ff in self.transformer.layers:
            h = ff(attn(h))
        return h


#: The checkpoint's ``layers.I.J.fn.norm.`` / ``layers.I.J.fn.fn.`` (``Residual(PreNorm(fn))``
#: wrappers) -> this port's ``layers.I.J.norm.`` / ``layers.I.J.``.
_WRAPPED = re.compile(r"^(audio_encoder\.transformer\.layers\.\d+\.[01])\.fn\.(?:fn\.)?")


def _from_checkpoint_names(state: dict[str, Any]) -> dict[str, Any]:
    return {_WRAPPED.sub(r"\1.", key): value for key, value in state.items()}


class TtmrNet(nn.Module):
    """The contrastive dual encoder; attribute names follow the checkpoint."""

    def __init__(self, opts: TtmrOptions, text_config: Any) -> None:
        super().__init__()
        from transformers import AutoModel

        self.audio_encoder = MusicTransformer(opts)
        self.text_encoder = AutoModel.from_config(text_config)  # with its (unused) pooler
        d, t = opts.attention_ndim, int(text_config.hidden_size)
        self.audio_projector = nn.Sequential(
            nn.LayerNorm(d), nn.Linear(d, opts.mlp_dim, bias=False)
        )
        self.text_projector = nn.Sequential(nn.LayerNorm(t), nn.Linear(t, opts.mlp_dim, bias=False))

    def encode_audio(self, wav: Tensor) -> Tensor:
        return self.audio_projector(self.audio_encoder(wav)[:, 0, :])

    def encode_text(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        out = self.text_encoder(input_ids=input_ids, attention_mask=attention_mask)
        return self.text_projector(out["last_hidden_state"][:, 0, :])


class TtmrModel(WindowedJointModel):
    """TTMR behind the :class:`~melodex.models.JointModel` API."""

    def __init__(
        self,
        config: ModelConfig,
        net: TtmrNet,
        tokenizer: Any,
        weights: dict[str, np.ndarray],
        *,
        source: str | None = None,
    ) -> None:
        super().__init__(config, weights, source=source)
        self.options = parse_options(TtmrOptions, config.options, source=config.name)
        self.net = net.eval()
        self.tokenizer = tokenizer
        positions = int(net.text_encoder.config.max_position_embeddings)
        self.max_length = min(positions, int(getattr(tokenizer, "model_max_length", positions)))

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
                max_length=self.max_length,
                return_tensors="pt",
            )
            z = self.net.encode_text(tokens["input_ids"], tokens["attention_mask"])
            out[start : start + len(chunk)] = z.numpy()
        if normalize:
            out = l2_normalize(out)
        return out[0] if single else out

    @torch.inference_mode()
    def window_outputs(self, windows: np.ndarray) -> WindowOutputs:
        if len(windows) == 0:
            return WindowOutputs(raw=np.zeros((0, self.dim), np.float32))
        audio = torch.from_numpy(np.ascontiguousarray(windows, np.float32))
        return WindowOutputs(raw=self.net.encode_audio(audio).numpy())

    def save(self, folder: str | Path) -> Path:
        """A self-contained melodex folder: config, safetensors weights, tokenizer files."""
        out = super().save(folder)
        self.tokenizer.save_pretrained(str(out))
        return out


def _options_from(hparams: dict[str, Any], state: dict[str, Any], text_config: Any) -> TtmrOptions:
    if hparams.get("text_type", "bert") != "bert":
        raise ModelLoadError(
            f"{FAMILY}: text_type {hparams.get('text_type')!r} is not supported (only bert)"
        )
    if hparams.get("audio_rep", "mel") != "mel" or hparams.get("frontend", "cnn") != "cnn":
        raise ModelLoadError(f"{FAMILY}: only the mel + cnn front end is supported")
    names = [f for f in TtmrOptions.__dataclass_fields__ if f != "text_config"]
    picked = {k: hparams[k] for k in names if k in hparams}
    for key in (
        "audio_encoder.frontend.layer1.conv_1.weight",
        "audio_encoder.pos_embedding",
        "audio_projector.1.weight",
    ):
        if key not in state:
            raise ModelLoadError(f"{FAMILY}: the checkpoint lacks {key}")
    picked["conv_ndim"] = int(state["audio_encoder.frontend.layer1.conv_1.weight"].shape[0])
    picked["attention_ndim"] = int(state["audio_encoder.pos_embedding"].shape[-1])
    picked["attention_max_len"] = int(state["audio_encoder.pos_embedding"].shape[1]) - 1
    picked["mlp_dim"] = int(state["audio_projector.1.weight"].shape[0])
    picked["text_config"] = text_config.to_dict()
    return TtmrOptions(**{**options_dict(TtmrOptions()), **picked})


def _build(
    config: ModelConfig, state: dict[str, Any], tokenizer: Any, *, source: str | None, where: str
) -> TtmrModel:
    from transformers import AutoConfig

    opts = parse_options(TtmrOptions, config.options, source=where)
    text_config = dict(opts.text_config)
    model_type = text_config.pop("model_type", "bert")
    net = TtmrNet(opts, AutoConfig.for_model(model_type, **text_config))
    used = check_state(state, net.state_dict(), ignore=IGNORED, where=where)
    net.load_state_dict(used, strict=True)
    return TtmrModel(config, net, tokenizer, numpy_weights(used), source=source)


def make_config(opts: TtmrOptions, *, name: str = FAMILY) -> ModelConfig:
    return ModelConfig(
        name=name,
        architecture=ARCHITECTURE,
        sample_rate=opts.sr,
        window_seconds=opts.window_samples / opts.sr,
        max_windows=8,
        text_encoder=opts.text_backbone,
        dim=opts.mlp_dim,
        options=options_dict(opts),
        licence=LICENCE,
    )


def load(argument: str) -> TtmrModel:
    """``ttmr:best.pth`` (or its folder): the checkpoint, ``hparams.yaml`` beside it, and the
    text tower's config and tokenizer (a folder named as ``text_backbone`` beside it, else the
    hub)."""
    path = checkpoint_path(argument, family=FAMILY, weights=WEIGHTS)
    state = _from_checkpoint_names(read_state_dict(path, family=FAMILY))
    if "audio_encoder.pos_embedding" not in state:
        raise ModelLoadError(f"{FAMILY}:{path}: not a TTMR checkpoint (no audio_encoder)")
    hparams = read_hparams(path, family=FAMILY)
    backbone = str(hparams.get("text_backbone", TtmrOptions.text_backbone))
    text_config, tokenizer = load_text_parts(
        text_source(path, backbone), family=FAMILY, checkpoint=path
    )
    opts = _options_from({**hparams, "text_backbone": backbone}, state, text_config)
    return _build(make_config(opts), state, tokenizer, source=None, where=f"{FAMILY}:{path}")


def load_folder(
    config: ModelConfig, weights: dict[str, np.ndarray], *, source: str | None = None
) -> TtmrModel:
    """The registry's loader for saved ``ttmr`` folders (tokenizer files beside)."""
    from transformers import AutoTokenizer

    if source is None or not Path(source).is_dir():
        raise ModelLoadError(f"{config.name}: a ttmr folder is loaded from its path")
    tokenizer = AutoTokenizer.from_pretrained(source)
    state = {k: torch.from_numpy(np.array(v)) for k, v in weights.items()}
    return _build(config, state, tokenizer, source=source, where=source)


__all__ = ["TtmrModel", "TtmrNet", "TtmrOptions", "load", "load_folder"]
