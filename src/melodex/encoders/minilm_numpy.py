"""A sentence-transformers BERT model (all-MiniLM-L6-v2) run in numpy, without torch.

Why: a new ``melodex search`` process paid ~3.9 s to import sentence-transformers (and torch)
for a query the 6-layer, 384-wide encoder answers in a few milliseconds. This module reads the
same folder (``model.safetensors``, ``tokenizer.json``, ``modules.json``) and computes the same
function: the ``tokenizers`` library's WordPiece (the Rust tokenizer transformers itself uses),
BERT's encoder layers, mean pooling over the attention mask, and the optional Normalize. The
vectors equal :class:`melodex.encoders.text.TextEncoder`'s to float32 rounding (tested: ~1e-6
on many queries, identical rankings). GELU's ``erf`` is a rational approximation (error below
1.5e-7) because numpy has none and importing scipy costs more than the whole query.

Only plain BERT with mean pooling is reproduced; :func:`supported` says whether a folder is one,
and callers fall back to the full encoder otherwise.
"""

from __future__ import annotations

import contextlib
import json
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from melodex.encoders.text import resolve_text_model
from melodex.errors import ModelLoadError

# BLAS runs on one thread here: a query's ~40 small matrix products handed to OpenBLAS's
# thread pool took 2 s instead of 90 ms on a loaded 2-core machine (load 11), and a batch of 300
# texts minutes instead of seconds.
_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
SLACK = 8
"""Tokens of padding a batch may add to a text whatever its length (tiny batches cost more)."""


def read_safetensors(path: Path, *, prefix: str = "") -> dict[str, np.ndarray]:
    """Tensors of a safetensors file, memory-mapped (pages are read as they are used).

    The format is an 8-byte little-endian header length, a JSON header (name -> dtype, shape,
    byte range) and the raw data; mapping it instead of ``safetensors.numpy.load_file`` keeps
    the 47 MB word-embedding table out of memory except for the rows a query looks up.
    """
    with open(path, "rb") as handle:
        (size,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(size))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + size)
    out = {}
    for name, entry in header.items():
        if name == "__metadata__" or not name.startswith(prefix):
            continue
        dtype = _DTYPES.get(entry["dtype"])
        if dtype is None:
            raise ModelLoadError(f"{path}: tensor {name} has unsupported dtype {entry['dtype']}")
        start, stop = entry["data_offsets"]
        out[name[len(prefix) :]] = data[start:stop].view(dtype).reshape(entry["shape"])
    return out


@contextlib.contextmanager
def _blas_threads(limit: int | None) -> Iterator[None]:
    if limit is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # an optional speed-up only
        yield
        return
    with threadpool_limits(limits=limit, user_api="blas"):
        yield


def supported(folder: Path) -> bool:
    """Whether ``folder`` is a sentence-transformers model this module reproduces exactly:
    a BERT (absolute positions, GELU) -> mean Pooling [-> Normalize], with tokenizer.json."""
    try:
        modules = json.loads((folder / "modules.json").read_text())
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        pooling_dir = next(m["path"] for m in modules if m["type"].endswith("Pooling"))
        pooling = json.loads((folder / pooling_dir / "config.json").read_text())
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError, KeyError, StopIteration, TypeError):
        return False
    modes = [k for k, v in pooling.items() if k.startswith("pooling_mode") and v is True]
    return (
        kinds in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"])
        and modes == ["pooling_mode_mean_tokens"]
        and config.get("model_type") == "bert"
        and config.get("hidden_act") == "gelu"
        and config.get("position_embedding_type", "absolute") == "absolute"
        and (folder / "tokenizer.json").is_file()
        and (folder / "model.safetensors").is_file()
    )


def length_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Row numbers in batches of similar lengths, longest first: a batch ends at
    ``batch_size`` rows, or before a text less than half as long as its longest (and more
    than :data:`SLACK` tokens shorter), so padding at most doubles a batch's work."""
    order = np.argsort([-n for n in lengths], kind="stable")
    batches: list[list[int]] = []
    longest = 0
    for row in order.tolist():
        n = lengths[row]
        if (
            not batches
            or len(batches[-1]) >= batch_size
            or (2 * n < longest and longest - n > SLACK)
        ):
            batches.append([])
            longest = n
        batches[-1].append(row)
    return [np.asarray(b, np.int64) for b in batches]


def _padded(encodings: Sequence[Any], pad_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    longest = max(len(e.ids) for e in encodings)
    ids = np.full((len(encodings), longest), pad_id, np.int64)
    types = np.zeros((len(encodings), longest), np.int64)
    mask = np.zeros((len(encodings), longest), np.int64)
    for row, enc in enumerate(encodings):
        n = len(enc.ids)
        ids[row, :n] = enc.ids
        types[row, :n] = enc.type_ids
        mask[row, :n] = 1
    return ids, types, mask


def _erf(x: np.ndarray) -> np.ndarray:
    """erf, to 1.5e-7 (Abramowitz & Stegun 7.1.26), computed in float64."""
    z = np.abs(x.astype(np.float64))
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return np.copysign(1.0 - poly * np.exp(-z * z), x)


def _gelu(x: np.ndarray) -> np.ndarray:
    return (0.5 * x * (1.0 + _erf(x / np.sqrt(2.0)))).astype(np.float32)


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(-1, keepdims=True)
    return centred / np.sqrt(var + np.float32(eps)) * weight + bias


class NumpyMiniLM:
    """``encode(texts)`` -> (N, dim) float32, as ``SentenceTransformer.encode`` gives it."""

    def __init__(self, name_or_folder: str | Path):
        folder = Path(resolve_text_model(str(name_or_folder)))
        if not supported(folder):
            raise ModelLoadError(f"{folder}: not a BERT mean-pooling sentence encoder")
        from tokenizers import Tokenizer

        config = json.loads((folder / "config.json").read_text())
        st_config = folder / "sentence_bert_config.json"
        st = json.loads(st_config.read_text()) if st_config.is_file() else {}
        self.max_length = int(
            min(st.get("max_seq_length") or 512, config["max_position_embeddings"])
        )
        self.lowercase = bool(st.get("do_lower_case", False))
        modules = json.loads((folder / "modules.json").read_text())
        self.normalize = modules[-1]["type"].endswith("Normalize")
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config["layer_norm_eps"])
        self.dim = int(config["hidden_size"])
        self.layers = int(config["num_hidden_layers"])
        self.pad_id = int(config.get("pad_token_id", 0))
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=self.max_length)
        w = read_safetensors(folder / "model.safetensors")
        if "bert.embeddings.word_embeddings.weight" in w:
            w = {k.removeprefix("bert."): v for k, v in w.items()}
        if not all(a.flags.aligned for a in w.values()):  # BLAS needs aligned operands
            w = {k: np.array(v) for k, v in w.items()}
        self._w = w
        # Linear layers are used as x @ W.T: a transposed view, so BLAS reads the mapped file
        # directly (copying 42 MB of transposed weights cost ~0.3 s of a cold query).
        self._t = {
            f"encoder.layer.{i}.{n}": w[f"encoder.layer.{i}.{n}.weight"].T
            for i in range(self.layers)
            for n in (
                "attention.self.query",
                "attention.self.key",
                "attention.self.value",
                "attention.output.dense",
                "intermediate.dense",
                "output.dense",
            )
        }

    def tokenize(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids, token types, attention mask), each (N, longest) int64, padded on the right."""
        return _padded(self._encodings(texts), self.pad_id)

    def _encodings(self, texts: Sequence[str]) -> list[Any]:
        items = [t.strip() for t in texts]  # sentence-transformers strips, then tokenizes
        if self.lowercase:
            items = [t.lower() for t in items]
        return self._tokenizer.encode_batch(items)

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Texts -> (N, dim) sentence embeddings (unit length when the model normalises).

        Batches hold texts of similar token counts (:func:`length_batches`): one padded batch
        of 12 texts, one of them 256 tokens long, cost all 12 the 256 tokens.
        """
        items = list(texts)
        if not items:
            return np.zeros((0, self.dim), np.float32)
        encodings = self._encodings(items)
        out = np.empty((len(items), self.dim), np.float32)
        with _blas_threads(1):
            for rows in length_batches([len(e.ids) for e in encodings], batch_size):
                out[rows] = self._forward(*_padded([encodings[i] for i in rows], self.pad_id))
        return out

    def _forward(self, ids: np.ndarray, types: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w, t = self._w, self._t
        n, length = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:length][None]
            + w["embeddings.token_type_embeddings.weight"][types]
        )
        x = _layer_norm(
            x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps
        )
        head = self.dim // self.heads
        # additive mask as transformers builds it: the dtype's minimum where padded
        bias = np.where(mask[:, None, None, :] > 0, 0.0, np.finfo(np.float32).min)
        bias = bias.astype(np.float32)
        scale = np.float32(1.0 / np.sqrt(head))
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            q, k, v = (
                (x @ t[f"{p}attention.self.{name}"] + w[f"{p}attention.self.{name}.bias"])
                .reshape(n, length, self.heads, head)
                .transpose(0, 2, 1, 3)
                for name in ("query", "key", "value")
            )
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            probs = scores / scores.sum(-1, keepdims=True)
            context = (probs @ v).transpose(0, 2, 1, 3).reshape(n, length, self.dim)
            attn = context @ t[p + "attention.output.dense"] + w[f"{p}attention.output.dense.bias"]
            x = _layer_norm(
                attn + x,
                w[f"{p}attention.output.LayerNorm.weight"],
                w[f"{p}attention.output.LayerNorm.bias"],
                self.eps,
            )
            inner = _gelu(x @ t[p + "intermediate.dense"] + w[f"{p}intermediate.dense.bias"])
            ffn = inner @ t[p + "output.dense"] + w[f"{p}output.dense.bias"]
            x = _layer_norm(
                ffn + x, w[f"{p}output.LayerNorm.weight"], w[f"{p}output.LayerNorm.bias"], self.eps
            )
        m = mask[:, :, None].astype(np.float32)
        pooled = (x * m).sum(1) / np.maximum(m.sum(1), np.float32(1e-9))
        if self.normalize:
            pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.astype(np.float32, copy=False)
