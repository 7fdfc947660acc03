"""MuQ-MuLan (Zhu et al. 2025) as a melodex model: ``muq-mulan:<hub id or folder>``.

A port of the ``muq`` package (PyPI ``muq==0.1.0``: ``muq/muq_mulan/muq_mulan.py``,
``models/{mulan,audio,text}.py``, ``modules/transformer.py``; ``muq/muq/models/muq_model.py``,
``modules/{conv,features}.py``). The package pins a torch other than the project's, so its model
code is ported here, parameter names kept, and checked against the package run in a side
environment (tests/test_muq_mulan_parity.py, fixture from scripts/record_muq_reference.py).

- audio: 24 kHz mono, 10-s clips. MuQ: torchaudio's MelSpectrogram (2048-point FFT, hop 240,
  128 HTK mel bands, power) in dB, the last frame dropped, standardised by the checkpoint's
  statistics; two strided residual conv blocks; transformers' ``Wav2Vec2ConformerEncoder``; the
  hidden state of layer ``use_layer_idx``. MuLan: ``Linear`` to the tower width, a small
  transformer (qk-RMS-normalised attention, GEGLU), the mean over time, ``Linear`` to the joint
  space (512-d), L2-normalised per clip;
- text: XLM-RoBERTa's last hidden state, the same kind of small transformer, the mean over all
  positions, ``Linear``, L2-normalised. The original tokenises a batch with padding and then
  averages over the padded positions too, so a text's vector depends on its batch-mates;
  melodex encodes one text at a time (the original's result for a text alone).

Whole tracks, as ``MuQMuLan._get_all_clips``: back-to-back 10-s clips; a last partial clip is
filled with the track's beginning (melodex repeats the track when it is shorter than half a clip,
where the original's clip would come out short); at most ``max_windows`` clips, spread evenly;
the mean of the clips' normalised latents, L2-normalised (the original leaves the mean as is).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from melodex.audio import select_windows
from melodex.errors import ModelLoadError, bad_value
from melodex.models.base import WindowedJointModel, WindowOutputs, l2_normalize
from melodex.models.checkpoint_adapter import check_state, numpy_weights
from melodex.models.config import ModelConfig, options_dict, parse_options
from melodex.models.mel_banks import htk_mel_filters

FAMILY = "muq-mulan"
ARCHITECTURE = "muq-mulan"
LICENCE = "CC-BY-NC-4.0 (OpenMuQ/MuQ-MuLan-large weights; non-commercial); melodex port MIT"
WEIGHTS = (
    "the folder of huggingface.co/OpenMuQ/MuQ-MuLan-large (config.json, model.safetensors), "
    "with the folders of its audio model (OpenMuQ/MuQ-large-msd-iter: config.json) and text "
    "model (xlm-roberta-base: config and tokenizer) beside it, named by their last path part"
)
#: Checkpoint parts inference never uses: MuQ's pre-training head, tokeniser and cls token,
#: MuLan's unused aggregator and contrastive-loss parameters.
UNUSED = (
    "mulan.audio.model.model.linear.",
    "mulan.audio.model.model.cls_token",
    "mulan.audio.model.model.quantizer_",
    "mulan.audio.model.model.rvq.",
    "mulan.audio.aggregator.",
    "mulan.contrast.",
    "mulan.multi_layer_contrastive_learning.",
    "mulan.text_layers_indices",
    "mulan.audio_layers_indices",
)


@dataclass(frozen=True)
class MuQMuLanOptions:
    """The configs that shape the network: MuLan's (``config.json``) and MuQ's."""

    mulan: dict[str, Any]
    audio_model: dict[str, Any]
    text_model: dict[str, Any]
    audio_transformer: dict[str, Any]
    text_transformer: dict[str, Any]
    muq: dict[str, Any]  # MuQ's config.json
    text_config: dict[str, Any] = field(default_factory=dict)  # XLM-R's config


class MelDb(nn.Module):
    """torchaudio ``MelSpectrogram(sr, n_fft, hop)`` then ``AmplitudeToDB()``, as MuQ's MelSTFT."""

    def __init__(self, *, sr: int, n_fft: int, hop: int, n_mels: int = 128) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.register_buffer(
            "fb", htk_mel_filters(sr=sr, n_fft=n_fft, n_mels=n_mels), persistent=False
        )

    def forward(self, x: Tensor) -> Tensor:
        spec = torch.stft(
            x,
            n_fft=self.n_fft,
            hop_length=self.hop,
            win_length=self.n_fft,
            window=self.window,
            center=True,
            pad_mode="reflect",
            normalized=False,
            onesided=True,
            return_complex=True,
        )
        power = spec.abs().pow(2.0)
        mel = torch.matmul(power.transpose(-1, -2), self.fb).transpose(-1, -2)
        return 10.0 * torch.log10(torch.clamp(mel, min=1e-10))


class Res2dModule(nn.Module):
    def __init__(self, idim: int, odim: int, stride: tuple[int, int]) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(idim, odim, 3, padding=1, stride=stride)
        self.bn1 = nn.BatchNorm2d(odim)
        self.conv2 = nn.Conv2d(odim, odim, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(odim)
        self.diff = idim != odim or stride[0] > 1
        if self.diff:
            self.conv3 = nn.Conv2d(idim, odim, 3, padding=1, stride=stride)
            self.bn3 = nn.BatchNorm2d(odim)

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        if self.diff:
            x = self.bn3(self.conv3(x))
        return torch.relu(x + out)


class Conv2dSubsampling(nn.Module):
    def __init__(self, hdim: int, odim: int, strides: list[int], n_bands: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            Res2dModule(1, hdim, (2, strides[0])), Res2dModule(hdim, hdim, (2, strides[1]))
        )
        self.linear = nn.Linear(hdim * n_bands // 2 // 2, odim)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x.unsqueeze(1))
        b, c, f, t = x.shape
        return self.linear(x.permute(0, 3, 1, 2).reshape(b, t, c * f))


class MuQCore(nn.Module):
    """MuQ's feature path: mel dB -> standardise -> conv subsampling -> conformer layers."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        from transformers import Wav2Vec2ConformerConfig
        from transformers.models.wav2vec2_conformer.modeling_wav2vec2_conformer import (
            Wav2Vec2ConformerEncoder,
        )

        n_fold = int(100 // cfg.get("label_rate", 25))
        self.mel = MelDb(sr=24000, n_fft=2048, hop=int(cfg.get("hop_length", 240)))
        stat = cfg.get("stat") or {}
        self.mean = float(stat.get("melspec_2048_mean", 0.0))
        self.std = float(stat.get("melspec_2048_std", 1.0))
        strides = {4: [2, 2], 2: [2, 1]}[n_fold]
        self.conv = Conv2dSubsampling(
            int(cfg.get("conv_dim", 512)),
            int(cfg.get("encoder_dim", 1024)),
            strides,
            int(cfg.get("n_mels", 128)),
        )
        w2v2 = dict(cfg.get("w2v2_config") or {})
        w2v2["num_hidden_layers"] = int(cfg.get("encoder_depth", 12))
        w2v2["hidden_size"] = int(cfg.get("encoder_dim", 1024))
        for key in ("model_type", "_attn_implementation", "id2label", "label2id"):
            w2v2.pop(key, None)
        # eager attention: the conformer code muq was written against had no other
        conf = Wav2Vec2ConformerConfig(**w2v2, attn_implementation="eager")
        self.conformer = Wav2Vec2ConformerEncoder(conf)

    def hidden_states(self, x: Tensor) -> list[Tensor]:
        """The conformer's ``hidden_states`` as transformers 4 returned them (MuQ's era): the
        input, each layer's output but the last, and the last after the final LayerNorm."""
        mel = (self.mel(x.float())[..., :-1] - self.mean) / self.std
        h = self.conv(mel)
        conformer = self.conformer
        rel = conformer.embed_positions(h) if conformer.embed_positions is not None else None
        states = []
        for layer in conformer.layers:
            states.append(h)
            out = layer(h, attention_mask=None, relative_position_embeddings=rel)
            h = out[0] if isinstance(out, tuple) else out
        states.append(conformer.layer_norm(h))
        return states


class BiaslessLayerNorm(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.learned_gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(
            x, x.shape[-1:], self.learned_gamma, torch.zeros_like(self.learned_gamma)
        )


class Attention(nn.Module):
    """Pre-norm attention with l2-normalised, learnt-scale queries and keys (scale 8)."""

    def __init__(self, dim: int, dim_head: int, heads: int) -> None:
        super().__init__()
        inner = dim_head * heads
        self.heads = heads
        self.norm = BiaslessLayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.q_scale = nn.Parameter(torch.ones(dim_head))
        self.k_scale = nn.Parameter(torch.ones(dim_head))
        self.to_out = nn.Sequential(nn.Linear(inner, dim, bias=False), nn.Identity())

    def forward(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        x = self.norm(x)
        q, k, v = self.to_q(x), *self.to_kv(x).chunk(2, dim=-1)
        q, k, v = (t.reshape(b, n, self.heads, -1).transpose(1, 2) for t in (q, k, v))
        q = F.normalize(q, p=2, dim=-1) * self.q_scale
        k = F.normalize(k, p=2, dim=-1) * self.k_scale
        attn = (torch.einsum("bhid,bhjd->bhij", q, k) * 8).softmax(dim=-1)
        out = torch.einsum("bhij,bhjd->bhid", attn, v).transpose(1, 2).reshape(b, n, -1)
        return self.to_out(out)


class GEGLU(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        x, gate = x.chunk(2, dim=-1)
        return F.gelu(gate) * x


def feed_forward(dim: int, mult: float) -> nn.Sequential:
    hidden = int(dim * mult * 2 / 3)
    return nn.Sequential(
        BiaslessLayerNorm(dim),
        nn.Linear(dim, hidden * 2, bias=False),
        GEGLU(),
        nn.Identity(),
        nn.Linear(hidden, dim, bias=False),
    )


class Transformer(nn.Module):
    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        dim, heads, dim_head = int(cfg["dim"]), int(cfg["heads"]), int(cfg["dim_head"])
        self.layers = nn.ModuleList(
            nn.ModuleList(
                [Attention(dim, dim_head, heads), feed_forward(dim, float(cfg.get("ff_mult", 4)))]
            )
            for _ in range(int(cfg["tf_depth"]))
        )

    def forward(self, x: Tensor) -> Tensor:
        for attn, ff in self.layers:
            x = attn(x) + x
            x = ff(x) + x
        return x


class AudioTower(nn.Module):
    def __init__(self, opts: MuQMuLanOptions) -> None:
        super().__init__()
        self.model = nn.Module()
        self.model.model = MuQCore(opts.muq)
        tcfg = opts.audio_transformer
        model_dim = opts.audio_model.get("model_dim") or int(opts.muq.get("encoder_dim", 1024))
        self.transformer = Transformer(tcfg)
        self.proj = nn.Linear(int(model_dim), int(tcfg["dim"]))
        self.layer = int(opts.audio_model.get("use_layer_idx", -1))

    def forward(self, wav: Tensor) -> Tensor:
        hidden = self.model.model.hidden_states(wav)[self.layer]
        return self.transformer(self.proj(hidden)).mean(dim=-2)


class TextTower(nn.Module):
    def __init__(self, opts: MuQMuLanOptions, text_config: Any) -> None:
        super().__init__()
        from transformers import XLMRobertaModel

        self.model = XLMRobertaModel(text_config)
        tcfg = opts.text_transformer
        model_dim = opts.text_model.get("model_dim")
        dim = int(tcfg["dim"])
        self.transformer = Transformer(tcfg)
        self.proj = nn.Linear(int(model_dim), dim) if model_dim and model_dim != dim else None

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.proj is not None:
            out = self.proj(out)
        return self.transformer(out).mean(dim=-2)


class MuQMuLanNet(nn.Module):
    def __init__(self, opts: MuQMuLanOptions, text_config: Any) -> None:
        super().__init__()
        self.mulan = nn.Module()
        self.mulan.audio = AudioTower(opts)
        self.mulan.text = TextTower(opts, text_config)
        latent = int(opts.mulan.get("dim_latent", 512))
        self.mulan.text_to_latents = nn.Linear(int(opts.text_transformer["dim"]), latent)
        self.mulan.audio_to_latents = nn.Linear(int(opts.audio_transformer["dim"]), latent)

    def audio_latents(self, wav: Tensor) -> Tensor:
        return F.normalize(self.mulan.audio_to_latents(self.mulan.audio(wav)), p=2, dim=-1)

    def text_latents(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        z = self.mulan.text_to_latents(self.mulan.text(input_ids, attention_mask))
        return F.normalize(z, p=2, dim=-1)


def clips(y: np.ndarray, window: int) -> np.ndarray:
    """``_get_all_clips``: full clips, then the rest filled with the track's beginning."""
    y = np.asarray(y, np.float32)
    n_full = len(y) // window
    out = [y[i * window : (i + 1) * window] for i in range(n_full)]
    rest = len(y) - n_full * window
    if rest:
        out.append(np.concatenate([y[n_full * window :], np.resize(y, window - rest)]))
    return np.stack(out) if out else np.zeros((0, window), np.float32)


class MuQMuLanModel(WindowedJointModel):
    """MuQ-MuLan behind the :class:`~melodex.models.JointModel` API."""

    def __init__(
        self,
        config: ModelConfig,
        net: MuQMuLanNet,
        tokenizer: Any,
        weights: dict[str, np.ndarray],
        *,
        source: str | None = None,
    ) -> None:
        super().__init__(config, weights, source=source)
        self.options = parse_options(MuQMuLanOptions, config.options, source=config.name)
        self.net = net.eval()
        self.tokenizer = tokenizer

    @torch.inference_mode()
    def encode_text(
        self, texts: Sequence[str] | str, *, batch_size: int = 64, normalize: bool = True
    ) -> np.ndarray:
        """One text per forward pass: the original averages over padding (see above)."""
        if isinstance(batch_size, bool) or int(batch_size) < 1:
            raise bad_value("batch_size", batch_size, "a positive integer")
        single = isinstance(texts, str)
        items = [texts] if single else list(texts)
        out = np.zeros((len(items), self.dim), np.float32)
        for i, text in enumerate(items):
            tokens = self.tokenizer([text], return_tensors="pt", padding=True)
            out[i] = self.net.text_latents(tokens["input_ids"], tokens["attention_mask"])[0]
        if normalize:
            out = l2_normalize(out)
        return out[0] if single else out

    def select(self, y: np.ndarray, max_windows: int | None | str) -> tuple[np.ndarray, np.ndarray]:
        windows = clips(y, self.window_samples)
        chosen = select_windows(len(windows), max_windows=self._window_limit(max_windows))
        return np.ascontiguousarray(windows[chosen]), chosen

    @torch.inference_mode()
    def window_outputs(self, windows: np.ndarray) -> WindowOutputs:
        if len(windows) == 0:
            return WindowOutputs(raw=np.zeros((0, self.dim), np.float32))
        rows = [
            self.net.audio_latents(torch.from_numpy(np.ascontiguousarray(w))[None])[0].numpy()
            for w in windows  # one clip at a time, as the original's default (serial) mode
        ]
        return WindowOutputs(raw=np.stack(rows))

    def save(self, folder: str | Path) -> Path:
        out = super().save(folder)
        self.tokenizer.save_pretrained(str(out))
        return out


def _resolve(name: str, beside: Path) -> Path:
    """A named sub-model: a folder beside the checkpoint (by full name or last part), a path,
    or a hub download."""
    for candidate in (beside / name, beside / Path(name).name, Path(os.path.expanduser(name))):
        if candidate.is_dir():
            return candidate
    return _download(name, f"{FAMILY}: its sub-model {name!r}")


def _download(repo_id: str, what: str) -> Path:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id))
    except Exception as exc:  # offline, unknown repo, ...
        raise ModelLoadError(
            f"{what} is not a folder here and cannot be downloaded ({exc.__class__.__name__}). "
            f"Get {WEIGHTS}; then pass --model {FAMILY}:FOLDER"
        ) from exc


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{FAMILY}: {path}: unreadable config: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelLoadError(f"{FAMILY}: {path}: config must be a JSON object")
    return data


def _read_weights(folder: Path) -> dict[str, Tensor]:
    st = folder / "model.safetensors"
    if st.is_file():
        from safetensors.torch import load_file

        return load_file(str(st))
    binary = folder / "pytorch_model.bin"
    if binary.is_file():
        from melodex.models.checkpoint_adapter import read_state_dict

        return read_state_dict(binary, family=FAMILY)
    raise ModelLoadError(f"{FAMILY}: {folder} holds no model.safetensors or pytorch_model.bin")


def _build(
    config: ModelConfig, state: dict[str, Tensor], tokenizer: Any, *, source: str | None, where: str
) -> MuQMuLanModel:
    from transformers import XLMRobertaConfig

    opts = parse_options(MuQMuLanOptions, config.options, source=where)
    text_config = dict(opts.text_config)
    text_config.pop("model_type", None)
    net = MuQMuLanNet(opts, XLMRobertaConfig(**text_config))
    state = {k: v for k, v in state.items() if not k.startswith(UNUSED)}
    used = check_state(state, net.state_dict(), ignore=("position_ids",), where=where)
    net.load_state_dict(used, strict=True)
    return MuQMuLanModel(config, net, tokenizer, numpy_weights(used), source=source)


def load(argument: str) -> MuQMuLanModel:
    """``muq-mulan:FOLDER`` (config.json + weights, sub-model folders beside) or a hub id."""
    from transformers import AutoConfig, AutoTokenizer

    path = Path(os.path.expanduser(argument))
    folder = path if path.is_dir() else _download(argument, f"{FAMILY}:{argument}")
    cfg = _read_json(folder / "config.json")
    missing = [k for k in ("mulan", "audio_model", "text_model") if k not in cfg]
    if missing:
        raise ModelLoadError(f"{FAMILY}: {folder / 'config.json'} lacks {missing}")
    muq_folder = _resolve(str(cfg["audio_model"]["name"]), folder.parent)
    text_folder = _resolve(str(cfg["text_model"]["name"]), folder.parent)
    text_config = AutoConfig.from_pretrained(str(text_folder))
    opts = MuQMuLanOptions(
        mulan=cfg["mulan"],
        audio_model=cfg["audio_model"],
        text_model=cfg["text_model"],
        audio_transformer=cfg.get("audio_transformer", {}),
        text_transformer=cfg.get("text_transformer", {}),
        muq=_read_json(muq_folder / "config.json"),
        text_config=text_config.to_dict(),
    )
    mulan = opts.mulan
    config = ModelConfig(
        name=FAMILY,
        architecture=ARCHITECTURE,
        sample_rate=int(mulan.get("sr", 24000)),
        window_seconds=float(mulan.get("clip_secs", 10)),
        max_windows=8,
        text_encoder=str(cfg["text_model"]["name"]),
        dim=int(mulan.get("dim_latent", 512)),
        options=options_dict(opts),
        licence=LICENCE,
    )
    tokenizer = AutoTokenizer.from_pretrained(str(text_folder))
    return _build(config, _read_weights(folder), tokenizer, source=None, where=f"{FAMILY}:{folder}")


def load_folder(
    config: ModelConfig, weights: dict[str, np.ndarray], *, source: str | None = None
) -> MuQMuLanModel:
    """The registry's loader for saved ``muq-mulan`` folders (tokenizer files beside)."""
    from transformers import AutoTokenizer

    if source is None or not Path(source).is_dir():
        raise ModelLoadError(f"{config.name}: a muq-mulan folder is loaded from its path")
    state = {k: torch.from_numpy(np.array(v)) for k, v in weights.items()}
    tokenizer = AutoTokenizer.from_pretrained(source)
    return _build(config, state, tokenizer, source=source, where=source)


__all__ = ["MuQMuLanModel", "MuQMuLanNet", "MuQMuLanOptions", "clips", "load", "load_folder"]
