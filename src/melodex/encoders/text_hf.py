"""Any Hugging Face transformer as a trainable text tower (BERT for TTMR, RoBERTa for TTMR++).

``hf_transformer`` takes ``model``: a local folder (what works offline) or a hub id (downloaded
by transformers when a network is there). The text vector is the first token's hidden state
(``pooling="cls"``, BERT's [CLS] / RoBERTa's <s>, as TTMR and TTMR++ use) or the masked mean
of the tokens (``"mean"``). ``init="random"`` builds the same architecture with fresh weights
(for size benchmarks without weights); the tokenizer always comes from ``model``.

The transformer's weights are saved with a trained model when ``trainable`` is on; the
tokenizer is not copied: ``model`` must still be there when the model folder is loaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from melodex.encoders.text_trainable import _check_texts, _device_of, register_text_encoder
from melodex.errors import ModelLoadError, ParameterError


@dataclass
class HFTransformerConfig:
    model: str = "bert-base-uncased"  # a folder, or a hub id
    pooling: str = "cls"  # cls | mean
    trainable: bool = True
    max_seq_length: int = 128
    init: str = "pretrained"  # pretrained | random (same architecture, fresh weights)


def _load(config: HFTransformerConfig) -> tuple[Any, nn.Module]:
    import transformers
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    transformers.utils.logging.disable_progress_bar()
    where = config.model
    if Path(where).is_dir():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a folder must not trigger hub look-ups
    try:
        tokenizer = AutoTokenizer.from_pretrained(where)
        if config.init == "random":
            model = AutoModel.from_config(AutoConfig.from_pretrained(where))
        else:
            model = AutoModel.from_pretrained(where)
    except Exception as exc:  # offline hub id, missing files, ...: name the model
        raise ModelLoadError(
            f"cannot load Hugging Face model {where!r} (offline, give a local folder): {exc}"
        ) from exc
    return tokenizer, model


@register_text_encoder("hf_transformer", HFTransformerConfig)
class HFTransformerEncoder(nn.Module):
    """A transformers ``AutoModel`` + its tokenizer; [CLS] or mean pooling."""

    def __init__(self, config: HFTransformerConfig):
        super().__init__()
        if config.pooling not in ("cls", "mean"):
            raise ParameterError(
                f"hf_transformer: pooling must be cls or mean, not {config.pooling!r}"
            )
        if config.init not in ("pretrained", "random"):
            raise ParameterError(
                f"hf_transformer: init must be pretrained or random, not {config.init!r}"
            )
        self.config = config
        self.tokenizer, self.transformer = _load(config)
        self._out_dim = int(self.transformer.config.hidden_size)
        self.transformer.requires_grad_(config.trainable)
        if not config.trainable:
            self.transformer.eval()

    @property
    def out_dim(self) -> int:
        return self._out_dim

    def train(self, mode: bool = True) -> HFTransformerEncoder:
        super().train(mode)
        if not self.config.trainable:
            self.transformer.eval()
        return self

    def frozen_prefixes(self) -> tuple[str, ...]:
        """A frozen pretrained transformer is reloaded from ``model``, not saved."""
        frozen = not self.config.trainable and self.config.init == "pretrained"
        return ("transformer.",) if frozen else ()

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        limit = min(self.config.max_seq_length, int(self.tokenizer.model_max_length or 512))
        return dict(
            self.tokenizer(
                _check_texts(texts),
                padding=True,
                truncation=True,
                max_length=limit,
                return_tensors="pt",
            )
        )

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        device = _device_of(self)
        inputs = {k: v.to(device) for k, v in batch.items()}
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.config.trainable):
            hidden = self.transformer(**inputs, return_dict=True).last_hidden_state
        if self.config.pooling == "cls":
            return hidden[:, 0]
        mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


__all__ = ["HFTransformerConfig", "HFTransformerEncoder"]
