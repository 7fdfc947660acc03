"""A domain word2vec trained on a corpus's own music text, and initial embeddings drawn from it.

The tag-based metric learning seed found that word vectors trained on music text ("Amazon
reviews, music biographies, and Wikipedia pages about theory and music genres") catch musical
senses that Google News vectors miss (jungle, house, chill), and that they hold bi- and
tri-grams ("smooth jazz", "deep house"). Its released file is ``model_semeval_trigrams_300``:
300 dimensions, phrases up to three words. :class:`Word2VecConfig` defaults to those figures;
what the seed does not give (window, counts, epochs) keeps gensim's defaults. The seed does not
say skip-gram or CBOW; melodex trains skip-gram.

gensim is needed to *train* only (``pip install gensim``); a trained model is saved as
``word2vec.json`` (words, phrases, config) plus ``vectors.safetensors``, and loads, queries and
initialises embeddings with NumPy alone. No pickles.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from melodex.errors import MelodexError, ModelLoadError
from melodex.text import Vocabulary, tokenize_words

log = logging.getLogger(__name__)

FORMAT = "melodex-word2vec/1"
META_FILE = "word2vec.json"
VECTORS_FILE = "vectors.safetensors"


@dataclass
class Word2VecConfig:
    """How to train the domain word2vec. Defaults: the seed's 300-d trigram model, skip-gram."""

    vector_size: int = 300
    phrase_passes: int = 2  # 0: words only; 1: bigrams; 2: up to trigrams (the seed's "trigrams")
    skip_gram: bool = True
    window: int = 5
    min_count: int = 5
    negative: int = 5
    sample: float = 1e-3  # down-sampling of frequent words (gensim default); 0 turns it off
    epochs: int = 5
    seed: int = 0
    workers: int = 1  # 1 makes training reproducible; more threads are faster but not repeatable
    phrase_min_count: int = 5
    phrase_threshold: float = 10.0


def _require_gensim() -> Any:
    try:
        import gensim
    except ImportError as exc:
        raise MelodexError(
            "training a word2vec model needs gensim, which is not installed: pip install gensim"
        ) from exc
    return gensim


def apply_phrases(tokens: Sequence[str], phrases: Sequence[Iterable[str]]) -> list[str]:
    """Join known phrases, one pass per set: "smooth", "jazz" -> "smooth_jazz" (greedy, left first)."""
    out = list(tokens)
    for known in phrases:
        known = known if isinstance(known, set | frozenset) else set(known)
        merged, i = [], 0
        while i < len(out):
            if i + 1 < len(out) and f"{out[i]}_{out[i + 1]}" in known:
                merged.append(f"{out[i]}_{out[i + 1]}")
                i += 2
            else:
                merged.append(out[i])
                i += 1
        out = merged
    return out


def music_texts(items: Iterable[Mapping[str, Any]]) -> list[str]:
    """The music text of manifest items: every text of every kind, and each item's tag list."""
    texts: list[str] = []
    for item in items:
        texts.extend(t["text"] for t in item.get("texts", []) if t.get("text"))
        if item.get("tags"):
            texts.append(", ".join(item["tags"]))
    return texts


@dataclass
class Coverage:
    """How many vocabulary words (specials excluded) a word2vec model knows."""

    found: int
    total: int
    missing: list[str]

    @property
    def ratio(self) -> float:
        return self.found / self.total if self.total else 1.0


class MusicWord2Vec:
    """Trained word vectors: lookup, cosine neighbours, save/load. Needs NumPy only."""

    def __init__(
        self,
        words: Sequence[str],
        vectors: np.ndarray,
        *,
        phrases: Sequence[Sequence[str]] = (),
        config: Word2VecConfig | None = None,
    ):
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(words):
            raise MelodexError(f"{len(words)} words but vectors of shape {vectors.shape}")
        self.words = list(words)
        self.vectors = vectors
        self.phrases = [sorted(p) for p in phrases]
        self._phrase_sets = [frozenset(p) for p in self.phrases]
        self.config = config or Word2VecConfig(vector_size=vectors.shape[1])
        self._index = {w: i for i, w in enumerate(self.words)}
        self._unit: np.ndarray | None = None

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self._index

    def __getitem__(self, word: str) -> np.ndarray:
        if word not in self._index:
            raise KeyError(f"word {word!r} is not in the word2vec vocabulary")
        return self.vectors[self._index[word]]

    def tokens(self, text: str) -> list[str]:
        """A text as this model's tokens: :func:`melodex.text.tokenize_words`, then phrases."""
        return apply_phrases(tokenize_words(text), self._phrase_sets)

    def text_vector(self, text: str) -> np.ndarray | None:
        """Mean vector of a text's known tokens ("smooth jazz" is one token if it is a phrase).

        This is the tag-based seed's tag representation: one fixed vector per tag. None when no
        token of the text is known.
        """
        rows = [self._index[t] for t in self.tokens(text) if t in self._index]
        return self.vectors[rows].mean(axis=0) if rows else None

    def similarity(self, a: str, b: str) -> float:
        va, vb = self[a], self[b]
        return float(va @ vb / max(np.linalg.norm(va) * np.linalg.norm(vb), 1e-12))

    def most_similar(self, word: str, *, topn: int = 10) -> list[tuple[str, float]]:
        """The ``topn`` words closest to ``word`` by cosine similarity, best first."""
        if word not in self:
            raise KeyError(f"word {word!r} is not in the word2vec vocabulary")
        if self._unit is None:
            norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
            self._unit = self.vectors / np.maximum(norms, 1e-12)
        scores = self._unit @ self._unit[self._index[word]]
        order = [i for i in np.argsort(-scores, kind="stable") if self.words[i] != word]
        return [(self.words[i], float(scores[i])) for i in order[:topn]]

    def save(self, folder: str | Path) -> Path:
        """Write ``word2vec.json`` and ``vectors.safetensors`` into ``folder``."""
        from safetensors.numpy import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": FORMAT,
            "config": dataclasses.asdict(self.config),
            "words": self.words,
            "phrases": self.phrases,
        }
        save_file({"vectors": np.ascontiguousarray(self.vectors)}, str(folder / VECTORS_FILE))
        (folder / META_FILE).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> MusicWord2Vec:
        from safetensors.numpy import load_file

        folder = Path(folder)
        try:
            meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
            vectors = load_file(str(folder / VECTORS_FILE))["vectors"]
        except Exception as exc:  # missing file, bad JSON, bad safetensors: name the folder
            raise ModelLoadError(f"cannot load word2vec from {folder}: {exc}") from exc
        if meta.get("format") != FORMAT:
            raise ModelLoadError(
                f"{folder / META_FILE}: format {meta.get('format')!r}, expected {FORMAT!r}"
            )
        known = {f.name for f in dataclasses.fields(Word2VecConfig)}
        config = Word2VecConfig(**{k: v for k, v in meta["config"].items() if k in known})
        return cls(meta["words"], vectors, phrases=meta["phrases"], config=config)


def load_word_vectors(
    path: str | Path, *, binary: bool | None = None, limit: int | None = None
) -> MusicWord2Vec:
    """Released word vectors in the original word2vec formats (the seed's
    ``model_semeval_trigrams_300``, GoogleNews, ...), read with NumPy alone.

    Text: a ``"count dim"`` header, then ``word v1 ... vdim`` per line. Binary: the same header,
    then per word its UTF-8 bytes, a space and ``dim`` little-endian float32 (optionally a
    newline). ``binary=None`` tells them apart by the file's content. Words are lower-cased (the
    first, most frequent spelling wins) to match :func:`melodex.text.tokenize_words`; words with
    an underscore are phrases ("smooth_jazz"), which multi-word tags then use. A melodex
    word2vec folder loads too (:meth:`MusicWord2Vec.load`).
    """
    path = Path(path)
    if path.is_dir():
        return MusicWord2Vec.load(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read word vectors: {exc.strerror}") from exc
    newline = raw.find(b"\n")
    try:
        count, dim = (int(v) for v in raw[:newline].split())
    except ValueError as exc:
        raise ModelLoadError(f"{path}: no 'count dim' header: not a word2vec file") from exc
    if binary is None:
        sample = raw[newline + 1 : newline + 1 + 4096]
        binary = b"\x00" in sample or not _looks_like_text(sample)
    count = min(count, limit) if limit else count
    words: list[str] = []
    rows: list[np.ndarray] = []
    seen: set[str] = set()
    pos = newline + 1
    for n in range(count):
        if binary:
            space = raw.find(b" ", pos)
            if space < 0 or space + 1 + 4 * dim > len(raw):
                raise ModelLoadError(f"{path}: binary word2vec cut short at word {n}")
            word = raw[pos:space].decode("utf-8", errors="replace").strip()
            vec = np.frombuffer(raw, dtype="<f4", count=dim, offset=space + 1)
            pos = space + 1 + 4 * dim
            if pos < len(raw) and raw[pos : pos + 1] == b"\n":
                pos += 1
        else:
            end = raw.find(b"\n", pos)
            line = raw[pos : end if end >= 0 else len(raw)].decode("utf-8", errors="replace")
            pos = end + 1 if end >= 0 else len(raw)
            parts = line.rstrip().split(" ")
            if len(parts) != dim + 1:
                raise ModelLoadError(f"{path}: line {n + 2} has {len(parts) - 1} values, not {dim}")
            word, vec = parts[0], np.asarray(parts[1:], dtype=np.float32)
        key = word.lower()
        if key and key not in seen:
            seen.add(key)
            words.append(key)
            rows.append(np.asarray(vec, dtype=np.float32))
    if not words:
        raise ModelLoadError(f"{path}: no word vectors")
    phrases = sorted(w for w in words if "_" in w)
    return MusicWord2Vec(
        words,
        np.stack(rows),
        phrases=[phrases] if phrases else [],
        config=Word2VecConfig(vector_size=dim),
    )


def _looks_like_text(sample: bytes) -> bool:
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:  # a cut multi-byte character at the end is still text
        return exc.start > len(sample) - 4
    return True


def train_word2vec(
    texts: Iterable[str], *, config: Word2VecConfig | None = None, **options: Any
) -> MusicWord2Vec:
    """Train a skip-gram word2vec on music texts (needs gensim).

    Texts are tokenised by :func:`melodex.text.tokenize_words` (the tokeniser of
    :class:`~melodex.text.Vocabulary`, so words line up); with ``phrase_passes`` > 0, gensim's
    ``Phrases`` first finds frequent bigrams (and, on a second pass, trigrams), which are then
    joined by :func:`apply_phrases`. ``options`` override fields of ``config``. With
    ``workers=1`` the result depends only on the texts and ``seed``.
    """
    gensim = _require_gensim()
    from gensim.models import Word2Vec
    from gensim.models.phrases import Phrases

    config = dataclasses.replace(config or Word2VecConfig(), **options)
    sentences = [tokenize_words(t) for t in texts]
    sentences = [s for s in sentences if s]
    if not sentences:
        raise MelodexError("cannot train word2vec: the corpus has no words")
    phrases: list[list[str]] = []
    for _ in range(config.phrase_passes):
        found = Phrases(
            sentences, min_count=config.phrase_min_count, threshold=config.phrase_threshold
        )
        known = sorted(found.export_phrases())
        phrases.append(known)
        sentences = [apply_phrases(s, [set(known)]) for s in sentences]
    model = Word2Vec(
        sentences=sentences,
        vector_size=config.vector_size,
        window=config.window,
        min_count=config.min_count,
        sg=1 if config.skip_gram else 0,
        negative=config.negative,
        sample=config.sample,
        epochs=config.epochs,
        seed=config.seed,
        workers=config.workers,
    )
    if len(model.wv) == 0:
        raise MelodexError(
            f"word2vec kept no words: none occurs min_count={config.min_count} times in the corpus"
        )
    log.info(
        "trained word2vec with gensim %s: %d words, %d dims",
        gensim.__version__,
        len(model.wv),
        config.vector_size,
    )
    return MusicWord2Vec(
        list(model.wv.index_to_key), model.wv.vectors.copy(), phrases=phrases, config=config
    )


def embedding_coverage(vocab: Vocabulary, w2v: Any) -> Coverage:
    """Which words of ``vocab`` (specials excluded) ``w2v`` has a vector for."""
    words = vocab.tokens[len(Vocabulary.SPECIALS) :]
    missing = [w for w in words if w not in w2v]
    return Coverage(found=len(words) - len(missing), total=len(words), missing=missing)


def init_embeddings(vocab: Vocabulary, w2v: Any, *, seed: int = 0) -> torch.Tensor:
    """Initial embedding matrix (len(vocab), dim) for a vocabulary, taken from word vectors.

    ``w2v`` is a :class:`MusicWord2Vec` or anything with ``word in w2v``, ``w2v[word]`` and a
    ``dim`` or ``vector_size`` (a gensim ``KeyedVectors`` works). Known words get their vector;
    the others, ``<unk>`` included, get a random normal vector with the per-dimension spread of
    the known vectors, from ``np.random.default_rng(seed)``; ``<pad>`` gets zeros. Coverage is
    logged; :func:`embedding_coverage` returns it.
    """
    dim = int(getattr(w2v, "dim", None) or w2v.vector_size)
    coverage = embedding_coverage(vocab, w2v)
    known = [w for w in vocab.tokens if w in w2v and w not in Vocabulary.SPECIALS]
    ref = np.stack([np.asarray(w2v[w], dtype=np.float32) for w in known]) if known else None
    std = float(ref.std()) if ref is not None and len(ref) > 1 else 1.0 / np.sqrt(dim)
    out = (
        np.random.default_rng(seed)
        .normal(0.0, std or 1.0, size=(len(vocab), dim))
        .astype(np.float32)
    )
    for i, word in enumerate(vocab.tokens):
        if word in w2v and word not in Vocabulary.SPECIALS:
            out[i] = np.asarray(w2v[word], dtype=np.float32)
    out[vocab.pad_id] = 0.0
    log.info(
        "word2vec covers %d of %d vocabulary words (%.1f%%)",
        coverage.found,
        coverage.total,
        100 * coverage.ratio,
    )
    return torch.from_numpy(out)
