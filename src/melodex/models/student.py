"""A fast student distilled from any joint model: frozen musicnn features + a small MLP head.

``melodex distill`` (:mod:`melodex.lab.distill`) trains the head so that the student's track
vectors point where the teacher's do, on the user's own audio. The student then:

- embeds audio with the packaged musicnn taggers (16 kHz, 3-s windows; their tag
  probabilities and penultimate features, standardised) and the head, pooled like every
  melodex model (mean of the windows' raw outputs, L2-normalised);
- embeds text with the *teacher's* text tower, so it keeps the teacher's vocabulary: the
  teacher is loaded again from ``options.teacher`` (its source: a built-in name, a folder or a
  ``family:argument`` spec) and must have the identity recorded at distillation.

Its name says whose student it is (``student-of-<teacher>``) and its fingerprint covers the
teacher's identity, so a library never mixes a student's vectors with another model's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from melodex.encoders.musicnn import MUSICNN_SR, WINDOW_SAMPLES, MusicnnTagger
from melodex.errors import ModelLoadError
from melodex.models.base import WindowedJointModel, WindowOutputs
from melodex.models.config import ModelConfig, options_dict, parse_options
from melodex.models.folder import check_weights
from melodex.models.protocol import JointModel

ARCHITECTURE = "distilled-student"
DEFAULT_TAGGERS = ("MTT_musicnn", "MSD_musicnn")


@dataclass(frozen=True)
class StudentOptions:
    """``config.options`` of a student."""

    teacher: str  # how to load the teacher again (its ``source``)
    teacher_identity: str  # the identity its vectors were learnt from
    teacher_licence: str | None = None
    taggers: list[str] = field(default_factory=lambda: list(DEFAULT_TAGGERS))
    feature_dim: int = 0
    hidden: int = 256
    trained_on: str | None = None  # the folder or manifest
    n_tracks: int = 0


class MusicnnFeatures:
    """Per-window features from the packaged taggers: [probabilities, penultimate] per tagger."""

    def __init__(self, taggers: Sequence[str] = DEFAULT_TAGGERS) -> None:
        self.taggers = [MusicnnTagger.from_pretrained(name) for name in taggers]

    @property
    def dim(self) -> int:
        return sum(len(t.tags) + t.embedding_dim for t in self.taggers)

    def windows(self, windows: np.ndarray) -> np.ndarray:
        """(W, WINDOW_SAMPLES) 16 kHz audio -> (W, dim) float32 (one window per call: faster
        on CPU than batches, see :class:`melodex.models.zero_shot.TaggerBank`)."""
        if len(windows) == 0:
            return np.zeros((0, self.dim), np.float32)
        parts = [np.concatenate(t.tag_windows(windows, batch_size=1), axis=1) for t in self.taggers]
        return np.concatenate(parts, axis=1).astype(np.float32, copy=False)


class StudentHead(nn.Module):
    """Standardise the features, then Linear -> GELU -> Linear into the teacher's space."""

    def __init__(self, feature_dim: int, hidden: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("feature_mean", torch.zeros(feature_dim))
        self.register_buffer("feature_std", torch.ones(feature_dim))
        self.net = nn.Sequential(nn.Linear(feature_dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, features: Tensor) -> Tensor:
        return self.net((features - self.feature_mean) / self.feature_std)


def head_shapes(feature_dim: int, hidden: int, dim: int) -> dict[str, tuple[int, ...]]:
    return {
        k: tuple(v.shape) for k, v in StudentHead(feature_dim, hidden, dim).state_dict().items()
    }


class DistilledStudent(WindowedJointModel):
    """musicnn features + a head for audio; the teacher's text tower for text."""

    def __init__(
        self,
        config: ModelConfig,
        weights: dict[str, np.ndarray],
        *,
        source: str | None = None,
        teacher: JointModel | None = None,
        features: MusicnnFeatures | None = None,
    ) -> None:
        super().__init__(config, weights, source=source)
        where = source or config.name
        self.options = parse_options(StudentOptions, config.options, source=where)
        opts = self.options
        check_weights(weights, head_shapes(opts.feature_dim, opts.hidden, config.dim), source=where)
        self.head = StudentHead(opts.feature_dim, opts.hidden, config.dim).eval()
        self.head.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in weights.items()})
        self._teacher = teacher
        self._features = features
        self._tag_vectors: np.ndarray | None = None

    @property
    def window_samples(self) -> int:
        return WINDOW_SAMPLES

    @property
    def features(self) -> MusicnnFeatures:
        if self._features is None:
            self._features = MusicnnFeatures(self.options.taggers)
        if self._features.dim != self.options.feature_dim:
            raise ModelLoadError(
                f"{self.config.name}: the taggers give {self._features.dim} features, the head "
                f"was trained on {self.options.feature_dim}"
            )
        return self._features

    @property
    def teacher(self) -> JointModel:
        """The teacher, loaded on first use (text only needs it) and checked by identity."""
        if self._teacher is None:
            from melodex.models.registry import load_model

            self._teacher = load_model(self.options.teacher)
        if self._teacher.identity != self.options.teacher_identity:
            raise ModelLoadError(
                f"{self.config.name}: its teacher {self.options.teacher!r} now loads as "
                f"{self._teacher.identity}, but the student learnt from "
                f"{self.options.teacher_identity}; distil again"
            )
        return self._teacher

    @property
    def tag_names(self) -> list[str]:
        return list(self.teacher.tag_names)

    def encode_text(
        self, texts: Sequence[str] | str, *, batch_size: int = 64, normalize: bool = True
    ) -> np.ndarray:
        return self.teacher.encode_text(texts, batch_size=batch_size, normalize=normalize)

    def window_features(self, windows: np.ndarray) -> np.ndarray:
        return self.features.windows(windows)

    @torch.inference_mode()
    def head_outputs(self, features: np.ndarray) -> np.ndarray:
        return self.head(torch.from_numpy(np.ascontiguousarray(features, np.float32))).numpy()

    def window_outputs(self, windows: np.ndarray) -> WindowOutputs:
        return WindowOutputs(raw=self.head_outputs(self.window_features(windows)))

    def pooled_tag_scores(self, vector: np.ndarray, window_scores: np.ndarray | None) -> np.ndarray:
        """The teacher's tag texts against the track vector (empty when it has no tags)."""
        tags = self.tag_names
        if not tags:
            return np.zeros(0, np.float32)
        if self._tag_vectors is None:
            self._tag_vectors = self.encode_text(tags)
        return (self._tag_vectors @ vector).astype(np.float32)


def make_student(
    teacher: JointModel,
    head: StudentHead,
    *,
    taggers: Sequence[str],
    hidden: int,
    trained_on: str | None,
    n_tracks: int,
    features: MusicnnFeatures | None = None,
) -> DistilledStudent:
    """A trained head and its teacher -> the student model (save it with ``.save(folder)``)."""
    if not teacher.source:
        raise ModelLoadError(
            "the teacher has no source to load it again from (load it by name, folder or spec)"
        )
    feature_dim = int(head.feature_mean.shape[0])
    opts = StudentOptions(
        teacher=str(teacher.source),
        teacher_identity=teacher.identity,
        teacher_licence=teacher.licence,
        taggers=list(taggers),
        feature_dim=feature_dim,
        hidden=hidden,
        trained_on=trained_on,
        n_tracks=n_tracks,
    )
    config = ModelConfig(
        name=f"student-of-{teacher.config.name}",
        architecture=ARCHITECTURE,
        sample_rate=MUSICNN_SR,
        window_seconds=WINDOW_SAMPLES / MUSICNN_SR,
        max_windows=8,
        text_encoder=f"teacher: {teacher.source}",
        dim=teacher.dim,
        options=options_dict(opts),
        licence=f"student of {teacher.source}; its weights follow the teacher's licence "
        f"({teacher.licence or 'unknown'}) and musicnn's (ISC)",
    )
    weights = {k: v.detach().cpu().numpy() for k, v in head.state_dict().items()}
    return DistilledStudent(config, weights, teacher=teacher, features=features)


def load(
    config: ModelConfig, weights: dict[str, np.ndarray], *, source: str | None = None
) -> DistilledStudent:
    """The registry's loader for ``distilled-student`` folders."""
    return DistilledStudent(config, weights, source=source)


__all__ = [
    "ARCHITECTURE",
    "DistilledStudent",
    "MusicnnFeatures",
    "StudentHead",
    "StudentOptions",
    "make_student",
]
