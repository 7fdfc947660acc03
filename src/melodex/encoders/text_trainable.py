"""Trainable text encoders: nn.Modules that the Lab trains inside a joint model.

Every encoder follows one protocol (:class:`TrainableTextEncoder`):

- ``out_dim``: the size of its output vectors;
- ``tokenize(texts) -> dict[str, Tensor]``: a batch of strings as tensors (on the CPU);
- ``forward(batch) -> Tensor``: that dict (moved to the module's device) to ``(B, out_dim)``.

They are registered in :data:`TEXT_ENCODERS` by name and made by :func:`build_text_encoder`;
each has a JSON-serialisable dataclass config. :func:`save_text_encoder` writes a folder with
``config.json`` and ``model.safetensors``; the vocabulary of the word-level encoders lives in the
config in memory (``vocab``: the :meth:`~melodex.text.Vocabulary.to_dict` form) and in a side
file ``vocab.json`` on disk, which ``config.json`` names. A frozen sentence transformer saves no
transformer weights: its config names the model, which loads again from the package or folder.

Encoders (from the seeds):

1. ``sentence_transformer``: a sentence-transformers model (all-MiniLM-L6-v2 by default, shipped
   as a package) as a module: token embeddings, then mean pooling with the attention mask as the
   sentence-transformers ``Pooling`` module does, then L2 normalisation if the model folder has a
   ``Normalize`` module (all-MiniLM-L6-v2 has). Frozen unless ``trainable``.
2. ``mean_word_embedding``: the mean of trainable word embeddings (two-branch seed, eq. 11:
   ``y = sum_i phi_w(s_i) / n``); optionally initialised from a word2vec model.
4. ``hf_transformer`` (:mod:`melodex.encoders.text_hf`): any Hugging Face model by folder or
   hub id, [CLS] or mean pooling (TTMR's BERT, TTMR++'s RoBERTa).
3. ``bilstm``: a bidirectional LSTM over word embeddings whose final backward and forward hidden
   states are concatenated (two-branch seed, eqs. 12-14: ``y = [h<-_1 ; h->_n]``); sizes from its
   section 6.2: embeddings 256, hidden state 256.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from melodex.errors import MelodexError, ModelLoadError
from melodex.text import Vocabulary

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
VOCAB_FILE = "vocab.json"
FORMAT = "melodex-text-encoder/1"


@runtime_checkable
class TrainableTextEncoder(Protocol):
    name: str
    config: Any

    @property
    def out_dim(self) -> int: ...

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]: ...

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor: ...


TEXT_ENCODERS: dict[str, tuple[type, Callable[..., nn.Module]]] = {}


def register_text_encoder(name: str, config_cls: type) -> Callable[[type], type]:
    """Class decorator: make an encoder buildable by name from its config dataclass."""

    def wrap(cls: type) -> type:
        cls.name = name
        TEXT_ENCODERS[name] = (config_cls, cls)
        return cls

    return wrap


def _check_texts(texts: Any) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("tokenize takes a list of texts, not a single str")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"text {i} is {type(text).__name__}, not str")
    return texts


def _device_of(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


# ---------------------------------------------------------------------------------------------
# 1. sentence transformer
# ---------------------------------------------------------------------------------------------

_KNOWN_ST_MODULES = {"Transformer", "Pooling", "Normalize"}


@dataclass
class SentenceTransformerConfig:
    """``model``: a packaged name, a local sentence-transformers folder, or a hub name."""

    model: str = "all-MiniLM-L6-v2"
    trainable: bool = False
    max_seq_length: int | None = None  # None: the folder's sentence_bert_config.json
    normalize: bool | None = None  # None: as the folder says (a Normalize module or not)


def _model_folder(name: str) -> Path:
    """A local folder for a model name: packaged, a path, or a hub snapshot (cache or network)."""
    from melodex.encoders.text import resolve_text_model

    location = resolve_text_model(name)
    if Path(location).is_dir():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder must not trigger hub look-ups
        return Path(location)
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=location))
    except Exception as exc:  # offline, unknown repo, ...: name the model
        raise ModelLoadError(f"cannot find text model {name!r} locally or on a hub: {exc}") from exc


def _read_st_layout(folder: Path) -> tuple[int | None, bool, bool]:
    """(max_seq_length, do_lower_case, normalize) from a sentence-transformers folder.

    A plain transformers folder (no ``modules.json``) gets mean pooling and no normalisation, as
    sentence-transformers itself does. Pooling other than mean, or extra modules (Dense, ...),
    raise :class:`ModelLoadError`.
    """

    def read(name: str) -> dict[str, Any]:
        path = folder / name
        try:
            return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        except ValueError as exc:
            raise ModelLoadError(f"{path}: invalid JSON: {exc}") from exc

    st_config = read("sentence_bert_config.json")
    modules = read("modules.json") or []
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    unknown = [k for k in kinds if k not in _KNOWN_ST_MODULES]
    if unknown:
        raise ModelLoadError(f"{folder}: unsupported sentence-transformers modules {unknown}")
    for module in modules:
        if module.get("type", "").endswith("Pooling"):
            pooling = read(f"{module.get('path', '')}/config.json")
            modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode") and v)
            if modes != ["pooling_mode_mean_tokens"]:
                raise ModelLoadError(
                    f"{folder}: only mean pooling is supported, the model uses {modes}"
                )
    return (
        st_config.get("max_seq_length"),
        bool(st_config.get("do_lower_case")),
        "Normalize" in kinds,
    )


@register_text_encoder("sentence_transformer", SentenceTransformerConfig)
class SentenceTransformerEncoder(nn.Module):
    """A sentence-transformers model as a module: transformer, masked mean pooling, [normalise]."""

    def __init__(self, config: SentenceTransformerConfig):
        super().__init__()
        self.config = config
        folder = _model_folder(config.model)
        if not (folder / "config.json").is_file():  # said before paying transformers' import
            raise ModelLoadError(
                f"cannot load text model {config.model!r} from {folder}: no config.json, "
                "so not a transformers or sentence-transformers model folder"
            )
        max_len, self._lower, normalize = _read_st_layout(folder)
        try:
            import transformers
            from transformers import AutoModel, AutoTokenizer

            transformers.utils.logging.disable_progress_bar()
            self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
            self.transformer = AutoModel.from_pretrained(str(folder))
        except Exception as exc:  # transformers raises many types; name the model and folder
            raise ModelLoadError(
                f"cannot load text model {config.model!r} from {folder}: {exc}"
            ) from exc
        self.max_seq_length = int(
            config.max_seq_length or max_len or min(self.tokenizer.model_max_length, 512)
        )
        self.normalize = normalize if config.normalize is None else config.normalize
        self._out_dim = int(self.transformer.config.hidden_size)
        self.transformer.requires_grad_(config.trainable)
        if not config.trainable:
            self.transformer.eval()

    @property
    def out_dim(self) -> int:
        return self._out_dim

    def train(self, mode: bool = True) -> SentenceTransformerEncoder:
        super().train(mode)
        if not self.config.trainable:
            self.transformer.eval()  # a frozen transformer keeps its dropout off
        return self

    def frozen_prefixes(self) -> tuple[str, ...]:
        """State-dict prefixes that are not saved: reloaded from the model name instead."""
        return () if self.config.trainable else ("transformer.",)

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        texts = [t.lower() if self._lower else t for t in _check_texts(texts)]
        return dict(
            self.tokenizer(
                texts,
                padding=True,
                truncation="longest_first",
                max_length=self.max_seq_length,
                return_tensors="pt",
            )
        )

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        device = _device_of(self)
        inputs = {k: v.to(device) for k, v in batch.items()}
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.config.trainable):
            hidden = self.transformer(**inputs, return_dict=True).last_hidden_state
        mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return nn.functional.normalize(pooled, p=2, dim=1) if self.normalize else pooled


# ---------------------------------------------------------------------------------------------
# 2-3. word-level encoders over a Vocabulary
# ---------------------------------------------------------------------------------------------


class _WordEncoder(nn.Module):
    """Shared parts: the vocabulary, the embedding table (optionally from word2vec), tokenize."""

    def __init__(self, config: Any, *, w2v: Any = None, init_seed: int = 0):
        super().__init__()
        if config.vocab is None:
            raise MelodexError(
                f"{self.name} needs a vocabulary: pass vocab=Vocabulary.build(texts)"
            )
        if isinstance(config.vocab, Vocabulary):  # keep the config JSON-serialisable
            config.vocab = config.vocab.to_dict()
        self.config = config
        self.vocab = Vocabulary.from_dict(config.vocab, source=f"{self.name} config")
        self.embedding = nn.Embedding(
            len(self.vocab), config.embedding_dim, padding_idx=self.vocab.pad_id
        )
        self.init_coverage = None
        if w2v is not None:
            from melodex.encoders.word2vec import embedding_coverage, init_embeddings

            weights = init_embeddings(self.vocab, w2v, seed=init_seed)
            if weights.shape[1] != config.embedding_dim:
                raise MelodexError(
                    f"word2vec has {weights.shape[1]} dims but embedding_dim is {config.embedding_dim}"
                )
            with torch.no_grad():
                self.embedding.weight.copy_(weights)
            self.init_coverage = embedding_coverage(self.vocab, w2v)
        self.embedding.weight.requires_grad_(config.trainable_embeddings)

    def frozen_prefixes(self) -> tuple[str, ...]:
        return ()

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        ids, lengths = self.vocab.encode(_check_texts(texts), max_length=self.config.max_length)
        return {"input_ids": ids, "lengths": lengths}


@dataclass
class MeanWordEmbeddingConfig:
    vocab: dict[str, Any] | None = None  # Vocabulary.to_dict(); a Vocabulary is accepted too
    embedding_dim: int = 256  # two-branch seed, 6.2: "phi_w our text embedder had dimension 256"
    trainable_embeddings: bool = True
    max_length: int | None = None  # words kept per text; None keeps all


@register_text_encoder("mean_word_embedding", MeanWordEmbeddingConfig)
class MeanWordEmbedding(_WordEncoder):
    """Mean of the word embeddings of a text's words (padding excluded); an empty text gives 0."""

    @property
    def out_dim(self) -> int:
        return self.config.embedding_dim

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ids = batch["input_ids"].to(self.embedding.weight.device)
        mask = (ids != self.vocab.pad_id).unsqueeze(-1).to(self.embedding.weight.dtype)
        summed = (self.embedding(ids) * mask).sum(dim=1)
        return summed / mask.sum(dim=1).clamp(min=1.0)


@dataclass
class BiLSTMConfig:
    vocab: dict[str, Any] | None = None
    embedding_dim: int = 256  # two-branch seed, 6.2
    hidden_size: int = (
        256  # two-branch seed, 6.2: "For our LSTM's we used a hidden state dimension of 256"
    )
    num_layers: int = 1
    dropout: float = 0.0  # between LSTM layers (num_layers > 1)
    trainable_embeddings: bool = True
    max_length: int | None = None


@register_text_encoder("bilstm", BiLSTMConfig)
class BiLSTMEncoder(_WordEncoder):
    """BiLSTM over word embeddings; output ``[final backward state ; final forward state]``.

    The forward direction's state after the last real word and the backward direction's state
    after the first word (padding is skipped by packing), of the top layer, in the seed's order
    (eq. 14). An empty text runs over one ``<pad>`` (a zero embedding).
    """

    def __init__(self, config: BiLSTMConfig, **kwargs: Any):
        super().__init__(config, **kwargs)
        self.lstm = nn.LSTM(
            config.embedding_dim,
            config.hidden_size,
            num_layers=config.num_layers,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            bidirectional=True,
            batch_first=True,
        )

    @property
    def out_dim(self) -> int:
        return 2 * self.config.hidden_size

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ids = batch["input_ids"].to(self.embedding.weight.device)
        lengths = batch["lengths"].clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(
            self.embedding(ids), lengths, batch_first=True, enforce_sorted=False
        )
        _, (h_n, _) = self.lstm(packed)  # (num_layers * 2, B, H), top layer last
        return torch.cat([h_n[-1], h_n[-2]], dim=1)  # [backward ; forward]


# ---------------------------------------------------------------------------------------------
# building, saving, loading
# ---------------------------------------------------------------------------------------------


def build_text_encoder(name: str, **params: Any) -> nn.Module:
    """Make a registered encoder from its config fields; other keywords go to its constructor.

    >>> enc = build_text_encoder("mean_word_embedding", vocab=Vocabulary.build(["a b"]), embedding_dim=8)
    >>> enc(enc.tokenize(["a", "b a"])).shape
    torch.Size([2, 8])

    Word-level encoders take ``w2v=`` (a word2vec model to initialise embeddings from) and
    ``init_seed=`` (for the random vectors of words it lacks).
    """
    if name not in TEXT_ENCODERS:
        raise MelodexError(f"unknown text encoder {name!r} (known: {sorted(TEXT_ENCODERS)})")
    config_cls, cls = TEXT_ENCODERS[name]
    names = {f.name for f in dataclasses.fields(config_cls)}
    config = config_cls(**{k: v for k, v in params.items() if k in names})
    extras = {k: v for k, v in params.items() if k not in names}
    allowed = {"w2v", "init_seed"} if issubclass(cls, _WordEncoder) else set()
    if set(extras) - allowed:
        raise MelodexError(
            f"text encoder {name!r} has no option {sorted(set(extras) - allowed)} "
            f"(config fields: {sorted(names)}; other options: {sorted(allowed)})"
        )
    return cls(config, **extras)


def encoder_config_dict(encoder: nn.Module) -> dict[str, Any]:
    """The encoder's name and config as a JSON-ready dict (vocabulary inline)."""
    return {"format": FORMAT, "name": encoder.name, "config": dataclasses.asdict(encoder.config)}


def save_text_encoder(encoder: nn.Module, folder: str | Path) -> Path:
    """Write ``config.json``, ``model.safetensors`` and, for word encoders, ``vocab.json``."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    meta = encoder_config_dict(encoder)
    if meta["config"].get("vocab") is not None:
        Vocabulary.from_dict(meta["config"]["vocab"]).save(folder / VOCAB_FILE)
        meta["config"]["vocab"] = VOCAB_FILE
    skip = encoder.frozen_prefixes()
    state = {
        k: v.detach().cpu().contiguous()
        for k, v in encoder.state_dict().items()
        if not k.startswith(skip)
    }
    save_file(state, str(folder / WEIGHTS_FILE))
    (folder / CONFIG_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")
    return folder


def load_text_encoder(folder: str | Path) -> nn.Module:
    """Rebuild an encoder saved by :func:`save_text_encoder`; shapes and names are checked."""
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        meta = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        state = load_file(str(folder / WEIGHTS_FILE))
    except Exception as exc:  # missing file, bad JSON, bad safetensors
        raise ModelLoadError(f"cannot load text encoder from {folder}: {exc}") from exc
    if not isinstance(meta, Mapping) or meta.get("format") != FORMAT:
        raise ModelLoadError(f"{folder / CONFIG_FILE}: not a melodex text encoder config")
    config = dict(meta["config"])
    if isinstance(config.get("vocab"), str):
        config["vocab"] = Vocabulary.load(folder / config["vocab"]).to_dict()
    encoder = build_text_encoder(meta["name"], **config)
    expected = {
        k: v for k, v in encoder.state_dict().items() if not k.startswith(encoder.frozen_prefixes())
    }
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        raise ModelLoadError(
            f"{folder / WEIGHTS_FILE} does not match its config: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}, wrong shape {wrong[:5]}"
        )
    encoder.load_state_dict(state, strict=False)
    return encoder


__all__ = [
    "TEXT_ENCODERS",
    "BiLSTMConfig",
    "BiLSTMEncoder",
    "MeanWordEmbedding",
    "MeanWordEmbeddingConfig",
    "SentenceTransformerConfig",
    "SentenceTransformerEncoder",
    "TrainableTextEncoder",
    "build_text_encoder",
    "load_text_encoder",
    "register_text_encoder",
    "save_text_encoder",
]

# registers "hf_transformer" (BERT, RoBERTa, any AutoModel) beside the encoders above
from melodex.encoders import text_hf as _text_hf  # noqa: E402, F401
