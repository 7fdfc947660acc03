"""Training data: manifest items with cached audio features, texts and labels per split.

Audio is decoded and passed through the front-end once (and through the audio encoder too when
it is frozen, so head-only training reads backbone outputs), cached by content hash
(:mod:`melodex.data.features`), then packed per split into one memory-mapped array.

A front-end that reads files (``reads_files``: the AcousticBrainz descriptor front-end) is given
each item's file instead of decoded audio; the items must then be descriptor documents
(``extra.audio_features`` names the feature set, or the path is a ``.json``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from melodex.audio import frame_windows, load_audio, select_windows
from melodex.audio.acousticbrainz import FEATURE_SET
from melodex.data.features import FeatureCache, PackedFeatures, content_hash
from melodex.data.manifest import read_manifest
from melodex.encoders.audio import audio_encoder_spec
from melodex.errors import MelodexError
from melodex.lab.config import TrainConfig
from melodex.models.dual import DualEncoder
from melodex.progress import ProgressFn

log = logging.getLogger(__name__)


@dataclass
class SplitData:
    """One split: items, their packed window features and what the objectives need."""

    items: list[dict[str, Any]]
    features: PackedFeatures

    @property
    def ids(self) -> list[str]:
        return [item["id"] for item in self.items]

    def labels(self, field: str) -> list[str]:
        """Neighbourhood labels (album, artist, or any manifest/extra field)."""
        out = []
        for item in self.items:
            value = item.get(field, item.get("extra", {}).get(field))
            out.append(str(value) if value not in (None, "") else f"<none:{item['id']}>")
        return out

    def captions(self, kinds: tuple[str, ...] = ("caption",)) -> list[tuple[int, str]]:
        """(item index, text) for every text of the given kinds: the evaluation queries."""
        return [
            (i, t["text"])
            for i, item in enumerate(self.items)
            for t in item["texts"]
            if t["kind"] in kinds
        ]


def _segment_suffix(item: dict[str, Any]) -> str:
    if item.get("start") is None and item.get("end") is None:
        return ""
    return f"-{item.get('start')}-{item.get('end')}"


def audio_is_frozen(net: DualEncoder) -> bool:
    return not any(p.requires_grad for p in net.audio_encoder.parameters())


def feature_key(net: DualEncoder, max_windows: int | None) -> str:
    """Everything that changes the cached numbers: front-end, frozen encoder, window rule."""
    key = f"{net.frontend.key()}|max_windows={max_windows}"
    if audio_is_frozen(net):
        key += "|encoder=" + json.dumps(audio_encoder_spec(net.audio_encoder), sort_keys=True)
    return key


def reads_files(net: DualEncoder) -> bool:
    """Whether the network's front-end reads a file per item (descriptors), not decoded audio."""
    return bool(getattr(net.frontend, "reads_files", False))


def is_descriptor_item(item: dict[str, Any], path: str | Path) -> bool:
    """An item whose audio side is an AcousticBrainz document (or any ``.json`` path)."""
    kind = (item.get("extra") or {}).get("audio_features")
    return kind == FEATURE_SET or Path(path).suffix.lower() == ".json"


def make_extractor(
    net: DualEncoder, max_windows: int | None, items_by_path: dict[str, dict]
) -> Callable[[Path], np.ndarray]:
    frontend = net.frontend
    frozen = audio_is_frozen(net)
    files = reads_files(net)

    def extract(path: Path) -> np.ndarray:
        item = items_by_path.get(str(path), {})  # segment bounds, if the manifest gives them
        descriptor = is_descriptor_item(item, path)
        if files:
            if not descriptor:
                raise MelodexError(
                    f"{path}: this model reads AcousticBrainz descriptor documents (.json, "
                    f"extra.audio_features={FEATURE_SET!r}), and this item is audio"
                )
            x = torch.from_numpy(frontend.read(path))
            if frozen:
                with torch.inference_mode():
                    x = net.audio_encoder(x)
            return x.numpy()
        if descriptor:
            raise MelodexError(
                f"{path}: an AcousticBrainz descriptor document, and this model decodes audio; "
                "train on descriptors with an acousticbrainz front-end "
                "(configs/two-branch-descriptors.yaml)"
            )
        start, end = item.get("start"), item.get("end")
        y = load_audio(
            path,
            sr=frontend.sample_rate,
            offset=float(start or 0.0),
            duration=None if end is None else float(end) - float(start or 0.0),
        )
        windows = frame_windows(y, window=frontend.window_samples)
        chosen = select_windows(len(windows), max_windows=max_windows)
        with torch.inference_mode():
            x = frontend(torch.from_numpy(np.ascontiguousarray(windows[chosen])))
            if frozen:
                x = net.audio_encoder(x)
        return x.numpy()

    return extract


def prepare_splits(
    config: TrainConfig,
    net: DualEncoder,
    *,
    splits: tuple[str, ...] = ("train", "valid", "test"),
    progress: ProgressFn | None = None,
    skipped: list[dict[str, str]] | None = None,
) -> dict[str, SplitData]:
    """Read the manifest, cache features of every item, pack them per split.

    Items whose audio fails to decode are not silently dropped: with ``data.on_unreadable``
    ``"stop"`` (``"auto"`` for audio) the run stops with every failure listed (fix or remove
    those rows from the manifest); with ``"skip"`` (``"auto"`` for descriptor documents) they
    are left out, logged, and appended to ``skipped`` (``{"id", "file", "error"}`` each).
    """
    manifest = Path(config.data.manifest)
    policy = config.data.on_unreadable
    skip = policy == "skip" or (policy == "auto" and reads_files(net))
    items = read_manifest(manifest, check_audio=not skip)  # a missing file: one failure
    root = manifest.parent
    by_split: dict[str, list[dict]] = {s: [] for s in splits}
    for item in items:
        if item["split"] in by_split:
            by_split[item["split"]].append(item)
    if config.data.limit:
        by_split = {s: v[: config.data.limit] for s, v in by_split.items()}
    if not by_split.get("train"):
        raise MelodexError(f"{manifest}: no items in the train split")
    cache = FeatureCache(config.data.cache_dir, feature_key(net, config.data.max_windows))
    all_items = [it for s in splits for it in by_split[s]]
    paths = [str((root / it["audio"]).resolve()) for it in all_items]
    extract = make_extractor(net, config.data.max_windows, dict(zip(paths, all_items, strict=True)))
    failures: list[str] = []
    failed: dict[str, dict[str, str]] = {}
    digest_of: dict[str, str] = {}
    file_digests: dict[str, str] = {}
    for n, (path, item) in enumerate(zip(paths, all_items, strict=True), start=1):
        try:
            if not Path(path).is_file():
                raise MelodexError(f"{path}: file not found")
            if path not in file_digests:
                file_digests[path] = content_hash(path)
            # one file may hold several items (start/end): each segment is its own entry
            digest = file_digests[path] + _segment_suffix(item)
            cache.get(path, extract, digest=digest)
            digest_of[item["id"]] = digest
        except (MelodexError, OSError) as exc:
            message = str(exc) if path in str(exc) else f"{path}: {exc}"
            failures.append(message)
            failed[item["id"]] = {"id": item["id"], "file": path, "error": message}
        if progress is not None:
            progress(n, len(paths), path)
    if failures and not skip:
        raise MelodexError(
            f"{len(failures)} item(s) of {manifest} could not be read:\n" + "\n".join(failures)
        )
    for message in failures:
        log.warning("skipped (unreadable): %s", message)
    if skipped is not None:
        skipped.extend(failed.values())
    if failed and not [it for it in by_split["train"] if it["id"] not in failed]:
        raise MelodexError(
            f"{manifest}: no readable item in the train split; {len(failures)} failure(s):\n"
            + "\n".join(failures)
        )
    out = {}
    for split in splits:
        chosen = [it for it in by_split[split] if it["id"] not in failed]
        if not chosen:
            continue
        ds = [digest_of[it["id"]] for it in chosen]
        packed = cache.pack(
            f"{Path(config.data.manifest).stem}-{split}", [it["id"] for it in chosen], ds
        )
        out[split] = SplitData(chosen, packed)
    return out
