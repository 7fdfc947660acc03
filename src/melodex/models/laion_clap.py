"""Original LAION-CLAP checkpoints (``laion-clap:<file.pt>``), e.g.
``music_audioset_epoch_15_esc_90.14.pt``: HTSAT audio tower + RoBERTa text tower.

The ``laion-clap`` package cannot be installed beside melodex's pins (it pins numpy 1.x and
pulls wandb, webdataset and torchvision), so melodex does not run its code. Its network is the
one transformers ports as ``ClapModel`` (HTSAT with optional ``aff_2d`` fusion, RoBERTa, two
two-layer projections), so this adapter:

- reads the checkpoint with ``torch.load(weights_only=True)`` (tensors only, never code);
- renames the release's keys (``module.`` prefix, ``audio_branch``/``text_branch``, fused
  ``qkv``) to ``ClapModel``'s, infers the config from the tensors' shapes (HTSAT-tiny or -base,
  fusion when the fusion layers are present, RoBERTa size) and loads it strictly;
- preprocesses as the package's ``CLAP_Module.get_audio_embedding_from_data`` does: 48 kHz,
  the waveform rounded to 16-bit levels (``float32_to_int16`` then back), 10 s windows
  (repeat-padded when shorter), log-mel 64 bins 50-14000 Hz, ``is_longer`` False; text through
  the roberta-base tokenizer truncated to 77 tokens (the package pads to 77; RoBERTa's
  attention mask makes that padding irrelevant).
- fusion checkpoints: the package's fusion mel instead (torchaudio's ``MelSpectrogram``: a
  ``torch.stft`` power spectrum, an HTK mel bank without norm, ``AmplitudeToDB``), computed
  here in torch by :class:`FusionMel`; each 10 s window is four copies of its mel with
  ``is_longer`` False, which is what the package computes for a clip of at most 10 s (in eval
  it fuses only clips marked longer). The package embeds a clip longer than 10 s as one
  vector from the shrunk whole mel plus three 10 s crops whose starts it draws at random, one
  per third of the possible starts; melodex's tracks stay windowed (deterministic), and
  :meth:`LaionClap.embed_fused_clip` gives the package's long-clip vector with the three
  starts fixed (given, or by default the middle of each third).

The tokenizer is not in the checkpoint: put the roberta-base tokenizer files in a folder
``roberta-base/`` beside the checkpoint (or in transformers' cache when online).
``tests/test_laion_clap_parity.py`` checks this against the package's own inference, recorded
as a fixture from a side environment.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from melodex.errors import MelodexError, ModelLoadError
from melodex.models.clap_hf import ClapHF, repeat_pad

#: Keys the release holds that inference never uses (training heads, STFT/mel constants).
UNUSED = re.compile(
    r"^(text_transform|audio_transform)\.|^audio_branch\.(spectrogram_extractor|"
    r"logmel_extractor|tscam_conv|head)\.|position_ids$|relative_position_index$|\.attn_mask$"
)

RENAMES = [
    (r"^text_branch\.", "text_model."),
    (r"^(text|audio)_projection\.0\.", r"\1_projection.linear1."),
    (r"^(text|audio)_projection\.2\.", r"\1_projection.linear2."),
    (r"^audio_branch\.bn0\.", "audio_model.audio_encoder.batch_norm."),
    (r"^audio_branch\.", "audio_model.audio_encoder."),
    (r"\.blocks\.(\d+)\.norm1\.", r".blocks.\1.layernorm_before."),
    (r"\.blocks\.(\d+)\.norm2\.", r".blocks.\1.layernorm_after."),
    (r"\.attn\.relative_position_bias_table$", ".attention.self.relative_position_bias_table"),
    (r"\.attn\.proj\.", ".attention.output.dense."),
    (r"\.mlp\.fc1\.", ".intermediate.dense."),
    (r"\.mlp\.fc2\.", ".output.dense."),
]


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The release's tensors: ``{'state_dict': {...}}`` or a bare dict, ``module.`` stripped."""
    import torch

    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, ...
        raise ModelLoadError(f"{path}: not a tensor-only checkpoint ({exc})") from exc
    state = data.get("state_dict", data) if isinstance(data, dict) else None
    if not isinstance(state, dict) or not state:
        raise ModelLoadError(f"{path}: no state_dict of tensors in the checkpoint")
    return {k.removeprefix("module."): v for k, v in state.items()}


def convert_state_dict(state: dict[str, Any]) -> dict[str, Any]:
    """LAION-CLAP keys -> transformers ClapModel keys (qkv split into query, key, value)."""
    out: dict[str, Any] = {}
    for key, value in state.items():
        if UNUSED.search(key):
            continue
        new = key
        for pattern, repl in RENAMES:
            new = re.sub(pattern, repl, new)
        if ".attn.qkv." in new:
            base, _, kind = new.partition(".attn.qkv.")
            for part, chunk in zip(("query", "key", "value"), value.chunk(3, dim=0), strict=True):
                out[f"{base}.attention.self.{part}.{kind}"] = chunk.clone()
            continue
        out[new] = value
    return out


def count_indices(state: dict[str, Any], pattern: str) -> int:
    """How many distinct values the one group of ``pattern`` takes over the keys."""
    return len({m.group(1) for k in state if (m := re.match(pattern, k))})


def infer_audio_config(state: dict[str, Any], enc: str = "audio_model.audio_encoder.") -> Any:
    """A ClapAudioConfig matching the converted HTSAT tensors under ``enc`` (also used by
    :mod:`~melodex.models.ms_clap`, whose HTSAT is the same network)."""
    from transformers import ClapAudioConfig

    n_layers = count_indices(state, re.escape(enc) + r"layers\.(\d+)\.")
    depths = [
        count_indices(state, re.escape(f"{enc}layers.{i}.") + r"blocks\.(\d+)\.")
        for i in range(n_layers)
    ]
    heads = [
        int(state[f"{enc}layers.{i}.blocks.0.attention.self.relative_position_bias_table"].shape[1])
        for i in range(n_layers)
    ]
    fusion = any(".fusion_model." in k for k in state)
    return ClapAudioConfig(
        patch_embeds_hidden_size=int(state[f"{enc}patch_embed.proj.weight"].shape[0]),
        hidden_size=int(state[f"{enc}norm.weight"].shape[0]),
        depths=depths,
        num_attention_heads=heads,
        num_hidden_layers=n_layers,
        enable_fusion=fusion,
        fusion_type="aff_2d" if fusion else None,
    )


def infer_config(state: dict[str, Any]) -> Any:
    """A ClapConfig matching the converted tensors' shapes."""
    from transformers import ClapConfig, ClapTextConfig

    def count(pattern: str) -> int:
        return count_indices(state, pattern)

    audio = infer_audio_config(state)
    words = state["text_model.embeddings.word_embeddings.weight"]
    hidden = int(words.shape[1])
    text = ClapTextConfig(
        vocab_size=int(words.shape[0]),
        hidden_size=hidden,
        num_hidden_layers=count(r"text_model\.encoder\.layer\.(\d+)\."),
        num_attention_heads=max(1, hidden // 64),  # RoBERTa's rule: 64 per head
        intermediate_size=int(
            state["text_model.encoder.layer.0.intermediate.dense.weight"].shape[0]
        ),
        max_position_embeddings=int(
            state["text_model.embeddings.position_embeddings.weight"].shape[0]
        ),
        type_vocab_size=int(state["text_model.embeddings.token_type_embeddings.weight"].shape[0]),
    )
    dim = int(state["audio_projection.linear2.weight"].shape[0])
    return ClapConfig(text_config=text.to_dict(), audio_config=audio.to_dict(), projection_dim=dim)


N_FFT = 1024
HOP = 480
N_MELS = 64


class LogMel:
    """The unfused HTSAT front end as the package computes it (torchlibrosa): a float32
    convolution with the Hann-windowed DFT basis (reflect padding), power, a Slaney mel bank
    (50-14000 Hz) and ``10 log10(max(x, 1e-10))``. transformers' float64 numpy front end
    differs from it by up to 4e-4 dB (measured on the parity test's clip); this one by 4e-6.

    ``hop``, ``fmin``, ``fmax`` and a ready ``mel_bank`` (513, n_mels) serve other releases
    built on torchlibrosa (MS-CLAP keeps its bank in the checkpoint)."""

    def __init__(
        self,
        sample_rate: int,
        *,
        hop: int = HOP,
        fmin: float = 50.0,
        fmax: float = 14000.0,
        mel_bank: Any = None,
    ) -> None:
        import torch
        from transformers.audio_utils import mel_filter_bank

        self.hop = int(hop)

        # periodic Hann, as librosa's get_window("hann", fftbins=True)
        window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)
        k = np.arange(N_FFT // 2 + 1)[:, None]
        n = np.arange(N_FFT)[None, :]
        dft = np.exp(-2j * np.pi * k * n / N_FFT) * window[None, :]
        self.real = torch.from_numpy(np.real(dft)[:, None, :].astype(np.float32))
        self.imag = torch.from_numpy(np.imag(dft)[:, None, :].astype(np.float32))
        if mel_bank is None:
            mel_bank = mel_filter_bank(
                num_frequency_bins=N_FFT // 2 + 1,
                num_mel_filters=N_MELS,
                min_frequency=float(fmin),
                max_frequency=float(fmax),
                sampling_rate=sample_rate,
                norm="slaney",
                mel_scale="slaney",
            )
        self.mel = torch.from_numpy(np.asarray(mel_bank, np.float32))  # (513, 64)

    def __call__(self, windows: np.ndarray) -> Any:
        """(W, samples) float32 -> (W, 1, frames, 64) log-mel features."""
        import torch
        import torch.nn.functional as F

        x = torch.from_numpy(np.ascontiguousarray(windows, np.float32))[:, None, :]
        x = F.pad(x, (N_FFT // 2, N_FFT // 2), mode="reflect")
        real = F.conv1d(x, self.real, stride=self.hop)
        imag = F.conv1d(x, self.imag, stride=self.hop)
        power = (real**2 + imag**2).transpose(1, 2)  # (W, frames, 513)
        mel = torch.matmul(power, self.mel)
        return (10.0 * torch.log10(torch.clamp(mel, min=1e-10)))[:, None]


def htk_mel_bank(sample_rate: int, fmin: float = 50.0, fmax: float = 14000.0) -> Any:
    """torchaudio's ``melscale_fbanks(norm=None, mel_scale='htk')``, float32, (513, 64)."""
    from melodex.models.mel_banks import htk_mel_filters

    return htk_mel_filters(sr=sample_rate, n_fft=N_FFT, n_mels=N_MELS, fmin=fmin, fmax=fmax)


class FusionMel:
    """The fusion front end as the package computes it (``get_mel``: torchaudio's
    ``MelSpectrogram`` + ``AmplitudeToDB``): (samples,) -> (frames, 64) log-mel, in torch."""

    def __init__(self, sample_rate: int) -> None:
        import torch

        self.window = torch.hann_window(N_FFT)
        self.bank = htk_mel_bank(sample_rate)

    def __call__(self, y: np.ndarray) -> Any:
        import torch

        x = torch.from_numpy(np.ascontiguousarray(y, np.float32))
        spec = torch.stft(
            x,
            N_FFT,
            hop_length=HOP,
            win_length=N_FFT,
            window=self.window,
            center=True,
            pad_mode="reflect",
            normalized=False,
            onesided=True,
            return_complex=True,
        )
        power = spec.abs().pow(2.0)  # (513, frames)
        mel = torch.matmul(power.transpose(-1, -2), self.bank)  # (frames, 64)
        return 10.0 * torch.log10(torch.clamp(mel, min=1e-10))


def quantise(y: np.ndarray) -> np.ndarray:
    """The package's ``int16_to_float32(float32_to_int16(y))``."""
    levels = (np.clip(y, -1.0, 1.0) * 32767.0).astype(np.int16)
    return (levels / 32767.0).astype(np.float32)


class LaionClap(ClapHF):
    """ClapHF with the package's preprocessing: 16-bit rounding and its own log-mel."""

    architecture = "laion-clap"

    def audio_inputs(self, windows: np.ndarray) -> dict[str, Any]:
        import torch

        rounded = quantise(windows)
        if self.config.options["fusion"]:  # four copies of each window's mel, none longer
            mels = [self.fusion_mel(w) for w in rounded]
            return {
                "input_features": torch.stack([torch.stack([m] * 4) for m in mels]),
                "is_longer": torch.zeros((len(windows), 1), dtype=torch.bool),
            }
        if not hasattr(self, "_log_mel"):
            self._log_mel = LogMel(self.sample_rate)
        return {
            "input_features": self._log_mel(rounded),
            "is_longer": torch.zeros((len(windows), 1), dtype=torch.bool),
        }

    def fusion_mel(self, y: np.ndarray) -> Any:
        if not hasattr(self, "_fusion_mel"):
            self._fusion_mel = FusionMel(self.sample_rate)
        return self._fusion_mel(y)

    def fused_clip_inputs(
        self, y: np.ndarray, starts: tuple[int, int, int] | None = None
    ) -> dict[str, Any]:
        """The package's fusion input for one whole clip (``get_audio_features``): a clip of at
        most 10 s is repeat-padded (four copies, not longer); a longer one gives the whole mel
        shrunk to 10 s (torchvision's ``Resize``: bilinear, antialiased) and three 10 s crops
        starting at ``starts`` (mel frames), by default the middle of each third of the
        possible starts, where the package draws them at random."""
        import torch

        if not self.config.options["fusion"]:
            raise MelodexError(f"{self.source}: not a fusion checkpoint (no fused long-clip input)")
        y = quantise(np.asarray(y, np.float32))
        if len(y) <= self.window_samples:
            mel = self.fusion_mel(repeat_pad(y, self.window_samples))
            return {
                "input_features": torch.stack([mel] * 4)[None],
                "is_longer": torch.tensor([[False]]),
            }
        mel = self.fusion_mel(y)
        chunk = self.window_samples // HOP + 1
        total = int(mel.shape[0])
        if total == chunk:
            return {
                "input_features": torch.stack([mel] * 4)[None],
                "is_longer": torch.tensor([[False]]),
            }
        thirds = [
            r if len(r) else np.zeros(1, np.int64)
            for r in np.array_split(np.arange(total - chunk + 1), 3)
        ]
        if starts is None:
            starts = tuple(int(r[len(r) // 2]) for r in thirds)  # type: ignore[assignment]
        for start, third in zip(starts, thirds, strict=True):
            if int(start) not in third:
                raise MelodexError(
                    f"{self.source}: crop start {start} is outside {third[0]}..{third[-1]}"
                )
        shrunk = torch.nn.functional.interpolate(
            mel[None, None],
            size=(chunk, N_MELS),
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )[0, 0]
        crops = [mel[int(s) : int(s) + chunk] for s in starts]
        return {
            "input_features": torch.stack([shrunk, *crops])[None],
            "is_longer": torch.tensor([[True]]),
        }

    def embed_fused_clip(
        self, y: np.ndarray, starts: tuple[int, int, int] | None = None
    ) -> np.ndarray:
        """One clip as the package's fusion ``get_audio_embedding_from_data`` embeds it, with
        the long-clip crops fixed (see :meth:`fused_clip_inputs`): an L2-normalised vector."""
        import torch

        with torch.inference_mode():
            pooled = self.model.audio_model(**self.fused_clip_inputs(y, starts)).pooler_output
            emb = torch.nn.functional.normalize(self.model.audio_projection(pooled), dim=-1)
        return emb[0].numpy()


def _tokenizer(checkpoint: Path) -> Any:
    from transformers import RobertaTokenizerFast

    from melodex.models.registry import missing_weights

    beside = checkpoint.parent / "roberta-base"
    try:
        return RobertaTokenizerFast.from_pretrained(
            str(beside) if beside.is_dir() else "roberta-base"
        )
    except (OSError, ValueError) as exc:
        raise missing_weights(
            "laion-clap", str(checkpoint), f"no roberta-base tokenizer in {beside} ({exc})"
        ) from exc


def load(argument: str) -> LaionClap:
    """``laion-clap:<checkpoint.pt>`` -> the model."""
    from transformers import ClapFeatureExtractor, ClapModel, ClapProcessor

    from melodex.models.registry import FAMILIES, missing_weights

    path = Path(argument).expanduser()
    if not path.is_file():
        raise missing_weights("laion-clap", argument, "no such file")
    state = convert_state_dict(read_checkpoint(path))
    config = infer_config(state)
    model = ClapModel(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [
        k
        for k in missing
        if not re.search(r"position_ids$|relative_position_index$|token_type_ids$", k)
    ]
    if missing or unexpected:
        raise ModelLoadError(
            f"{path}: not a LAION-CLAP checkpoint melodex knows: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )
    fusion = bool(config.audio_config.enable_fusion)
    extractor = ClapFeatureExtractor(
        frequency_min=50,
        frequency_max=14000,
        truncation="fusion" if fusion else "rand_trunc",
        padding="repeatpad",
    )
    tokenizer = _tokenizer(path)
    tokenizer.model_max_length = 77
    processor = ClapProcessor(feature_extractor=extractor, tokenizer=tokenizer)
    return LaionClap(
        model, processor, name=f"laion-clap:{path.name}", licence=FAMILIES["laion-clap"].licence
    )
