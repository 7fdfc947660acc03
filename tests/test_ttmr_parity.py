"""TTMR through melodex equals the authors' code on the same random weights.

tests/fixtures/ttmr/ is made by ``scripts/record_ttmr_references.py --family ttmr``: the authors'
``ContrastiveModel`` built as their ``get_model()`` builds it (small widths, 2-s windows, random
weights), saved as their ``best.pth`` (keys under DDP's ``module.``) with ``hparams.yaml`` and a
tiny BERT config + tokenizer (``bert-base-uncased/``), and the outputs of the README's
``audio_infer`` / ``text_infer`` on the script's clips and texts (PROVENANCE.json).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from melodex.errors import ModelLoadError
from melodex.models import ttmr
from melodex.models.folder import read_model_folder
from tests.script_modules import load_script  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "ttmr"
CHECKPOINT = FIXTURE / "best.pth"
ATOL = 1e-5


def _script():  # noqa: ANN201
    return load_script("scripts/record_ttmr_references.py")


@pytest.fixture(scope="module")
def ref() -> dict[str, np.ndarray]:
    with np.load(FIXTURE / "reference.npz") as data:
        return dict(data)


@pytest.fixture(scope="module")
def model() -> ttmr.TtmrModel:
    return ttmr.load(str(FIXTURE))  # the folder holding best.pth


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_text_equals_reference(model, ref) -> None:
    texts = json.loads((FIXTURE / "PROVENANCE.json").read_text())["texts"]
    raw = model.encode_text(texts, normalize=False)  # batched and padded, reference one by one
    np.testing.assert_allclose(raw, ref["text_vectors"], atol=ATOL, rtol=0)
    np.testing.assert_allclose(model.encode_text(texts), _unit(ref["text_vectors"]), atol=ATOL)


def test_audio_equals_reference(model, ref) -> None:
    script = _script()
    clips = script.make_clips(16000, script.CLIP_SECONDS["ttmr"])
    embs = [model.embed_waveform(c, max_windows=None) for c in clips]
    windows = np.concatenate([e.window_vectors for e in embs])
    np.testing.assert_allclose(windows, _unit(ref["window_outputs"]), atol=ATOL)
    vectors = model.encode_audio(clips, max_windows=None)  # windows of both tracks in one batch
    np.testing.assert_allclose(vectors, _unit(ref["audio_vectors"]), atol=ATOL)


def test_identity_config_and_licence(model) -> None:
    assert model.dim == 16 and model.sample_rate == 16000 and model.window_samples == 32000
    assert model.identity.startswith("ttmr@") and "CC-BY-NC" in model.licence
    assert model.options.conv_ndim == 8 and model.options.attention_nlayers == 2


def test_saved_folder_reloads_offline(model, tmp_path) -> None:
    folder = model.save(tmp_path / "m")
    again = ttmr.load_folder(*read_model_folder(folder), source=str(folder))
    assert again.identity == model.identity
    np.testing.assert_allclose(again.encode_text(["jazz"]), model.encode_text(["jazz"]), atol=1e-6)


def test_wrong_checkpoints_are_named(tmp_path) -> None:
    with pytest.raises(ModelLoadError, match="zenodo.org/record/7322135"):
        ttmr.load(str(tmp_path / "best.pth"))
    shutil.copytree(FIXTURE / "bert-base-uncased", tmp_path / "bert-base-uncased")
    state = torch.load(CHECKPOINT, weights_only=True)
    del state["state_dict"]["module.audio_encoder.frontend.fc.bias"]
    torch.save(state, tmp_path / "best.pth")
    (tmp_path / "hparams.yaml").write_text((FIXTURE / "hparams.yaml").read_text())
    with pytest.raises(ModelLoadError, match="frontend.fc.bias"):
        ttmr.load(str(tmp_path / "best.pth"))
    (tmp_path / "hparams.yaml").write_text("text_type: glove\n")
    with pytest.raises(ModelLoadError, match="glove"):
        ttmr.load(str(tmp_path / "best.pth"))


def test_loads_through_the_registry_by_spec(model) -> None:
    from melodex.models import load_model

    again = load_model(f"ttmr:{FIXTURE}")
    assert again.source == f"ttmr:{FIXTURE}" and again.identity == model.identity
