"""Which models melodex can load: a static table of names to lazy loaders.

Two kinds of names:

- **architectures**, named in a model folder's ``config.json`` (``zero-shot-tags``,
  ``dual-encoder``, ...): :func:`load_model` reads the folder and hands config and weights to
  the architecture's loader;
- **families**, written ``family:argument`` (e.g. ``clap-hf:laion/clap-htsat-unfused``): a
  pretrained model from outside melodex, loaded by its adapter from a hub id, folder or file.

Loaders are ``"module:function"`` strings, imported only when used, so listing what can be
loaded (``melodex models``) imports no model code.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from melodex.errors import ModelLoadError
from melodex.models.config import ModelConfig
from melodex.models.folder import builtin_models, is_builtin, model_folder, read_model_folder
from melodex.models.protocol import JointModel

DEFAULT_MODEL = "melodex-base"


@dataclass(frozen=True)
class Architecture:
    """A kind of model folder melodex can rebuild."""

    name: str
    loader: str  # "module:function(config, weights, *, source)"
    summary: str
    licence: str  # of the code; a folder's weights carry their own (config.licence)


@dataclass(frozen=True)
class Family:
    """Pretrained models from outside melodex, named ``prefix:argument``."""

    prefix: str
    loader: str  # "module:function(argument) -> JointModel"
    summary: str
    argument: str  # what goes after the colon
    licence: str  # of the released weights
    weights: str  # where a user gets them
    dim: int | None = None  # joint space dimension of the released weights
    sample_rate: int | None = None  # Hz the audio tower expects
    window: str = ""  # the window rule for a whole track
    parameters: str = ""  # size of the released weights, in words
    install: str = ""  # what to pip-install for its code (an extra), if anything


ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture(
            "zero-shot-tags",
            "melodex.models.zero_shot:load",
            "musicnn taggers + a sentence encoder, no paired training (melodex-base)",
            "MIT",
        ),
        Architecture(
            "dual-encoder",
            "melodex.models.dual:load",
            "an audio and a text encoder with projection heads, trained in the lab",
            "MIT",
        ),
        Architecture(
            "linear-projection",
            "melodex.models.linear:load",
            "CCA / WSABIE / random projections of frozen musicnn and sentence features",
            "MIT",
        ),
        Architecture(
            "toy-hash",
            "melodex.models.toy:load",
            "a tiny deterministic model for tests and smoke runs (band energies, hashed words)",
            "MIT",
        ),
        Architecture(
            "distilled-student",
            "melodex.models.student:load",
            "musicnn features + an MLP head distilled from a teacher; text by the teacher",
            "MIT",
        ),
        Architecture(
            "ttmr",
            "melodex.models.ttmr:load_folder",
            "a TTMR checkpoint saved as a melodex folder (tokenizer files beside)",
            "MIT",
        ),
        Architecture(
            "ttmr-pp",
            "melodex.models.ttmr_pp:load_folder",
            "a TTMR++ checkpoint saved as a melodex folder (tokenizer files beside)",
            "MIT",
        ),
        Architecture(
            "muq-mulan",
            "melodex.models.muq_mulan:load_folder",
            "a MuQ-MuLan model saved as a melodex folder (tokenizer files beside)",
            "MIT",
        ),
    )
}

FAMILIES: dict[str, Family] = {
    f.prefix: f
    for f in (
        Family(
            "clap-hf",
            "melodex.models.clap_hf:load",
            "CLAP (HTSAT + RoBERTa) through transformers ClapModel/ClapProcessor",
            "HUB_ID_OR_FOLDER",
            "Apache-2.0 (laion/clap-htsat-unfused, laion/larger_clap_music_and_speech; "
            "a folder's own model card rules)",
            "a transformers CLAP folder (config.json, model.safetensors, tokenizer and "
            "preprocessor files), e.g. `huggingface-cli download laion/larger_clap_music` "
            "on a machine with network, then copy the folder",
            dim=512,
            sample_rate=48000,
            window="10 s windows, hop 10 s (last one zero-padded), mean-pooled; "
            "each window through the processor (fusion or rand_trunc as its config says)",
            parameters="HTSAT-tiny 28M + RoBERTa-base 125M (~153M), HTSAT-base ~194M",
        ),
        Family(
            "laion-clap",
            "melodex.models.laion_clap:load",
            "original LAION-CLAP checkpoints (HTSAT + RoBERTa, fusion on or off), "
            "read with torch.load(weights_only=True)",
            "CHECKPOINT.pt",
            "CC0-1.0 (lukewys/laion_clap)",
            "a .pt file from huggingface.co/lukewys/laion_clap (e.g. "
            "music_audioset_epoch_15_esc_90.14.pt) plus the roberta-base tokenizer files "
            "in a folder `roberta-base/` beside it",
            dim=512,
            sample_rate=48000,
            window="10 s windows, hop 10 s (last one zero-padded), mean-pooled",
            parameters="HTSAT-tiny 28M + RoBERTa-base 125M (~153M), HTSAT-base ~194M",
        ),
        Family(
            "ms-clap",
            "melodex.models.ms_clap:load",
            "Microsoft CLAP releases (2023: HTSAT + GPT-2; 2022: Cnn14 + BERT), msclap's model "
            "code ported, read with torch.load(weights_only=True)",
            "2022|2023|CHECKPOINT.pth",
            "MS-PL (the microsoft/msclap weights' model card); msclap's code is MIT",
            "CLAP_weights_2023.pth or CLAP_weights_2022.pth from huggingface.co/microsoft/msclap "
            "(or its Zenodo record), plus the gpt2 (2023) or bert-base-uncased (2022) tokenizer "
            "files in a folder `gpt2/` or `bert-base-uncased/` beside it",
            dim=1024,
            sample_rate=44100,
            window="2023: 7 s windows, 2022: 5 s windows (hop one window, a tail of half a "
            "window or more zero-padded); a shorter clip repeated whole and cut, as msclap "
            "does; mean of the normalised window vectors",
            parameters="2023 ~157M (HTSAT-tiny + GPT-2 124M), 2022 ~196M (Cnn14 + BERT-base)",
        ),
        Family(
            "muq-mulan",
            "melodex.models.muq_mulan:load",
            "MuQ-MuLan (MuQ audio tower + XLM-R text tower) through the `muq` package",
            "HUB_ID_OR_FOLDER",
            "CC-BY-NC-4.0 (OpenMuQ/MuQ-MuLan-large weights; non-commercial)",
            "the folder of huggingface.co/OpenMuQ/MuQ-MuLan-large",
            dim=512,
            sample_rate=24000,
            window="10 s clips back to back, the last filled with the track's beginning; "
            "mean of the clips' normalised latents",
            parameters="~630M",
        ),
        Family(
            "ttmr",
            "melodex.models.ttmr:load",
            "TTMR (Doh et al. 2023): CNN + transformer audio tower, BERT text tower",
            "CHECKPOINT.pth",
            "CC-BY-NC-4.0 (authors' README; non-commercial)",
            "mtr.tar.gz from zenodo.org/record/7322135 (seungheondoh/music-text-representation)",
            dim=128,
            sample_rate=16000,
            window="9.91 s windows (158,560 samples), a tail of half a window or more "
            "zero-padded, mean-pooled",
        ),
        Family(
            "ttmr-pp",
            "melodex.models.ttmr_pp:load",
            "TTMR++ (Doh et al. 2024): ResNet audio tower, RoBERTa text tower",
            "CHECKPOINT.pth",
            "CC-BY-NC-4.0 (authors' README; non-commercial)",
            "the checkpoint from huggingface.co/seungheondoh/ttmr-pp",
            dim=128,
            sample_rate=22050,
            window="10 s windows after int16 min-max normalisation of the track, a tail of "
            "half a window or more zero-padded, mean-pooled",
        ),
    )
}


def _import(target: str) -> Callable[..., Any]:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _family_loader(family: Family) -> Callable[[str], JointModel]:
    """The family's ``load(argument)``; a clear error when its code or package is missing."""
    module = family.loader.partition(":")[0]
    try:
        return _import(family.loader)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            raise ModelLoadError(
                f"{family.prefix}: this melodex has no adapter module {module} yet"
            ) from exc
        hint = f" ({family.install})" if family.install else ""
        raise ModelLoadError(
            f"{family.prefix}: its code needs the package {exc.name!r}, not installed{hint}"
        ) from exc


def missing_weights(prefix: str, argument: str, reason: str) -> ModelLoadError:
    """The error for a family spec whose weights are not where it says: what to get, where."""
    family = FAMILIES[prefix]
    return ModelLoadError(
        f"{prefix}:{argument}: {reason}. Get {family.weights}; then pass "
        f"--model {prefix}:{family.argument} with its local path"
    )


def split_family(name: str) -> tuple[Family, str] | None:
    """``"clap-hf:laion/x"`` -> (its family, ``"laion/x"``); None when not a family spec."""
    prefix, sep, argument = name.partition(":")
    if not sep or prefix not in FAMILIES:
        return None
    if not argument:
        family = FAMILIES[prefix]
        raise ModelLoadError(f"{name!r}: say which model after the colon ({family.argument})")
    return FAMILIES[prefix], argument


def load_from_folder(folder: Path, *, source: str | None = None) -> JointModel:
    """Rebuild the model a folder holds, by the architecture its config names."""
    config, weights = read_model_folder(folder)
    return build(config, weights, source=source, where=folder / "config.json")


def build(
    config: ModelConfig,
    weights: dict[str, Any],
    *,
    source: str | None = None,
    where: str | Path | None = None,
) -> JointModel:
    """A config and its weights -> the model, through the architecture's loader."""
    arch = ARCHITECTURES.get(config.architecture)
    if arch is None:
        raise ModelLoadError(
            f"{where or config.name}: unknown architecture {config.architecture!r} "
            f"(known: {', '.join(sorted(ARCHITECTURES))})"
        )
    return _import(arch.loader)(config, weights, source=source)


def load_model(name_or_path: str | Path = DEFAULT_MODEL) -> JointModel:
    """Load a built-in model by name, a model folder by path, or a ``family:argument`` spec.

    The model's ``source`` records how to load it again: the built-in name, the folder's
    resolved path, or the spec.
    """
    text = str(name_or_path)
    path = Path(os.path.expanduser(text))  # pathlib raises on an unknown ~user
    if not path.is_dir():
        found = split_family(text)
        if found is not None:
            family, argument = found
            model = _family_loader(family)(argument)
            model.source = text
            return model
    folder = model_folder(name_or_path)
    source = text if is_builtin(text) and not path.is_dir() else str(folder.resolve())
    return load_from_folder(folder, source=source)


def listing() -> dict[str, Any]:
    """What can be loaded, for ``melodex models --json``: architectures, families, built-ins."""
    return {
        "architectures": [asdict(a) for a in ARCHITECTURES.values()],
        "families": [asdict(f) for f in FAMILIES.values()],
        "builtin": builtin_models(),
        "default": DEFAULT_MODEL,
    }
