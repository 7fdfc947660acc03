"""Text handling shared by training, evaluation and search.

Three parts:

- **Tag clean-up** (tag-based metric learning seed, "Cleanup process"): :func:`normalize_tag`
  turns a raw tag into a lemma-like key, :func:`merge_synonyms` groups raw tags by that key and
  names each group after its most common member.
- **Text representations** (TTMR, "What is stochastic text representations?"):
  :class:`TextSampler` turns one item's tags and texts into the string a text encoder sees at a
  training step, as a single ``tag``, a ``sentence`` or a ``stochastic`` subset of K of L tags.
- **Word vocabulary** for the word-level encoders: :func:`tokenize_words` and
  :class:`Vocabulary`.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from melodex.errors import MelodexError

__all__ = [
    "TAG_SUFFIXES",
    "SAMPLING_MODES",
    "PAD",
    "UNK",
    "TextSampler",
    "Vocabulary",
    "merge_synonyms",
    "normalize_tag",
    "tokenize_words",
]

# ---------------------------------------------------------------------------------------------
# Tag clean-up
# ---------------------------------------------------------------------------------------------

#: Trailing words that say nothing about the music ("rock music", "rock songs", "rock tag").
TAG_SUFFIXES = ("music", "musics", "song", "songs", "tag", "tags")

# "&", "'n'", "'n", "n'" and a free-standing "n" all mean "and": "drum & bass", "drum 'n' bass",
# "drum n bass", "rock'n'roll" -> "drum and bass", "rock and roll".
_AND_FORMS = re.compile(r"\s*&\s*|\s*['\u2019]n['\u2019]?\s*|\s+n['\u2019]\s*|(?<=\w)\s+n\s+(?=\w)")
_APOSTROPHES = re.compile(r"['\u2019`]")
_NON_WORD = re.compile(r"[^\w\s]|_")
_SPACES = re.compile(r"\s+")


def normalize_tag(tag: str) -> str:
    """Clean a raw tag into the key under which spellings of one tag are grouped.

    The rules follow the tag-based metric learning seed ("remove punctuation, normalize
    expressions (e.g., and, &, 'n'), and remove irrelevant suffixes (e.g., music, song, tag)"),
    applied in this order:

    1. Unicode NFKC, lower-case, trim.
    2. "and"-expressions become `` and ``: ``&``, ``'n'``, ``'n``, ``n'`` and a lone ``n``
       between two words ("drum & bass", "drum 'n' bass", "drum n bass" -> "drum and bass"). Note that
       "r&b" becomes "r and b".
    3. Apostrophes are deleted ("80's" -> "80s"); every other punctuation mark and ``_`` becomes a
       space ("hip-hop" -> "hip hop", "post/punk" -> "post punk").
    4. Whitespace collapses to single spaces.
    5. Trailing words of :data:`TAG_SUFFIXES` are dropped, repeatedly, as long as a word is left
       ("rock songs" -> "rock", "rock music tag" -> "rock", but "music" stays "music").

    Examples
    --------
    >>> [normalize_tag(t) for t in ["Rock Music", "rock", "rock songs", "rock tag"]]
    ['rock', 'rock', 'rock', 'rock']
    >>> normalize_tag("Drum & Bass") == normalize_tag("drum and bass") == "drum and bass"
    True
    """
    if not isinstance(tag, str):
        raise TypeError(f"tag must be str, not {type(tag).__name__}: {tag!r}")
    text = unicodedata.normalize("NFKC", tag).lower().strip()
    text = _AND_FORMS.sub(" and ", f" {text} ")
    text = _APOSTROPHES.sub("", text)
    text = _NON_WORD.sub(" ", text)
    words = _SPACES.sub(" ", text).strip().split(" ")
    while len(words) > 1 and words[-1] in TAG_SUFFIXES:
        words.pop()
    return " ".join(w for w in words if w)


def merge_synonyms(
    tags: Iterable[str] | Mapping[str, int], synonyms: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Group raw tags by their :func:`normalize_tag` key and name each group; return raw -> name.

    ``tags`` is either every tag annotation of a corpus (repeats count) or a mapping from raw
    tag to its number of annotations. Following the tag-based seed ("Group all tags with the same
    preprocessed lemma and name the group with the most common of the involved tags"), a group's
    name is its most common raw tag, lower-cased and trimmed; ties go to the shorter, then the
    alphabetically first spelling. So ``[rock music, rock, rock songs, rock tag]`` with "rock" the
    most frequent all map to ``"rock"``.

    ``synonyms`` adds groupings the rules cannot see, from a tag to the tag it should join, e.g.
    ``{"hiphop": "hip hop", "rnb": "r&b"}``; both sides are normalised first and chains are
    followed ("a" -> "b" -> "c"). A cycle raises :class:`MelodexError`.
    """
    counts: Counter[str] = Counter()
    if isinstance(tags, Mapping):
        for raw, n in tags.items():
            counts[raw] += int(n)
    else:
        counts.update(tags)
    links = {normalize_tag(a): normalize_tag(b) for a, b in (synonyms or {}).items()}

    def key_of(raw: str) -> str:
        key, seen = normalize_tag(raw), []
        while key in links and links[key] != key:
            seen.append(key)
            key = links[key]
            if key in seen:
                raise MelodexError(f"synonyms form a cycle: {' -> '.join([*seen, key])}")
        return key

    groups: dict[str, Counter[str]] = {}
    for raw, n in counts.items():
        groups.setdefault(key_of(raw), Counter())[raw.strip().lower()] += n
    names = {
        key: min(members.items(), key=lambda kv: (-kv[1], len(kv[0]), kv[0]))[0]
        for key, members in groups.items()
    }
    return {raw: names[key_of(raw)] for raw in counts}


# ---------------------------------------------------------------------------------------------
# Text representations (TTMR)
# ---------------------------------------------------------------------------------------------

SAMPLING_MODES = ("tag", "sentence", "stochastic")
Mode = Literal["tag", "sentence", "stochastic"]


def _collect_texts(item_texts: Any, kinds: Sequence[str]) -> list[str]:
    """The non-empty texts of the wanted kinds, from the accepted shapes of ``item_texts``."""
    if item_texts is None:
        return []
    if isinstance(item_texts, Mapping) and "texts" in item_texts:  # a whole manifest item
        item_texts = item_texts["texts"]
    out: list[str] = []
    if isinstance(item_texts, Mapping):  # {kind: text or [texts]}
        for kind in kinds:
            value = item_texts.get(kind)
            values = [value] if isinstance(value, str) else list(value or [])
            out.extend(v for v in values if isinstance(v, str) and v.strip())
        return out
    for i, entry in enumerate(item_texts):
        if not isinstance(entry, Mapping) or "text" not in entry:
            raise MelodexError(f"item text {i} must be a {{'kind', 'text'}} object, got {entry!r}")
        if entry.get("kind") in kinds and isinstance(entry["text"], str) and entry["text"].strip():
            out.append(entry["text"])
    return out


@dataclass
class TextSampler:
    """Turn one item's tags and texts into the string the text encoder sees at a training step.

    Modes, after TTMR (Doh et al., ``ttmr-universal.md``) and its code, where "tag length" is 1
    and "sentence length" is L:

    - ``"tag"``: one of the item's L tags, drawn uniformly (a single-query representation).
    - ``"sentence"``: one of the item's captions (texts whose kind is in ``sentence_kinds``),
      drawn uniformly; an item without one gets all its tags in a fresh random order joined by
      ``separator``, which is TTMR's own "caption" for tag-only data.
    - ``"stochastic"``: K ~ U{1, ..., L}, then K distinct tags drawn without replacement, in the
      order drawn, joined by ``separator``; K is drawn afresh at every call, so one item is seen
      at every length from a single tag to the whole list. An item without tags draws K of the
      L words of one of its captions instead, keeping the caption's word order (the seed:
      "we select K words from L length text sentence").

    An item lacking the preferred source falls back to the other (tags <-> captions); one with
    neither raises :class:`MelodexError`. Repeated tags count once. All randomness comes from
    ``rng``, so two samplers made with ``np.random.default_rng(seed)`` give the same strings.

    ``sample(item_texts, tags)`` takes ``item_texts`` as a list of ``{"kind", "text"}`` objects
    (the manifest's ``texts``), a mapping ``{kind: text or [texts]}``, or a whole manifest item
    (then ``tags`` defaults to the item's ``tags``).
    """

    mode: Mode
    rng: np.random.Generator = field(kw_only=True)
    separator: str = field(default=", ", kw_only=True)
    sentence_kinds: tuple[str, ...] = field(default=("caption",), kw_only=True)

    def __post_init__(self) -> None:
        if self.mode not in SAMPLING_MODES:
            raise MelodexError(
                f"unknown text mode {self.mode!r} (expected one of {SAMPLING_MODES})"
            )
        if not isinstance(self.rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy Generator, not {type(self.rng).__name__}")

    def sample(self, item_texts: Any = None, tags: Sequence[str] | None = None) -> str:
        """One text for one item; see the class docstring for the modes."""
        if tags is None and isinstance(item_texts, Mapping) and "texts" in item_texts:
            tags = item_texts.get("tags")
        unique_tags = list(dict.fromkeys(t.strip() for t in (tags or []) if t and t.strip()))
        captions = _collect_texts(item_texts, self.sentence_kinds)
        if not unique_tags and not captions:
            raise MelodexError(
                f"item has no tags and no text of kind {list(self.sentence_kinds)} to sample from"
            )
        if self.mode == "sentence" or not unique_tags:
            if captions:
                caption = captions[int(self.rng.integers(len(captions)))]
                return caption if self.mode != "stochastic" else self._some_words(caption)
            return self.separator.join(
                unique_tags[i] for i in self.rng.permutation(len(unique_tags))
            )
        if self.mode == "tag":
            return unique_tags[int(self.rng.integers(len(unique_tags)))]
        k = int(self.rng.integers(1, len(unique_tags) + 1))
        chosen = self.rng.choice(len(unique_tags), size=k, replace=False)
        return self.separator.join(unique_tags[i] for i in chosen)

    def _some_words(self, caption: str) -> str:
        words = caption.split()
        k = int(self.rng.integers(1, len(words) + 1))
        keep = np.sort(self.rng.choice(len(words), size=k, replace=False))
        return " ".join(words[i] for i in keep)


# ---------------------------------------------------------------------------------------------
# Word vocabulary
# ---------------------------------------------------------------------------------------------

PAD = "<pad>"
UNK = "<unk>"
# Runs of letters or digits, with inner apostrophes kept ("don't", "80's").
_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")


def tokenize_words(text: str) -> list[str]:
    """Split a text into lower-case words: NFKC, lower-case, then runs of letters or digits.

    Every other character separates words and is dropped, except an apostrophe inside a word
    ("don't", "80's" stay whole; "hip-hop" -> ["hip", "hop"]; "r&b" -> ["r", "b"]).
    """
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


def join_phrases(
    words: Sequence[str], phrases: set[str] | frozenset[str], longest: int = 3
) -> list[str]:
    """Join runs of words that form a known phrase token, longest first, left to right:
    ``["smooth", "jazz", "song"]`` with ``{"smooth_jazz"}`` -> ``["smooth_jazz", "song"]``
    (released word vectors name phrases with underscores, as word2vec's phrase model does)."""
    if not phrases:
        return list(words)
    out, i = [], 0
    while i < len(words):
        for n in range(min(longest, len(words) - i), 1, -1):
            candidate = "_".join(words[i : i + n])
            if candidate in phrases:
                out.append(candidate)
                i += n
                break
        else:
            out.append(words[i])
            i += 1
    return out


class Vocabulary:
    """Words to ids for the word-level text encoders; ``<pad>`` is id 0 and ``<unk>`` id 1.

    Tokens with an underscore are phrases ("smooth_jazz"): a text's adjacent words that form
    one are looked up as that phrase (:func:`join_phrases`), so a multi-word tag gets its own
    phrase vector when the word vectors have one.

    Build with :meth:`build` from a corpus; words are ranked by count (ties alphabetically).
    ``max_size`` counts the two special tokens (the two-branch seed's "vocab size of 60000, all
    other words beyond that were tagged with an unknown token").
    """

    SPECIALS = (PAD, UNK)
    FORMAT = "melodex-vocabulary/1"

    def __init__(self, tokens: Sequence[str]):
        tokens = list(tokens)
        if tokens[:2] != list(self.SPECIALS):
            raise MelodexError(
                f"a vocabulary must start with {list(self.SPECIALS)}, got {tokens[:2]}"
            )
        if len(set(tokens)) != len(tokens):
            dupes = sorted(t for t, n in Counter(tokens).items() if n > 1)
            raise MelodexError(f"vocabulary has duplicate tokens: {dupes[:10]}")
        self._tokens = tokens
        self._index = {t: i for i, t in enumerate(tokens)}
        self._phrases = frozenset(t for t in tokens if "_" in t)

    @classmethod
    def build(
        cls,
        texts: Iterable[str],
        *,
        min_count: int = 1,
        max_size: int | None = None,
        phrases: Iterable[str] = (),
    ) -> Vocabulary:
        """Count the words of ``texts`` (:func:`tokenize_words`) and keep the frequent ones;
        adjacent words forming one of ``phrases`` ("smooth_jazz") count as that phrase."""
        if min_count < 1:
            raise MelodexError(f"min_count must be at least 1, got {min_count}")
        if max_size is not None and max_size < len(cls.SPECIALS):
            raise MelodexError(f"max_size must be at least {len(cls.SPECIALS)}, got {max_size}")
        known = frozenset(p for p in phrases if "_" in p)
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(join_phrases(tokenize_words(text), known))
        kept = [w for w, n in counts.items() if n >= min_count and w not in cls.SPECIALS]
        words = sorted(kept, key=lambda w: (-counts[w], w))
        if max_size is not None:
            words = words[: max_size - len(cls.SPECIALS)]
        return cls([*cls.SPECIALS, *words])

    @property
    def tokens(self) -> list[str]:
        return list(self._tokens)

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def unk_id(self) -> int:
        return 1

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._tokens == other._tokens

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens)"

    def ids(self, text: str) -> list[int]:
        """The ids of a text's words; unknown words get ``<unk>``."""
        words = join_phrases(tokenize_words(text), self._phrases)
        return [self._index.get(w, 1) for w in words]

    def encode(
        self, texts: Sequence[str], *, max_length: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode a batch: ``(ids, lengths)``, LongTensors of shape (B, T) and (B,).

        Rows are padded with ``<pad>`` to the longest text (at least 1 column); a text is cut to
        ``max_length`` words when given. A text with no words has length 0.
        """
        if isinstance(texts, str):
            raise TypeError("encode takes a list of texts, not a single str")
        rows = [self.ids(t)[:max_length] if max_length else self.ids(t) for t in texts]
        width = max([1, *(len(r) for r in rows)])
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
        return ids, lengths

    def decode(self, ids: Iterable[int]) -> list[str]:
        """The tokens of ids, without padding."""
        return [self._tokens[int(i)] for i in ids if int(i) != 0]

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.FORMAT, "tokens": list(self._tokens)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "vocabulary") -> Vocabulary:
        if not isinstance(data, Mapping) or data.get("format") != cls.FORMAT:
            found = data.get("format") if isinstance(data, Mapping) else type(data).__name__
            raise MelodexError(
                f"{source}: not a vocabulary (format {found!r}, expected {cls.FORMAT!r})"
            )
        return cls(data["tokens"])

    def save(self, path: str | Path) -> Path:
        """Write the vocabulary as JSON."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise MelodexError(f"cannot read vocabulary {path}: {exc}") from exc
        return cls.from_dict(data, source=str(path))
