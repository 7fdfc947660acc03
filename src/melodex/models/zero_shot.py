"""The zero-shot joint model: pretrained taggers and a sentence encoder, no paired training.

The musicnn taggers say how much each of their 100 tags applies to a window of audio; the
sentence encoder places each tag's text in a semantic space. Two ways to meet in one space:

- ``space="text"`` (ConSE-style): a window becomes the confidence-weighted mix of its tags' text
  embeddings, so a query is just its sentence embedding;
- ``space="tag"``: a query becomes its similarity to every tag's text, so a track is its tag
  confidences.

Both are linear maps around fixed parts, which is why trained heads (the Lab) can start here.
Which variant ships as ``melodex-base`` is chosen by ``scripts/build_default_model.py`` from
measurements written to ``docs/default-model.md``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from melodex.encoders.musicnn import (
    MUSICNN_SR,
    WINDOW_SAMPLES,
    MusicnnTagger,
    window_log_mels,
)
from melodex.encoders.text import TextEncoder
from melodex.errors import ModelLoadError, bad_value
from melodex.models.base import WindowedJointModel, WindowOutputs
from melodex.models.config import ModelConfig, options_dict, parse_options
from melodex.models.folder import check_weights
from melodex.models.query_fast import project_query

ARCHITECTURE = "zero-shot-tags"
#: The licences of the parts a zero-shot model is made of (see the built-in model's NOTICE).
BASE_LICENCE = "ISC (musicnn weights) + Apache-2.0 (all-MiniLM-L6-v2); melodex code MIT"


def merged_vocabulary(taggers: Sequence[MusicnnTagger]) -> tuple[list[str], np.ndarray]:
    """Unique tags across taggers and the (U, sum of tagger tags) matrix that averages duplicates."""
    names = [t for tagger in taggers for t in tagger.tags]
    unique = list(dict.fromkeys(names))
    merge = np.zeros((len(unique), len(names)), np.float32)
    for j, name in enumerate(names):
        merge[unique.index(name), j] = 1.0
    merge /= merge.sum(axis=1, keepdims=True)
    return unique, merge


class TaggerBank:
    """Several musicnn taggers sharing one mel front-end (it is the same for all of them)."""

    def __init__(self, names: Sequence[str]):
        self.taggers = [MusicnnTagger.from_pretrained(n) for n in names]
        self.names = list(names)

    def tag_windows(self, windows: np.ndarray) -> np.ndarray:
        """(W, WINDOW_SAMPLES) audio at 16 kHz -> (W, total tags) probabilities.

        The nets run one window at a time: each wide timbral convolution writes a ~9 MB map per
        window before its max over frequency, and a batch of them falls out of cache (measured
        by bench/bench_indexing.py: batch 1 beat batch 8 by ~1.7x on 2 cores). The taggers run
        side by side in threads (torch releases the GIL), so a core the decoder leaves idle is
        used without raising torch's intra-op thread count.
        """
        if len(windows) == 0:
            return np.zeros((0, sum(len(t.tags) for t in self.taggers)), np.float32)
        with torch.inference_mode():
            patches = window_log_mels(windows)
        if len(self.taggers) == 1:
            return _run_tagger(self.taggers[0], patches)
        outputs = list(_tagger_pool().map(lambda t: _run_tagger(t, patches), self.taggers))
        return np.concatenate(outputs, axis=1)


def _run_tagger(tagger: MusicnnTagger, patches: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        rows = [tagger(patches[i : i + 1])[0] for i in range(len(patches))]
        return torch.cat(rows).numpy().astype(np.float32, copy=False)


@functools.lru_cache(maxsize=1)
def _tagger_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="melodex-tagger")


@dataclass(frozen=True)
class ZeroShotOptions:
    """``config.options`` of a zero-shot model (saved in its ``config.json``)."""

    taggers: list[str]
    tags: list[str]
    prompt: str = "{tag}"
    space: str = "text"  # "text" (ConSE mix of tag texts) or "tag" (similarity to each tag)
    audio_power: float = 1.0
    center_audio: bool = False
    query_temperature: float | None = None

    def __post_init__(self) -> None:
        if self.space not in ("text", "tag"):
            raise bad_value("options.space", self.space, "'text' or 'tag'")


class ZeroShotTagModel(WindowedJointModel):
    """The built-in joint model (see module docstring)."""

    def __init__(
        self,
        config: ModelConfig,
        weights: dict[str, np.ndarray],
        *,
        text_encoder: TextEncoder | None = None,
        bank: TaggerBank | None = None,
        source: str | None = None,
    ):
        super().__init__(config, weights, source=source)
        opts = parse_options(ZeroShotOptions, config.options, source=config.name)
        self.options = opts
        self._tags: list[str] = list(opts.tags)
        self._space = opts.space
        self._bank = bank if bank is not None else TaggerBank(opts.taggers)
        n_raw = sum(len(t.tags) for t in self._bank.taggers)
        text_dim = int(weights["tag_embeddings"].shape[1]) if "tag_embeddings" in weights else 0
        check_weights(
            weights,
            {
                "tag_embeddings": (len(self._tags), text_dim),
                "tag_prior": (len(self._tags),),
                "tag_merge": (len(self._tags), n_raw),
            },
            source=config.name,
        )
        expected_dim = text_dim if self._space == "text" else len(self._tags)
        if config.dim != expected_dim:
            raise ModelLoadError(
                f"{config.name}: config dim {config.dim} but weights give {expected_dim}"
            )
        self._embeddings = weights["tag_embeddings"].astype(np.float32)
        self._prior = weights["tag_prior"].astype(np.float32)
        self._merge = weights["tag_merge"].astype(np.float32)
        self._text_encoder = text_encoder

    @property
    def tag_names(self) -> list[str]:
        return list(self._tags)

    @property
    def window_samples(self) -> int:
        return WINDOW_SAMPLES

    @property
    def text_encoder(self) -> TextEncoder:
        if self._text_encoder is None:
            self._text_encoder = TextEncoder(self.config.text_encoder)
        return self._text_encoder

    # -- text side -------------------------------------------------------------------------
    def encode_text(
        self, texts: Sequence[str] | str, *, batch_size: int = 64, normalize: bool = True
    ) -> np.ndarray:
        """Texts -> (N, dim) joint vectors (a single string gives (dim,))."""
        q = self.text_encoder.encode(texts, batch_size=batch_size, normalize=True)
        return project_query(
            q,
            self._embeddings,
            space=self._space,
            temperature=self.options.query_temperature,
            normalize=normalize,
        )

    # -- audio side ------------------------------------------------------------------------
    def tag_scores_to_vectors(self, scores: np.ndarray) -> np.ndarray:
        """(W, U) merged tag confidences -> (W, dim) raw (unnormalised) joint outputs."""
        s = scores
        if self.options.center_audio:
            s = s - self._prior
        if self._space == "tag":
            return s.astype(np.float32)
        weights = np.clip(s, 0.0, None) ** float(self.options.audio_power)
        return (weights @ self._embeddings).astype(np.float32)

    def window_outputs(self, windows: np.ndarray) -> WindowOutputs:
        """16 kHz windows -> joint outputs and the merged tag confidences of each window."""
        scores = self._bank.tag_windows(windows) @ self._merge.T
        return WindowOutputs(raw=self.tag_scores_to_vectors(scores), tag_scores=scores)

    def tag(self, y_or_path: np.ndarray | str | Path, *, k: int = 10) -> list[tuple[str, float]]:
        """The taggers' own top-k tags with their confidences."""
        if isinstance(y_or_path, np.ndarray):
            emb = self.embed_waveform(y_or_path)
        else:
            emb = self.embed_file(y_or_path)
        return top_tags(emb.tag_scores, self._tags, k=k)


def top_tags(scores: np.ndarray, names: Sequence[str], *, k: int) -> list[tuple[str, float]]:
    """Highest-scoring tag names, best first."""
    order = np.argsort(-scores, kind="stable")[:k]
    return [(names[i], float(scores[i])) for i in order]


def build_zero_shot_model(
    *,
    name: str = "melodex-base",
    taggers: Sequence[str] = ("MTT_musicnn", "MSD_musicnn"),
    text_encoder: str | TextEncoder = "all-MiniLM-L6-v2",
    prompt: str = "{tag}",
    space: str = "text",
    audio_power: float = 1.0,
    center_audio: bool = False,
    tag_prior: np.ndarray | None = None,
    query_temperature: float | None = None,
    max_windows: int | None = 8,
) -> ZeroShotTagModel:
    """Assemble a zero-shot model from its parts (used to make and to compare variants)."""
    bank = TaggerBank(taggers)
    tags, merge = merged_vocabulary(bank.taggers)
    encoder = text_encoder if isinstance(text_encoder, TextEncoder) else TextEncoder(text_encoder)
    embeddings = encoder.encode([prompt.format(tag=t) for t in tags], normalize=True)
    prior = (
        np.zeros(len(tags), np.float32) if tag_prior is None else np.asarray(tag_prior, np.float32)
    )
    options = ZeroShotOptions(
        taggers=list(taggers),
        tags=tags,
        prompt=prompt,
        space=space,
        audio_power=audio_power,
        center_audio=center_audio,
        query_temperature=query_temperature,
    )
    config = ModelConfig(
        name=name,
        architecture=ARCHITECTURE,
        sample_rate=MUSICNN_SR,
        window_seconds=WINDOW_SAMPLES / MUSICNN_SR,
        max_windows=max_windows,
        text_encoder=encoder.name,
        dim=encoder.dim if space == "text" else len(tags),
        options=options_dict(options),
        licence=BASE_LICENCE,
    )
    weights = {"tag_embeddings": embeddings, "tag_prior": prior, "tag_merge": merge}
    return ZeroShotTagModel(config, weights, text_encoder=encoder, bank=bank)


def load(
    config: ModelConfig, weights: dict[str, np.ndarray], *, source: str | None = None
) -> ZeroShotTagModel:
    """The registry's loader for ``zero-shot-tags`` folders."""
    return ZeroShotTagModel(config, weights, source=source)
