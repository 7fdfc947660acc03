"""Shared parts of the adapters for authors' PyTorch checkpoints (TTMR, TTMR++).

Such a release is a ``.pth`` file (``{"state_dict": ..., "epoch": ..., "optimizer": ...}``,
keys sometimes prefixed ``module.`` by DistributedDataParallel), an ``hparams.yaml`` beside it,
and a Hugging Face text model named in the hparams (``bert-base-uncased``, ``roberta-base``).
This module reads them safely:

- checkpoints with ``torch.load(weights_only=True)``: tensors and plain containers only, never
  pickled code;
- hparams with ``yaml.safe_load``;
- the text tower's *config and tokenizer* from a folder beside the checkpoint named as the
  hparams say (``roberta-base/``), else through transformers' normal hub cache. Its *weights*
  come from the checkpoint, which holds the fine-tuned text encoder.

An adapter saved with ``model.save(folder)`` becomes an ordinary melodex folder: config.json
(the hparams and the text config in ``options``), model.safetensors, and the tokenizer files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from melodex.errors import ModelLoadError


def checkpoint_path(argument: str, *, family: str, weights: str) -> Path:
    """The checkpoint a spec names: a file, or a folder holding exactly one ``.pth``/``.pt``."""
    path = Path(os.path.expanduser(argument))
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix in {".pth", ".pt"})
        if len(found) != 1:
            raise ModelLoadError(
                f"{family}:{argument}: the folder holds {len(found)} .pth/.pt files; "
                "name the checkpoint file itself"
            )
        return found[0]
    if not path.is_file():
        raise ModelLoadError(
            f"{family}:{argument}: no such checkpoint file. Get {weights}; then pass "
            f"--model {family}:PATH/TO/CHECKPOINT.pth"
        )
    return path


def read_state_dict(path: Path, *, family: str) -> dict[str, Any]:
    """A checkpoint's state dict (``module.`` prefixes removed), loaded without unpickling code."""
    import torch

    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError...
        raise ModelLoadError(
            f"{family}:{path}: not a readable weights-only PyTorch checkpoint: {exc}"
        ) from exc
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError(f"{family}:{path}: holds no state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def read_hparams(checkpoint: Path, *, family: str) -> dict[str, Any]:
    """The training hparams beside a checkpoint: ``STEM.yaml``, else ``hparams.yaml``; {} if none."""
    for candidate in (checkpoint.with_suffix(".yaml"), checkpoint.parent / "hparams.yaml"):
        if candidate.is_file():
            import yaml

            try:
                data = yaml.safe_load(candidate.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
                raise ModelLoadError(f"{family}:{candidate}: unreadable hparams: {exc}") from exc
            if not isinstance(data, dict):
                raise ModelLoadError(f"{family}:{candidate}: hparams must be a mapping")
            return data
    return {}


def text_source(checkpoint: Path, name: str) -> str:
    """Where the text tower's config and tokenizer come from: a folder beside the checkpoint
    named ``name`` (or ``name`` itself as a path), else the hub id ``name``."""
    beside = checkpoint.parent / name
    if beside.is_dir():
        return str(beside)
    if Path(os.path.expanduser(name)).is_dir():
        return os.path.expanduser(name)
    return name


def load_text_parts(source: str, *, family: str, checkpoint: Path) -> tuple[Any, Any]:
    """(transformers config, tokenizer) of a text tower; a clear error when not available."""
    from transformers import AutoConfig, AutoTokenizer

    try:
        return AutoConfig.from_pretrained(source), AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"{family}:{checkpoint}: cannot load the text tower's config and tokenizer "
            f"{source!r} ({exc}). Offline, put them in a folder {checkpoint.parent / source} "
            f"(e.g. `huggingface-cli download {source} config.json tokenizer.json vocab.* "
            "merges.txt tokenizer_config.json` on a machine with network)"
        ) from exc


def check_state(
    state: dict[str, Any], expected: dict[str, Any], *, ignore: tuple[str, ...], where: str
) -> dict[str, Any]:
    """The checkpoint's tensors the network uses; fails naming missing, extra or misshapen ones.

    ``ignore``: key suffixes that are training-only or rebuilt (``logit_scale``,
    ``position_ids``), dropped when present.
    """
    used = {k: v for k, v in state.items() if not k.endswith(ignore)}
    missing = sorted(set(expected) - set(used))
    extra = sorted(set(used) - set(expected))
    wrong = [k for k in expected if k in used and tuple(used[k].shape) != tuple(expected[k].shape)]
    if missing or extra or wrong:
        detail = [
            f"{label} {names[:4]}{' ...' if len(names) > 4 else ''}"
            for label, names in (("missing", missing), ("unexpected", extra), ("shape", wrong))
            if names
        ]
        raise ModelLoadError(f"{where}: weights do not fit the architecture: {'; '.join(detail)}")
    return used


def numpy_weights(state: dict[str, Any]) -> dict[str, np.ndarray]:
    """Tensors -> numpy arrays sharing their memory (for identity and saving)."""
    return {k: v.detach().contiguous().numpy() for k, v in state.items()}
