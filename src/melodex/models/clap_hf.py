"""CLAP through transformers (``ClapModel`` + ``ClapProcessor``): the ``clap-hf:`` family.

``clap-hf:<folder>`` loads a saved transformers CLAP folder offline; ``clap-hf:<hub id>``
(e.g. ``laion/larger_clap_music``) goes through transformers' normal download and cache when the
machine is online. The :mod:`~melodex.models.laion_clap` adapter reuses this model class on
original LAION checkpoints converted in memory.

Preprocessing is the processor's own, with one rule made deterministic for whole tracks:

- audio at 48 kHz (the feature extractor's rate), cut into fixed 10 s windows (hop 10 s); a
  tail of at least 5 s becomes one more zero-padded window, a shorter one is dropped; a track
  shorter than 10 s is repeat-padded as the processor's ``repeatpad`` does;
- each window goes through the feature extractor with the truncation its config names
  (``fusion`` or ``rand_trunc``); every window is exactly 10 s, so nothing is cropped at
  random, and ``is_longer`` is False for every window (the processor would set it True for a
  random clip of a batch when none is longer; LAION-CLAP's own inference leaves it False);
- window vectors are the model's L2-normalised audio embeddings; the track vector is their
  mean, L2-normalised again;
- text: the tokenizer with truncation to its ``model_max_length`` (at most the text tower's
  positions), padded per batch (the attention mask makes padding irrelevant).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from melodex.errors import ModelLoadError
from melodex.models.base import WindowedJointModel, WindowOutputs
from melodex.models.config import ModelConfig

ARCHITECTURE = "clap-hf"
WINDOW_SECONDS = 10.0
WINDOW_BATCH = 8  # windows per forward pass of the audio tower


def repeat_pad(y: np.ndarray, length: int) -> np.ndarray:
    """The processor's ``repeatpad``: tile a short signal whole, then zero-pad to ``length``."""
    y = np.asarray(y, np.float32)
    if len(y) >= length or len(y) == 0:
        return y[:length]
    tiled = np.tile(y, length // len(y))
    return np.pad(tiled, (0, length - len(tiled)))


class ClapHF(WindowedJointModel):
    """A transformers ClapModel and its processor as a melodex joint model."""

    architecture = ARCHITECTURE

    def __init__(self, model: Any, processor: Any, *, name: str, licence: str | None) -> None:
        extractor = processor.feature_extractor
        text_positions = int(model.config.text_config.max_position_embeddings) - 2
        self.text_max_length = int(min(processor.tokenizer.model_max_length, text_positions))
        self.truncation = str(extractor.truncation)
        config = ModelConfig(
            name=name,
            architecture=self.architecture,
            sample_rate=int(extractor.sampling_rate),
            window_seconds=float(extractor.max_length_s),
            max_windows=8,
            text_encoder="clap-roberta",
            dim=int(model.config.projection_dim),
            options={
                "truncation": self.truncation,
                "fusion": bool(model.config.audio_config.enable_fusion),
                "text_max_length": self.text_max_length,
            },
            licence=licence,
        )
        super().__init__(config, {})
        self.model = model.eval()
        self.processor = processor

    @cached_property
    def identity(self) -> str:
        """Name plus a hash of the config and every tensor of the network."""
        h = hashlib.blake2b(digest_size=8)
        h.update(self.config.vector_json().encode())
        for key, tensor in sorted(self.model.state_dict().items()):
            h.update(key.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return f"{self.config.name}@{h.hexdigest()}"

    def save(self, folder: str | Path) -> Path:
        """Save as a transformers folder; load it again with ``clap-hf:<folder>``."""
        out = Path(folder)
        self.model.save_pretrained(str(out))
        self.processor.save_pretrained(str(out))
        return out

    # -- audio ----------------------------------------------------------------------------
    def select(self, y: np.ndarray, max_windows: int | None | str) -> tuple[np.ndarray, np.ndarray]:
        y = np.asarray(y, np.float32)
        if 0 < len(y) < self.window_samples:  # CLAP repeat-pads a short clip
            return repeat_pad(y, self.window_samples)[None, :], np.zeros(1, np.int64)
        return super().select(y, max_windows)

    def audio_inputs(self, windows: np.ndarray) -> dict[str, torch.Tensor]:
        """(W, 480000) windows -> the processor's features, ``is_longer`` False for all."""
        feats = self.processor.feature_extractor(
            list(np.asarray(windows, np.float32)),
            sampling_rate=self.sample_rate,
            return_tensors="pt",
        )
        return {
            "input_features": feats["input_features"].to(torch.float32),
            "is_longer": torch.zeros((len(windows), 1), dtype=torch.bool),
        }

    @torch.inference_mode()
    def window_outputs(self, windows: np.ndarray) -> WindowOutputs:
        out = np.zeros((len(windows), self.dim), np.float32)
        for start in range(0, len(windows), WINDOW_BATCH):
            inputs = self.audio_inputs(windows[start : start + WINDOW_BATCH])
            # what get_audio_features does (its return type changed in transformers 5)
            pooled = self.model.audio_model(**inputs).pooler_output
            emb = torch.nn.functional.normalize(self.model.audio_projection(pooled), dim=-1)
            out[start : start + len(emb)] = emb.numpy()
        return WindowOutputs(raw=out)

    # -- text -----------------------------------------------------------------------------
    def text_inputs(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return dict(
            self.processor.tokenizer(
                texts,
                padding=True,
                truncation=True,
                max_length=self.text_max_length,
                return_tensors="pt",
            )
        )

    @torch.inference_mode()
    def encode_text(
        self, texts: Sequence[str] | str, *, batch_size: int = 64, normalize: bool = True
    ) -> np.ndarray:
        single = isinstance(texts, str)
        items = [texts] if single else list(texts)
        out = np.zeros((len(items), self.dim), np.float32)
        for start in range(0, len(items), int(batch_size)):
            inputs = self.text_inputs(items[start : start + int(batch_size)])
            pooled = self.model.text_model(**inputs).pooler_output
            vectors = self.model.text_projection(pooled)
            if normalize:
                vectors = torch.nn.functional.normalize(vectors, dim=-1)
            out[start : start + len(vectors)] = vectors.numpy()
        return out[0] if single else out


def load(argument: str) -> ClapHF:
    """``clap-hf:<folder or hub id>`` -> the model (transformers' cache for hub ids)."""
    from melodex.models.registry import missing_weights

    try:
        from transformers import ClapModel, ClapProcessor
    except ImportError as exc:  # pragma: no cover - transformers is a dependency
        raise ModelLoadError(f"clap-hf needs transformers ({exc})") from exc
    path = Path(argument).expanduser()
    local = path.is_dir()
    if not local and (argument.startswith((".", "/", "~")) or path.suffix):
        raise missing_weights("clap-hf", argument, "no such folder")
    where = str(path) if local else argument
    try:
        model = ClapModel.from_pretrained(where)
        processor = ClapProcessor.from_pretrained(where)
    except (OSError, ValueError) as exc:
        reason = f"transformers could not load it ({str(exc).splitlines()[0]})"
        raise missing_weights("clap-hf", argument, reason) from exc
    name = f"clap-hf:{path.name if local else argument}"
    return ClapHF(model, processor, name=name, licence=_licence(path if local else None))


def _licence(folder: Path | None) -> str:
    """The licence a folder's model card states, else the family's."""
    from melodex.models.registry import FAMILIES

    if folder is not None and (folder / "README.md").is_file():
        for line in (folder / "README.md").read_text(errors="replace").splitlines()[:40]:
            if line.lower().startswith("license:"):
                return line.split(":", 1)[1].strip()
    return FAMILIES["clap-hf"].licence
