"""Distil any joint model into a fast student on the user's own audio (``melodex distill``).

1. Split the tracks (a folder or a manifest's audio) into train and held-out, by a hash of the
   path (deterministic, independent of listing order).
2. Embed every track with the teacher (its own windows and pooling): the targets.
3. Cut every track into the student's windows (musicnn's 3 s at 16 kHz, at most 8 spread
   evenly, as the student will at index time) and compute the frozen musicnn features.
4. Train the head (:class:`melodex.models.student.StudentHead`) so that the mean of its window
   outputs has cosine 1 with the teacher's track vector (loss ``1 - cos``).
5. Report agreement on the held-out tracks: the cosine between student and teacher vectors,
   and the overlap of their top-10 lists for a fixed set of text queries (both ranked with the
   teacher's text vectors); and index speed (decode + embed, one track at a time) of the
   student, the teacher and melodex-base on the same held-out tracks.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from melodex.audio import SUPPORTED_EXTENSIONS, frame_windows, load_audio, select_windows
from melodex.encoders.musicnn import MUSICNN_SR, WINDOW_SAMPLES
from melodex.errors import MelodexError, bad_value
from melodex.models.protocol import JointModel
from melodex.models.student import (
    DEFAULT_TAGGERS,
    DistilledStudent,
    MusicnnFeatures,
    StudentHead,
    make_student,
)

ProgressFn = Callable[[int, int, str], None]

#: The fixed queries of the top-10 agreement: instruments, genres, moods, tempo, texture.
AGREEMENT_QUERIES = (
    "piano",
    "solo violin",
    "acoustic guitar",
    "drums and bass",
    "organ",
    "flute",
    "choir singing",
    "string quartet",
    "brass band",
    "electronic dance music",
    "rock with distorted guitars",
    "jazz",
    "classical orchestra",
    "folk dance tune",
    "calm and slow",
    "fast and energetic",
    "sad minor key",
    "happy and bright",
    "ambient background music",
    "a march",
)


@dataclass
class DistillReport:
    """What ``melodex distill`` measured; saved as ``distill.json`` beside the student."""

    teacher: str
    teacher_identity: str
    student_identity: str
    n_train: int
    n_heldout: int
    epochs: int
    final_loss: float
    train_cosine: float  # mean cosine student-teacher on the training tracks
    heldout_cosine: float  # the same on held-out tracks
    heldout_cosine_min: float
    top10_overlap: float  # mean over queries of |top-k(student) & top-k(teacher)| / k
    # (k = top_k: 10, or half the held-out tracks when there are fewer than 20)
    top_k: int
    queries: list[str]
    speed: dict[str, dict[str, float]] = field(default_factory=dict)  # model -> figures
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def audio_items(folder_or_manifest: str | Path) -> list[Path]:
    """The audio files of a folder (recursively) or of a manifest (JSONL/Parquet), sorted."""
    path = Path(folder_or_manifest)
    if path.is_dir():
        files = [
            p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_EXTENSIONS
        ]
    elif path.is_file():
        from melodex.data.manifest import read_manifest

        files = list(dict.fromkeys(path.parent / item["audio"] for item in read_manifest(path)))
    else:
        raise MelodexError(f"{path}: no such folder or manifest")
    if len(files) < 2:
        raise MelodexError(f"{path}: distilling needs at least 2 audio files, found {len(files)}")
    return sorted(files)


def split_heldout(paths: Sequence[Path], fraction: float) -> tuple[list[Path], list[Path]]:
    """(train, held-out): the held-out tracks are those whose path hash sorts last.

    The path is taken relative to the items' common folder, so the same collection splits the
    same way wherever it lies (hashing absolute paths made each temporary copy split anew)."""
    if not 0.0 < fraction < 1.0:
        raise bad_value("heldout", fraction, "a fraction between 0 and 1")
    n_held = min(len(paths) - 1, max(1, round(fraction * len(paths))))
    root = os.path.commonpath([os.fspath(p) for p in paths]) if len(paths) > 1 else ""

    def key(p: Path) -> bytes:
        name = os.path.relpath(os.fspath(p), root) if root else os.fspath(p)
        return hashlib.blake2b(name.encode("utf-8", "surrogateescape"), digest_size=8).digest()

    ranked = sorted(paths, key=key)
    held = set(ranked[-n_held:])
    return [p for p in paths if p not in held], [p for p in paths if p in held]


def student_windows(path: Path, *, max_windows: int | None = 8) -> np.ndarray:
    """The windows the student embeds for a file (as :meth:`DistilledStudent.select` does)."""
    windows = frame_windows(load_audio(path, sr=MUSICNN_SR), window=WINDOW_SAMPLES)
    return windows[select_windows(len(windows), max_windows=max_windows)]


def _pooled(head: StudentHead, feats: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N, W, F) padded window features -> (N, dim) L2-normalised track vectors."""
    out = head(feats) * mask[..., None]
    mean = out.sum(dim=1) / mask.sum(dim=1, keepdim=True)
    return torch.nn.functional.normalize(mean, dim=-1)


def train_head(
    features: Sequence[np.ndarray],
    targets: np.ndarray,
    *,
    hidden: int = 256,
    epochs: int = 300,
    lr: float = 1e-3,
    seed: int = 0,
    progress: Callable[[int, float], None] | None = None,
) -> tuple[StudentHead, float]:
    """Fit a head so each track's pooled output points at its target; returns (head, loss)."""
    torch.manual_seed(seed)
    stacked = np.concatenate(features)
    head = StudentHead(stacked.shape[1], hidden, targets.shape[1])
    head.feature_mean.copy_(torch.from_numpy(stacked.mean(axis=0)))
    std = stacked.std(axis=0)
    head.feature_std.copy_(torch.from_numpy(np.where(std > 1e-6, std, 1.0).astype(np.float32)))
    w_max = max(len(f) for f in features)
    feats = torch.zeros(len(features), w_max, stacked.shape[1])
    mask = torch.zeros(len(features), w_max)
    for i, f in enumerate(features):
        feats[i, : len(f)] = torch.from_numpy(f)
        mask[i, : len(f)] = 1.0
    target = torch.nn.functional.normalize(torch.from_numpy(targets.astype(np.float32)), dim=-1)
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-4)
    batch = 64
    loss_value = float("nan")
    for epoch in range(epochs):
        order = torch.randperm(len(features))
        total = 0.0
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            cos = (_pooled(head, feats[idx], mask[idx]) * target[idx]).sum(dim=-1)
            loss = (1.0 - cos).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        loss_value = total / len(features)
        if progress is not None:
            progress(epoch + 1, loss_value)
    return head.eval(), loss_value


def agreement_k(n_heldout: int) -> int:
    """10, or half the held-out tracks when there are fewer than 20 (with k equal to their
    number, any two rankings would agree fully)."""
    return max(1, min(10, n_heldout // 2))


def top_k_overlap(queries: np.ndarray, reference: np.ndarray, other: np.ndarray, k: int) -> float:
    """Mean over query rows of the share of ``reference``'s top-k tracks in ``other``'s top-k."""
    k = min(k, reference.shape[0])
    top_ref = np.argsort(-(queries @ reference.T), axis=1, kind="stable")[:, :k]
    top_oth = np.argsort(-(queries @ other.T), axis=1, kind="stable")[:, :k]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(top_ref, top_oth, strict=True)]))


def index_speed(model: JointModel, paths: Sequence[Path]) -> dict[str, float]:
    """Decode + embed each file, one at a time: tracks/s and audio seconds per second."""
    start = time.perf_counter()
    audio_seconds = sum(model.embed_file(p).duration for p in paths)
    elapsed = time.perf_counter() - start
    return {
        "tracks": len(paths),
        "seconds": round(elapsed, 3),
        "tracks_per_s": round(len(paths) / elapsed, 3),
        "x_realtime": round(audio_seconds / elapsed, 2),
    }


def distill(
    teacher: JointModel,
    folder_or_manifest: str | Path,
    *,
    heldout: float = 0.2,
    epochs: int = 300,
    hidden: int = 256,
    seed: int = 0,
    taggers: Sequence[str] = DEFAULT_TAGGERS,
    queries: Sequence[str] = AGREEMENT_QUERIES,
    base: JointModel | None = None,
    speed_tracks: int = 20,
    progress: ProgressFn | None = None,
) -> tuple[DistilledStudent, DistillReport]:
    """Train a student of ``teacher`` on the audio of a folder or manifest, and measure it.

    ``base`` is the model the speed figures compare with (melodex-base unless given; the
    teacher itself when it is melodex-base).
    """
    if isinstance(epochs, bool) or int(epochs) < 1:
        raise bad_value("epochs", epochs, "a positive integer")
    began = time.perf_counter()
    paths = audio_items(folder_or_manifest)
    train, held = split_heldout(paths, heldout)
    timed = held[: max(1, speed_tracks)]
    n = len(paths)
    total = 2 * n + int(epochs) + 3 * len(timed)
    step = 0

    def tick(note: str) -> None:
        nonlocal step
        step += 1
        if progress is not None:
            progress(step, total, note)

    targets = []
    for path in paths:
        targets.append(teacher.embed_file(path).vector)
        tick(f"teacher: {path.name}")
    target = np.stack(targets)
    extractor = MusicnnFeatures(taggers)
    features = []
    for path in paths:
        features.append(extractor.windows(student_windows(path)))
        tick(f"features: {path.name}")
    index = {p: i for i, p in enumerate(paths)}
    tr = [index[p] for p in train]
    ho = [index[p] for p in held]
    head, loss = train_head(
        [features[i] for i in tr],
        target[tr],
        hidden=hidden,
        epochs=int(epochs),
        seed=seed,
        progress=lambda e, v: tick(f"train: epoch {e}, loss {v:.4f}"),
    )
    student = make_student(
        teacher,
        head,
        taggers=taggers,
        hidden=hidden,
        trained_on=str(folder_or_manifest),
        n_tracks=len(train),
        features=extractor,
    )
    with torch.inference_mode():
        vectors = np.stack(
            [_pooled(head, torch.from_numpy(f)[None], torch.ones(1, len(f)))[0] for f in features]
        ).astype(np.float32)
    cos = np.sum(vectors * target / np.linalg.norm(target, axis=1, keepdims=True), axis=1)
    q = teacher.encode_text(list(queries))
    top_k = agreement_k(len(ho))
    overlap = top_k_overlap(q, target[ho], vectors[ho], top_k)
    if base is None:
        from melodex.models.registry import DEFAULT_MODEL, load_model

        base = teacher if teacher.source == DEFAULT_MODEL else load_model(DEFAULT_MODEL)
    speed = {}
    for label, model in (("student", student), ("teacher", teacher), ("melodex-base", base)):
        model.embed_file(timed[0])  # warm-up: lazy parts (taggers, tag texts) load outside timing
        speed[label] = index_speed(model, timed)
        for _ in timed:
            tick(f"speed: {label}")
    report = DistillReport(
        teacher=str(teacher.source),
        teacher_identity=teacher.identity,
        student_identity=student.identity,
        n_train=len(train),
        n_heldout=len(held),
        epochs=int(epochs),
        final_loss=round(loss, 5),
        train_cosine=round(float(cos[tr].mean()), 4),
        heldout_cosine=round(float(cos[ho].mean()), 4),
        heldout_cosine_min=round(float(cos[ho].min()), 4),
        top10_overlap=round(overlap, 4),
        top_k=top_k,
        queries=list(queries),
        speed=speed,
        seconds=round(time.perf_counter() - began, 1),
    )
    return student, report


__all__ = [
    "AGREEMENT_QUERIES",
    "DistillReport",
    "agreement_k",
    "audio_items",
    "distill",
    "split_heldout",
    "top_k_overlap",
    "train_head",
]
