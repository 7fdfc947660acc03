"""Microsoft CLAP (``ms-clap:<2022|2023|file.pth>``): the ``msclap`` package's releases.

msclap 1.3.4 pins numpy<2 and transformers<5, so it cannot be installed beside melodex; this
module ports its inference (``msclap/CLAPWrapper.py``, ``models/{clap,audio,htsat}.py``) and
reads its checkpoints (``{'model': state_dict}``) with ``torch.load(weights_only=True)``:

- **2023** (``CLAP_weights_2023.pth``): HTSAT-tiny audio tower, GPT-2 text tower. msclap's
  ``HTSATWrapper`` ignores the yaml's audio settings and builds HTSAT from its own
  ``models/config.py``: its torchlibrosa front end designs the mel bank for 32 kHz, 50-14000 Hz
  (1024-point STFT, hop 320) while the audio arrives at 44.1 kHz. The bank is a tensor of the
  checkpoint (``logmel_extractor.melW``), so melodex reads it from there (and builds the same
  one when a checkpoint lacks it). The network is the HTSAT transformers ports as
  ``ClapAudioModel`` (LAION-CLAP's lineage), so the keys are renamed as in
  :mod:`~melodex.models.laion_clap`; its ``pooler_output`` is msclap's ``latent_output``.
- **2022** (``CLAP_weights_2022.pth``): PANNs' Cnn14 (ported below; mel bank 44.1 kHz,
  50-14000 Hz), BERT text tower (``bert-base-uncased``, the [CLS] token).
- Both project with msclap's ``Projection`` (linear, GELU, linear, residual, LayerNorm) to
  1024 dimensions.

Preprocessing as ``CLAPWrapper`` does it, with one rule made deterministic:

- audio at 44.1 kHz; windows of 7 s (2023) or 5 s (2022). A clip shorter than a window is
  repeated whole as often as needed and cut to the window (msclap's ``load_audio_into_tensor``);
  a longer one is cut by melodex's fixed window rule (msclap takes one random crop), the
  windows' L2-normalised embeddings averaged and normalised again;
- text: GPT-2 gets ``text + ' <|endoftext|>'``, pad token ``'!'`` (id 0 in GPT-2's vocabulary),
  and the embedding is the hidden state at ``count(ids != 0) - 1`` (msclap's rule, which also
  counts any ``'!'`` in the text); BERT gets the text as it is, [CLS] output. msclap pads to
  77 / 100 tokens without truncating (a longer text fails there when batched); melodex pads
  per batch (GPT-2 is causal and BERT masks padding, so the length is irrelevant) and
  truncates only at the tower's position limit.

Tokenizer files are not in the checkpoint: put the ``gpt2`` (2023) or ``bert-base-uncased``
(2022) tokenizer files in a folder of that name beside the checkpoint, or let transformers'
cache provide them when online. ``tests/test_ms_clap_parity.py`` checks both releases' ports
against the package's own inference, recorded in a side environment.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812

from melodex.errors import ModelLoadError
from melodex.models.base import WindowedJointModel, WindowOutputs, l2_normalize
from melodex.models.config import ModelConfig
from melodex.models.laion_clap import (
    LogMel,
    convert_state_dict,
    count_indices,
    infer_audio_config,
)

FAMILY = "ms-clap"
HUB_REPO = "microsoft/msclap"
RELEASES = {"2022": "CLAP_weights_2022.pth", "2023": "CLAP_weights_2023.pth"}
SAMPLE_RATE = 44100
WINDOW_BATCH = 8
#: Per release: window seconds, text tower, tokenizer, mel front end of the audio tower.
SETTINGS: dict[str, dict[str, Any]] = {
    "2023": {"seconds": 7.0, "text": "gpt2", "mel_rate": 32000, "fmax": 14000.0},
    "2022": {"seconds": 5.0, "text": "bert-base-uncased", "mel_rate": 44100, "fmax": 14000.0},
}
HTSAT = "audio_encoder.base.htsat."
CNN = "audio_encoder.base."
TEXT = "caption_encoder.base."
#: GPT-2's causal-mask buffers that older transformers saved; the model rebuilds them.
TEXT_BUFFERS = re.compile(r"\.attn\.(bias|masked_bias)$|position_ids$")


class Projection(nn.Module):
    """msclap's ``Projection``: ``LayerNorm(l1(x) + l2(gelu(l1(x))))`` (dropout off)."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.linear1 = nn.Linear(d_in, d_out, bias=False)
        self.linear2 = nn.Linear(d_out, d_out, bias=False)
        self.layer_norm = nn.LayerNorm(d_out)

    def forward(self, x: Tensor) -> Tensor:
        embed1 = self.linear1(x)
        return self.layer_norm(embed1 + self.linear2(F.gelu(embed1)))


class ConvBlock(nn.Module):
    """PANNs' two 3x3 conv + BN + ReLU layers, then 2-D average pooling."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.bn2 = nn.BatchNorm2d(c_out)

    def forward(self, x: Tensor, pool: tuple[int, int]) -> Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, kernel_size=pool)


class Cnn14(nn.Module):
    """PANNs' Cnn14 as msclap 2022 uses it: log-mel -> 6 conv blocks -> max+mean over time ->
    ``relu(fc1)``, the 2048-d embedding (the AudioSet head is unused)."""

    def __init__(self, out_emb: int, mel_bins: int = 64) -> None:
        super().__init__()
        self.bn0 = nn.BatchNorm2d(mel_bins)
        widths = [1, 64, 128, 256, 512, 1024, 2048]
        for i in range(6):
            self.add_module(f"conv_block{i + 1}", ConvBlock(widths[i], widths[i + 1]))
        self.fc1 = nn.Linear(2048, out_emb)

    def forward(self, logmel: Tensor) -> Tensor:
        x = self.bn0(logmel.transpose(1, 3)).transpose(1, 3)
        for i in range(6):
            x = getattr(self, f"conv_block{i + 1}")(x, (2, 2) if i < 5 else (1, 1))
        x = torch.mean(x, dim=3)
        x = torch.max(x, dim=2)[0] + torch.mean(x, dim=2)
        return F.relu(self.fc1(x))


class MsClapNet(nn.Module):
    """The inference half of msclap's ``CLAP``: one audio tower, one text tower, projections."""

    def __init__(self, audio: nn.Module, audio_proj: Projection, text: nn.Module,
                 text_proj: Projection) -> None:  # fmt: skip
        super().__init__()
        self.audio = audio
        self.audio_projection = audio_proj
        self.text = text
        self.text_projection = text_proj


def read_checkpoint(path: Path) -> dict[str, Tensor]:
    """The release's tensors: ``{'model': {...}}`` (or a bare dict), ``module.`` stripped."""
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, ...
        raise ModelLoadError(f"{path}: not a tensor-only checkpoint ({exc})") from exc
    state = data.get("model", data) if isinstance(data, dict) else None
    if not isinstance(state, dict) or not state:
        raise ModelLoadError(f"{path}: no 'model' state_dict of tensors in the checkpoint")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _strict_load(module: nn.Module, state: dict[str, Tensor], path: Path, part: str) -> None:
    missing, unexpected = module.load_state_dict(state, strict=False)
    missing = [k for k in missing if not TEXT_BUFFERS.search(k) and "relative_position" not in k]
    if missing or unexpected:
        raise ModelLoadError(
            f"{path}: its {part} is not the msclap network melodex knows: missing "
            f"{missing[:5]}, unexpected {unexpected[:5]}"
        )


def _sub(state: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def _projection(state: dict[str, Tensor], prefix: str, path: Path) -> Projection:
    weight = state.get(f"{prefix}linear1.weight")
    if weight is None:
        raise ModelLoadError(f"{path}: no {prefix}linear1.weight: not an msclap checkpoint")
    proj = Projection(int(weight.shape[1]), int(weight.shape[0]))
    _strict_load(proj, _sub(state, prefix), path, prefix.rstrip("."))
    return proj


def build_audio(state: dict[str, Tensor], path: Path) -> tuple[nn.Module, str, Any]:
    """The audio tower, its release ("2023" HTSAT or "2022" Cnn14) and the checkpoint's mel bank."""
    from transformers import ClapAudioModel

    if any(k.startswith(HTSAT) for k in state):
        bank = state.get(f"{HTSAT}logmel_extractor.melW")
        laion = {"audio_branch." + k: v for k, v in _sub(state, HTSAT).items()}
        converted = _sub(convert_state_dict(laion), "audio_model.")
        audio = ClapAudioModel(infer_audio_config(converted, enc="audio_encoder."))
        _strict_load(audio, converted, path, "HTSAT audio tower")
        return audio, "2023", bank
    if f"{CNN}conv_block1.conv1.weight" in state:
        cnn = _sub(state, CNN)
        bank = cnn.get("logmel_extractor.melW")
        keep = {
            k: v
            for k, v in cnn.items()
            if not k.startswith(("spectrogram_extractor.", "logmel_extractor.", "fc_audioset."))
        }
        audio = Cnn14(int(cnn["fc1.weight"].shape[0]))
        _strict_load(audio, keep, path, "Cnn14 audio tower")
        return audio, "2022", bank
    raise ModelLoadError(f"{path}: no HTSAT or Cnn14 audio tower: not an msclap CLAP checkpoint")


def build_text(state: dict[str, Tensor], path: Path) -> tuple[nn.Module, str]:
    """The text tower (GPT-2 or BERT, sized from the tensors) and which one it is."""
    from transformers import BertConfig, BertModel, GPT2Config, GPT2Model

    text = {k: v for k, v in _sub(state, TEXT).items() if not TEXT_BUFFERS.search(k)}
    if "wte.weight" in text:
        hidden = int(text["wte.weight"].shape[1])
        config = GPT2Config(
            vocab_size=int(text["wte.weight"].shape[0]),
            n_positions=int(text["wpe.weight"].shape[0]),
            n_embd=hidden,
            n_layer=count_indices(text, r"h\.(\d+)\."),
            n_head=max(1, hidden // 64),  # GPT-2's rule: 64 per head
            n_inner=int(text["h.0.mlp.c_fc.weight"].shape[1]),  # Conv1D: (in, out)
            bos_token_id=int(text["wte.weight"].shape[0]) - 1,  # <|endoftext|>, GPT-2's last id
            eos_token_id=int(text["wte.weight"].shape[0]) - 1,
        )
        model: nn.Module = GPT2Model(config)
        kind = "gpt2"
    elif "embeddings.word_embeddings.weight" in text:
        words = text["embeddings.word_embeddings.weight"]
        config = BertConfig(
            vocab_size=int(words.shape[0]),
            hidden_size=int(words.shape[1]),
            num_hidden_layers=count_indices(text, r"encoder\.layer\.(\d+)\."),
            num_attention_heads=max(1, int(words.shape[1]) // 64),
            intermediate_size=int(text["encoder.layer.0.intermediate.dense.weight"].shape[0]),
            max_position_embeddings=int(text["embeddings.position_embeddings.weight"].shape[0]),
            type_vocab_size=int(text["embeddings.token_type_embeddings.weight"].shape[0]),
        )
        model = BertModel(config, add_pooling_layer="pooler.dense.weight" in text)
        kind = "bert"
    else:
        raise ModelLoadError(f"{path}: no GPT-2 or BERT text tower: not an msclap CLAP checkpoint")
    _strict_load(model, text, path, f"{kind} text tower")
    return model.eval(), kind


class MsClap(WindowedJointModel):
    """An msclap release as a melodex joint model (see the module docstring)."""

    architecture = FAMILY

    def __init__(self, net: MsClapNet, tokenizer: Any, *, release: str, text_kind: str,
                 mel: LogMel, name: str, licence: str | None) -> None:  # fmt: skip
        settings = SETTINGS[release]
        self.text_kind = text_kind
        positions = (
            net.text.config.n_positions
            if text_kind == "gpt2"
            else net.text.config.max_position_embeddings
        )
        self.text_max_length = int(positions)
        config = ModelConfig(
            name=name,
            architecture=self.architecture,
            sample_rate=SAMPLE_RATE,
            window_seconds=float(settings["seconds"]),
            max_windows=8,
            text_encoder=f"ms-clap-{text_kind}",
            dim=int(net.audio_projection.linear2.weight.shape[0]),
            options={"release": release, "text_max_length": self.text_max_length},
            licence=licence,
        )
        super().__init__(config, {})
        self.net = net.eval()
        self.tokenizer = tokenizer
        self.mel = mel

    @cached_property
    def identity(self) -> str:
        """Name plus a hash of the config, the mel bank and every tensor of the network."""
        h = hashlib.blake2b(digest_size=8)
        h.update(self.config.vector_json().encode())
        h.update(self.mel.mel.numpy().tobytes())
        for key, tensor in sorted(self.net.state_dict().items()):
            h.update(key.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return f"{self.config.name}@{h.hexdigest()}"

    def save(self, folder: str | Path) -> Path:
        raise ModelLoadError(
            f"{self.config.name}: an msclap model is not saved as a melodex folder; "
            "load it again with ms-clap:<checkpoint>"
        )

    # -- audio ----------------------------------------------------------------------------
    def select(self, y: np.ndarray, max_windows: int | None | str) -> tuple[np.ndarray, np.ndarray]:
        y = np.asarray(y, np.float32)
        if 0 < len(y) < self.window_samples:  # msclap repeats a short clip whole, then cuts
            tiled = np.tile(y, int(np.ceil(self.window_samples / len(y))))
            return tiled[None, : self.window_samples], np.zeros(1, np.int64)
        return super().select(y, max_windows)

    @torch.inference_mode()
    def project_windows(self, windows: np.ndarray) -> np.ndarray:
        """(W, samples) -> msclap's audio embeddings (projected, not normalised), (W, 1024)."""
        out = np.zeros((len(windows), self.dim), np.float32)
        for start in range(0, len(windows), WINDOW_BATCH):
            logmel = self.mel(windows[start : start + WINDOW_BATCH])
            if isinstance(self.net.audio, Cnn14):
                features = self.net.audio(logmel)
            else:
                is_longer = torch.zeros((len(logmel), 1), dtype=torch.bool)
                features = self.net.audio(input_features=logmel, is_longer=is_longer).pooler_output
            out[start : start + len(features)] = self.net.audio_projection(features).numpy()
        return out

    def window_outputs(self, windows: np.ndarray) -> WindowOutputs:
        return WindowOutputs(raw=l2_normalize(self.project_windows(windows)))

    # -- text -----------------------------------------------------------------------------
    @torch.inference_mode()
    def encode_text(
        self, texts: Sequence[str] | str, *, batch_size: int = 64, normalize: bool = True
    ) -> np.ndarray:
        single = isinstance(texts, str)
        items = [texts] if single else list(texts)
        out = np.zeros((len(items), self.dim), np.float32)
        for start in range(0, len(items), int(batch_size)):
            chunk = items[start : start + int(batch_size)]
            if self.text_kind == "gpt2":
                chunk = [t + " <|endoftext|>" for t in chunk]
            inputs = self.tokenizer(
                chunk,
                padding=True,
                truncation=True,
                max_length=self.text_max_length,
                return_tensors="pt",
            )
            hidden = self.net.text(**inputs)[0]
            if self.text_kind == "gpt2":
                last = torch.ne(inputs["input_ids"], 0).sum(-1) - 1  # msclap's rule, kept
                pooled = hidden[torch.arange(len(hidden)), last]
            else:
                pooled = hidden[:, 0, :]
            vectors = self.net.text_projection(pooled).numpy()
            out[start : start + len(vectors)] = l2_normalize(vectors) if normalize else vectors
        return out[0] if single else out


def _tokenizer(checkpoint: Path, text_kind: str, argument: str) -> Any:
    from transformers import BertTokenizerFast, GPT2TokenizerFast

    from melodex.models.registry import missing_weights

    name = "gpt2" if text_kind == "gpt2" else "bert-base-uncased"
    kind = GPT2TokenizerFast if text_kind == "gpt2" else BertTokenizerFast
    beside = checkpoint.parent / name
    try:
        tokenizer = kind.from_pretrained(str(beside) if beside.is_dir() else name)
    except (OSError, ValueError) as exc:
        raise missing_weights(
            FAMILY, argument, f"no {name} tokenizer in {beside} ({str(exc).splitlines()[0]})"
        ) from exc
    if text_kind == "gpt2":
        tokenizer.add_special_tokens({"pad_token": "!"})
        tokenizer.padding_side = "right"
    return tokenizer


def _checkpoint(argument: str) -> Path:
    """A file path, or a release name fetched through the hub's cache when online."""
    from melodex.models.registry import missing_weights

    if argument in RELEASES:
        try:
            from huggingface_hub import hf_hub_download

            return Path(hf_hub_download(HUB_REPO, RELEASES[argument]))
        except Exception as exc:  # offline, no hub client, not found: all the same to a user
            reason = f"{RELEASES[argument]} is not in the hub cache ({type(exc).__name__})"
            raise missing_weights(FAMILY, argument, reason) from exc
    path = Path(argument).expanduser()
    if not path.is_file():
        raise missing_weights(FAMILY, argument, "no such file")
    return path


def load(argument: str) -> MsClap:
    """``ms-clap:<2022|2023|checkpoint.pth>`` -> the model."""
    from melodex.models.registry import FAMILIES

    path = _checkpoint(argument)
    state = read_checkpoint(path)
    audio, release, bank = build_audio(state, path)
    text, text_kind = build_text(state, path)
    net = MsClapNet(
        audio,
        _projection(state, "audio_encoder.projection.", path),
        text,
        _projection(state, "caption_encoder.projection.", path),
    )
    settings = SETTINGS[release]
    mel = LogMel(
        settings["mel_rate"],
        hop=320,
        fmin=50.0,
        fmax=settings["fmax"],
        mel_bank=None if bank is None else bank.float().numpy(),
    )
    name = f"{FAMILY}:{argument if argument in RELEASES else path.name}"
    return MsClap(
        net,
        _tokenizer(path, text_kind, argument),
        release=release,
        text_kind=text_kind,
        mel=mel,
        name=name,
        licence=FAMILIES[FAMILY].licence,
    )
