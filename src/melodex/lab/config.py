"""Training configs: YAML or JSON files read into dataclasses, with dotted overrides.

One mechanism for every seed method: the file under ``configs/`` names the encoders, the text
representation, the objective and the sampler; ``melodex train CONFIG -o optim.epochs=3``
changes any field from the command line.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from melodex.errors import MelodexError


@dataclass
class DataConfig:
    manifest: str = "demo-data/corpus/manifest.jsonl"
    text_mode: str = "sentence"  # tag | sentence | stochastic (TTMR)
    sentence_kinds: list[str] = field(default_factory=lambda: ["caption"])
    cache_dir: str = ".cache/melodex-features"
    max_windows: int | None = 8  # windows cached per track (spread evenly)
    limit: int | None = None  # use only the first N items of each split (smoke tests)
    # an item whose audio (or descriptor file) cannot be read: "stop" the run listing every
    # failure, or "skip" it and report it (skipped.json); "auto": skip for descriptor inputs
    # (a crawl of AcousticBrainz documents has gaps), stop for audio
    on_unreadable: str = "auto"


@dataclass
class ModelSection:
    audio_encoder: dict[str, Any] = field(
        default_factory=lambda: {"name": "musicnn_backbone", "params": {}}
    )
    text_encoder: dict[str, Any] = field(
        default_factory=lambda: {"name": "sentence_transformer", "params": {}}
    )
    dim: int = 128
    head: str = "mlp"
    dropout: float = 0.1
    init_from: str | None = None  # a dual-encoder model folder to start from (finetune)


@dataclass
class ObjectiveConfig:
    loss: str = "infonce"  # infonce | triplet | ranking | classification
    params: dict[str, Any] = field(default_factory=dict)
    sampling: str = (
        "random"  # triplet: random|balanced|balanced_weighted; ranking: neighbourhood|random
    )
    neighbourhood: str = "album"  # manifest field grouping items for neighbourhood sampling
    # triplet: write negatives.json (distances, false negatives per epoch) for any sampling;
    # balanced_weighted always measures (it embeds the training split each epoch anyway)
    track_negatives: bool = False


@dataclass
class OptimConfig:
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 64
    epochs: int = 10
    triplets_per_epoch: int = 2048  # triplet objective only


@dataclass
class TrainerConfig:
    accelerator: str = "cpu"
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    log_every_n_steps: int = 5
    checkpoint_every_n_steps: int = 20
    deterministic: bool = True


@dataclass
class TrainConfig:
    name: str
    seed: int = 0
    output_dir: str = "runs"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelSection = field(default_factory=ModelSection)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_SECTIONS = {
    "data": DataConfig,
    "model": ModelSection,
    "objective": ObjectiveConfig,
    "optim": OptimConfig,
    "trainer": TrainerConfig,
}


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise MelodexError(f"{where}: unknown field(s) {unknown}; known: {sorted(known)}")
    return cls(**values)


def config_from_dict(data: dict[str, Any], *, source: str = "<config>") -> TrainConfig:
    """Validate and build a TrainConfig; errors name the file and the field."""
    if not isinstance(data, dict) or "name" not in data:
        raise MelodexError(f"{source}: a training config is a mapping with at least 'name'")
    top = dict(data)
    sections = {}
    for key, cls in _SECTIONS.items():
        value = top.pop(key, {}) or {}
        if not isinstance(value, dict):
            raise MelodexError(f"{source}: '{key}' must be a mapping")
        sections[key] = _build(cls, value, f"{source}: {key}")
    config = _build(TrainConfig, {**top, **sections}, source)
    if config.data.text_mode not in ("tag", "sentence", "stochastic"):
        raise MelodexError(f"{source}: data.text_mode must be tag, sentence or stochastic")
    if config.data.on_unreadable not in ("auto", "stop", "skip"):
        raise MelodexError(f"{source}: data.on_unreadable must be auto, stop or skip")
    if config.objective.loss not in ("infonce", "triplet", "ranking", "classification"):
        raise MelodexError(
            f"{source}: objective.loss must be infonce, triplet, ranking or classification"
        )
    return config


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``["optim.epochs=3", "data.limit=null"]`` -> nested updates (values parsed as JSON)."""
    out = json.loads(json.dumps(data))
    for item in overrides:
        if "=" not in item:
            raise MelodexError(f"override {item!r} is not KEY=VALUE")
        key, value = item.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise MelodexError(f"override {item!r}: {part} is not a section")
        node[parts[-1]] = _parse_value(value)
    return out


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML or JSON training config, apply ``KEY=VALUE`` overrides, validate it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MelodexError(f"{path}: cannot read config: {exc.strerror}") from exc
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # yaml and json raise different types
        raise MelodexError(f"{path}: not valid {path.suffix.lstrip('.').upper()}: {exc}") from exc
    return config_from_dict(apply_overrides(data or {}, overrides or []), source=str(path))
