"""Span annotations for description mining: the file format, token labels and span metrics.

The annotation format is JSONL, one paragraph a line::

    {"text": "It is a slow ballad. It charted in 1990.",
     "sentences": [[0, 20]],
     "aspects": [[8, 19]],
     "id": "optional"}

- ``text``: the paragraph (str, non-empty).
- ``sentences``: ``[start, end]`` character offsets (Python slice convention, ``end`` exclusive) of
  whole sentences that describe music: how it sounds, its instruments, form, tempo, mood. History,
  biography, chart positions and dates stay unmarked.
- ``aspects``: offsets of short music aspects ("slow ballad", "distorted guitars").
- ``id`` and other keys are optional and kept.

Rules (checked by `validate_record`): offsets are integers with ``0 <= start < end <= len(text)``;
spans of one layer do not overlap; a span neither starts nor ends with whitespace. Spans of the two
layers are independent (an aspect usually lies inside a sentence). Either list may be empty.

For writing annotations by hand, `parse_markup` reads ``<<...>>`` as a sentence and ``[...]`` as
an aspect ("<<It is a [slow ballad].>>"); `to_markup` renders a record back.

Labels are binary per token (1 = inside a span, 0 = outside), as in WikiMuTe's two DistilBERT
token classifiers; BIO tags are not used: spans are recovered by merging adjacent positive words,
which cannot separate two touching spans (rare for sentences, and for aspects usually a list).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from melodex.errors import MelodexError

LAYERS = ("sentences", "aspects")
Offsets = tuple[int, int]


@dataclass(frozen=True)
class Span:
    """A character span of a text: ``text[start:end]`` with a model score (1.0 for gold)."""

    start: int
    end: int
    text: str
    score: float = 1.0

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "text": self.text, "score": self.score}


@dataclass
class Annotation:
    """One annotated paragraph: the text and its sentence and aspect spans."""

    text: str
    sentences: list[Offsets] = field(default_factory=list)
    aspects: list[Offsets] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def layer(self, name: str) -> list[Offsets]:
        if name not in LAYERS:
            raise MelodexError(f"unknown span layer {name!r} (expected one of {list(LAYERS)})")
        return self.sentences if name == "sentences" else self.aspects

    def to_json(self) -> dict[str, Any]:
        return {
            **self.extra,
            "text": self.text,
            "sentences": [list(s) for s in self.sentences],
            "aspects": [list(a) for a in self.aspects],
        }


# --------------------------------------------------------------------------- format


def validate_record(obj: Any) -> list[str]:
    """The problems of one parsed JSONL record (empty when valid)."""
    if not isinstance(obj, dict):
        return [f"expected a JSON object, got {type(obj).__name__}"]
    text = obj.get("text")
    if not isinstance(text, str) or not text.strip():
        return ["'text' must be a non-empty string"]
    problems = []
    for layer in LAYERS:
        spans = obj.get(layer, [])
        if not isinstance(spans, list):
            problems.append(f"{layer!r} must be a list of [start, end] pairs")
            continue
        good: list[tuple[int, int, int]] = []
        for i, span in enumerate(spans):
            where = f"{layer}[{i}]"
            if (
                not isinstance(span, list | tuple)
                or len(span) != 2
                or not all(isinstance(x, int) and not isinstance(x, bool) for x in span)
            ):
                problems.append(f"{where} must be a pair of integers, got {span!r}")
                continue
            start, end = span
            if not 0 <= start < end <= len(text):
                problems.append(
                    f"{where} = [{start}, {end}] is out of range (need 0 <= start < end <= "
                    f"{len(text)}, the text length)"
                )
                continue
            if text[start].isspace() or text[end - 1].isspace():
                problems.append(f"{where} = [{start}, {end}] starts or ends with whitespace")
            good.append((start, end, i))
        good.sort()
        for (s1, e1, i1), (s2, e2, i2) in zip(good, good[1:], strict=False):
            if s2 < e1:
                problems.append(
                    f"{layer}[{i1}] = [{s1}, {e1}] overlaps {layer}[{i2}] = [{s2}, {e2}]"
                )
    return problems


def _from_json(obj: dict[str, Any]) -> Annotation:
    extra = {k: v for k, v in obj.items() if k not in ("text", *LAYERS)}
    return Annotation(
        text=obj["text"],
        sentences=sorted(tuple(s) for s in obj.get("sentences", [])),  # type: ignore[misc]
        aspects=sorted(tuple(a) for a in obj.get("aspects", [])),  # type: ignore[misc]
        extra=extra,
    )


def read_annotations(path: str | Path) -> list[Annotation]:
    """Read and validate an annotation JSONL file.

    Raises `MelodexError` listing every problem as ``path:LINE: problem``; blank lines are allowed.
    """
    path = Path(path)
    if not path.is_file():
        raise MelodexError(f"annotation file not found: {path}")
    out: list[Annotation] = []
    errors: list[str] = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                errors.append(f"{path}:{number}: invalid JSON ({exc.msg})")
                continue
            problems = validate_record(obj)
            errors.extend(f"{path}:{number}: {p}" for p in problems)
            if not problems:
                out.append(_from_json(obj))
    if errors:
        raise MelodexError(f"{len(errors)} problem(s) in annotations:\n" + "\n".join(errors))
    return out


def write_annotations(path: str | Path, annotations: Iterable[Annotation]) -> Path:
    """Write annotations as JSONL (validating each); return the path."""
    path = Path(path)
    lines = []
    for i, ann in enumerate(annotations):
        obj = ann.to_json()
        problems = validate_record(obj)
        if problems:
            raise MelodexError(f"annotation {i}: " + "; ".join(problems))
        lines.append(json.dumps(obj, ensure_ascii=False))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def packaged_annotations_path() -> Path:
    """The annotated set shipped with melodex (original text, MIT; see data/README.md)."""
    return Path(__file__).parent / "data" / "annotated.jsonl"


def load_packaged_annotations() -> list[Annotation]:
    return read_annotations(packaged_annotations_path())


# --------------------------------------------------------------------------- markup

_MARK = re.compile(r"<<|>>|\[|\]")


def parse_markup(marked: str) -> Annotation:
    """Turn ``<<sentence>>`` / ``[aspect]`` markup into an `Annotation` with character offsets."""
    text: list[str] = []
    length = 0
    open_: dict[str, int | None] = {"sentences": None, "aspects": None}
    spans: dict[str, list[Offsets]] = {"sentences": [], "aspects": []}
    pos = 0
    for m in _MARK.finditer(marked):
        chunk = marked[pos : m.start()]
        text.append(chunk)
        length += len(chunk)
        pos = m.end()
        layer = "sentences" if m.group() in ("<<", ">>") else "aspects"
        opening = m.group() in ("<<", "[")
        if opening == (open_[layer] is not None):
            raise MelodexError(f"unbalanced {m.group()!r} at {m.start()} in markup: {marked!r}")
        if opening:
            open_[layer] = length
        else:
            start = open_[layer]
            assert start is not None
            spans[layer].append((start, length))
            open_[layer] = None
    text.append(marked[pos:])
    if any(v is not None for v in open_.values()):
        raise MelodexError(f"unclosed span in markup: {marked!r}")
    ann = Annotation("".join(text), sorted(spans["sentences"]), sorted(spans["aspects"]))
    problems = validate_record(ann.to_json())
    if problems:
        raise MelodexError(f"markup {marked!r}: " + "; ".join(problems))
    return ann


def to_markup(ann: Annotation) -> str:
    """Render an annotation back as markup (the inverse of `parse_markup`)."""
    inserts: list[tuple[int, int, str]] = []
    for s, e in ann.sentences:
        inserts += [(s, 0, "<<"), (e, 3, ">>")]
    for s, e in ann.aspects:
        inserts += [(s, 1, "["), (e, 2, "]")]
    out, pos = [], 0
    for at, _, mark in sorted(inserts):
        out += [ann.text[pos:at], mark]
        pos = at
    return "".join(out) + ann.text[pos:]


# --------------------------------------------------------------------------- split


def _unit(text: str) -> float:
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest()[:8], 16) / 2**32


def split_annotations(
    annotations: Sequence[Annotation], *, held_out: float = 0.2
) -> tuple[list[Annotation], list[Annotation]]:
    """Deterministic (train, held-out) split by a hash of each text: stable under reordering and
    additions (an item never changes side). ``held_out`` is the expected fraction."""
    if not 0.0 < held_out < 1.0:
        raise MelodexError(f"held_out must be in (0, 1), got {held_out}")
    train = [a for a in annotations if _unit(a.text) >= held_out]
    test = [a for a in annotations if _unit(a.text) < held_out]
    return train, test


# --------------------------------------------------------------------------- tokens and spans


def token_labels(offsets: Sequence[Offsets], spans: Sequence[Offsets]) -> list[int]:
    """Binary labels for tokens given by character ``offsets``: 1 when the token's first character
    lies inside a span, 0 otherwise, -100 (ignored by the loss) for special tokens ``(0, 0)``."""
    labels = []
    for start, end in offsets:
        if start == end:
            labels.append(-100)
        else:
            labels.append(int(any(s <= start < e for s, e in spans)))
    return labels


def merge_token_spans(
    text: str,
    offsets: Sequence[Offsets],
    probs: Sequence[float],
    *,
    word_ids: Sequence[int | None] | None = None,
    threshold: float = 0.5,
) -> list[Span]:
    """Merge positive tokens into character spans.

    A word is positive when the probability of its first token is ``>= threshold`` (so a span
    never cuts a word); runs of consecutive positive words become one span from the first word's
    start to the last word's end. Without ``word_ids`` each token is its own word. Special tokens
    (offsets ``(0, 0)`` or word id None) are skipped and break nothing. The score of a span is the
    mean probability of its tokens.
    """
    words: list[list[int]] = []  # token indices per word, in order
    last_word: int | None = None
    for i, (start, end) in enumerate(offsets):
        wid = word_ids[i] if word_ids is not None else i
        if start == end or wid is None:
            continue
        if words and wid == last_word:
            words[-1].append(i)
        else:
            words.append([i])
        last_word = wid
    spans: list[Span] = []
    run: list[int] = []

    def close() -> None:
        if run:
            start, end = offsets[run[0]][0], offsets[run[-1]][1]
            score = sum(probs[i] for i in run) / len(run)
            spans.append(Span(start, end, text[start:end], round(float(score), 4)))
            run.clear()

    for word in words:
        if probs[word[0]] >= threshold:
            run.extend(word)
        else:
            close()
    close()
    return spans


# --------------------------------------------------------------------------- metrics

_TOKEN = re.compile(r"\w+|[^\w\s]")


def word_tokens(text: str) -> list[Offsets]:
    """Tokenizer-independent tokens for token-level metrics: runs of word characters and single
    punctuation marks (BERT's basic pre-tokenization)."""
    return [m.span() for m in _TOKEN.finditer(text)]


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f, "tp": tp, "fp": fp, "fn": fn}


def _as_offsets(spans: Sequence[Any]) -> list[Offsets]:
    return [(s.start, s.end) if isinstance(s, Span) else (int(s[0]), int(s[1])) for s in spans]


def validate_spans(
    texts: Sequence[str], gold: Sequence[Sequence[Any]], pred: Sequence[Sequence[Any]]
) -> None:
    """Raise `MelodexError` unless the three lists align and every span fits its text."""
    if not len(texts) == len(gold) == len(pred):
        raise MelodexError(
            f"texts, gold and pred differ in length: {len(texts)}, {len(gold)}, {len(pred)}"
        )
    for name, layer in (("gold", gold), ("pred", pred)):
        for i, (text, spans) in enumerate(zip(texts, layer, strict=True)):
            for s, e in _as_offsets(spans):
                if not 0 <= s < e <= len(text):
                    raise MelodexError(f"{name}[{i}] span ({s}, {e}) outside text of {len(text)}")


def evaluate_spans(
    texts: Sequence[str], gold: Sequence[Sequence[Any]], pred: Sequence[Sequence[Any]]
) -> dict[str, dict[str, float]]:
    """Precision, recall and F1 of predicted spans against gold spans, per text, at three levels.

    ``gold`` and ``pred`` hold, per text, spans as ``(start, end)`` pairs or `Span` objects.

    - ``token``: over `word_tokens`; a token is positive when its first character is in a span.
    - ``span_exact``: a predicted span is correct when identical to a gold span (each gold span
      matches once).
    - ``span_overlap``: precision counts predicted spans overlapping some gold span, recall counts
      gold spans overlapped by some predicted span.

    Each level is ``{"precision", "recall", "f1", "tp", "fp", "fn"}``; an undefined ratio (no
    predictions, or no gold) is 0.0. For ``span_overlap`` tp is the precision numerator and fn the
    gold spans not overlapped.
    """
    validate_spans(texts, gold, pred)
    tok = [0, 0, 0]
    exact = [0, 0, 0]
    ov_tp_p = ov_fp = ov_tp_r = ov_fn = 0
    for text, g_raw, p_raw in zip(texts, gold, pred, strict=True):
        g, p = _as_offsets(g_raw), _as_offsets(p_raw)
        for start, _ in word_tokens(text):
            in_g = any(s <= start < e for s, e in g)
            in_p = any(s <= start < e for s, e in p)
            tok[0] += in_g and in_p
            tok[1] += in_p and not in_g
            tok[2] += in_g and not in_p
        unmatched = list(g)
        for span in p:
            if span in unmatched:
                unmatched.remove(span)
                exact[0] += 1
            else:
                exact[1] += 1
        exact[2] += len(unmatched)

        def hits(a: Offsets, others: list[Offsets]) -> bool:
            return any(a[0] < o[1] and o[0] < a[1] for o in others)

        for span in p:
            if hits(span, g):
                ov_tp_p += 1
            else:
                ov_fp += 1
        for span in g:
            if hits(span, p):
                ov_tp_r += 1
            else:
                ov_fn += 1
    overlap = _prf(ov_tp_p, ov_fp, 0)
    recall = ov_tp_r / (ov_tp_r + ov_fn) if ov_tp_r + ov_fn else 0.0
    prec = overlap["precision"]
    overlap.update(
        recall=recall,
        f1=2 * prec * recall / (prec + recall) if prec + recall else 0.0,
        fn=ov_fn,
    )
    return {"token": _prf(*tok), "span_exact": _prf(*exact), "span_overlap": overlap}
