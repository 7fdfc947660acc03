"""A CLAP-style music indexer, the baseline for bench_indexing.py (timing only, random weights).

It does what CLAP-based library tools do: decode each file to 48 kHz mono, cut it into every
10-second window, turn the windows into log-mel features with transformers'
``ClapFeatureExtractor``, run the HTSAT audio tower with its projection
(``ClapAudioModelWithProjection``, 28M parameters) in batches, and mean-pool the window embeddings
into one vector per track.

The model is built from the default ``ClapConfig().audio_config`` (HTSAT-base, no fusion, as in
LAION's music checkpoints); its weights are random, which costs the same time as trained ones,
so nothing is downloaded. The feature extractor is built from its defaults too, with
``truncation="rand_trunc"`` (what an unfused checkpoint uses; every window is exactly 10 s, so
nothing is cut at random).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from melodex.audio import frame_windows, load_audio

CLAP_SR = 48000
WINDOW_SECONDS = 10.0


@dataclass
class ClapIndexer:
    """The feature extractor and audio tower, built once; ``index`` embeds files."""

    batch_size: int = 8
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from transformers import ClapAudioModelWithProjection, ClapConfig, ClapFeatureExtractor

        self.extractor = ClapFeatureExtractor(truncation="rand_trunc")
        if self.extractor.sampling_rate != CLAP_SR:
            raise ValueError(f"unexpected CLAP sample rate {self.extractor.sampling_rate}")
        torch.manual_seed(0)
        self.model = ClapAudioModelWithProjection(ClapConfig().audio_config).eval()
        self.timings = {"decode": 0.0, "features": 0.0, "model": 0.0}

    @torch.inference_mode()
    def embed_windows(self, windows: np.ndarray) -> np.ndarray:
        """(W, 480000) audio at 48 kHz -> (W, 512) L2-normalised window embeddings."""
        out = []
        for start in range(0, len(windows), self.batch_size):
            batch = list(windows[start : start + self.batch_size])
            t0 = time.perf_counter()
            feats = self.extractor(batch, sampling_rate=CLAP_SR, return_tensors="pt")
            t1 = time.perf_counter()
            emb = self.model(**feats).audio_embeds
            self.timings["features"] += t1 - t0
            self.timings["model"] += time.perf_counter() - t1
            out.append(torch.nn.functional.normalize(emb, dim=-1).numpy())
        return np.concatenate(out) if out else np.zeros((0, 512), np.float32)

    def embed_file(self, path: str | Path) -> tuple[np.ndarray, float]:
        """One track -> (pooled L2-normalised vector, seconds of audio)."""
        t0 = time.perf_counter()
        y = load_audio(path, sr=CLAP_SR)
        self.timings["decode"] += time.perf_counter() - t0
        windows = frame_windows(y, window=int(WINDOW_SECONDS * CLAP_SR))
        vectors = self.embed_windows(windows)
        pooled = vectors.mean(axis=0)
        return pooled / max(float(np.linalg.norm(pooled)), 1e-12), len(y) / CLAP_SR

    def index(self, paths: Sequence[str | Path]) -> tuple[float, float, np.ndarray]:
        """Embed every file; return (seconds of audio, wall seconds, (N, 512) track vectors)."""
        self.timings = dict.fromkeys(self.timings, 0.0)
        started = time.perf_counter()
        seconds = 0.0
        vectors = []
        for path in paths:
            vec, dur = self.embed_file(path)
            vectors.append(vec)
            seconds += dur
        return seconds, time.perf_counter() - started, np.stack(vectors)


def clap_index(paths: Sequence[str | Path], *, batch_size: int = 8) -> tuple[float, float]:
    """Index ``paths`` with a fresh CLAP-style indexer; return (seconds of audio, wall seconds).

    Model construction is not timed; run it once on a short input first if a warm-up matters.
    """
    indexer = ClapIndexer(batch_size=batch_size)
    seconds, wall, _ = indexer.index(paths)
    return seconds, wall
