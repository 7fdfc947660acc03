"""MuQ-MuLan through melodex equals the ``muq`` package on the same random weights.

tests/fixtures/muq_mulan/ is made by ``scripts/record_muq_reference.py``: a tiny ``MuQMuLan``
built by the package (muq==0.1.0, run in a side environment with transformers 4.46, the
version its code was written for), saved with ``save_pretrained`` (the hub layout) beside the
configs of its tiny MuQ and XLM-R sub-models, and the package's ``model(wavs=...)``,
per-clip ``get_audio_latents`` and ``model(texts=[...])`` outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from melodex.errors import ModelLoadError
from melodex.models import muq_mulan
from melodex.models.folder import read_model_folder
from tests.script_modules import load_script  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "muq_mulan"
ATOL = 1e-5


def _script():  # noqa: ANN201
    return load_script("scripts/record_muq_reference.py")


@pytest.fixture(scope="module")
def ref() -> dict[str, np.ndarray]:
    with np.load(FIXTURE / "reference.npz") as data:
        return dict(data)


@pytest.fixture(scope="module")
def model() -> muq_mulan.MuQMuLanModel:
    return muq_mulan.load(str(FIXTURE / "MuQ-MuLan-tiny"))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_text_equals_reference(model, ref) -> None:
    texts = json.loads((FIXTURE / "PROVENANCE.json").read_text())["texts"]
    np.testing.assert_allclose(model.encode_text(texts), ref["text_vectors"], atol=ATOL)


def test_audio_equals_reference(model, ref) -> None:
    clips = _script().make_clips()
    embs = [model.embed_waveform(c, max_windows=None) for c in clips]
    windows = np.concatenate([e.window_vectors for e in embs])
    np.testing.assert_allclose(windows, ref["window_outputs"], atol=ATOL)
    vectors = np.stack([e.vector for e in embs])
    np.testing.assert_allclose(vectors, _unit(ref["audio_vectors"]), atol=ATOL)


def test_clip_rule_wraps_the_tail() -> None:
    y = np.arange(10, dtype=np.float32)
    out = muq_mulan.clips(y, 4)
    assert out.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1]]
    assert muq_mulan.clips(np.arange(3, dtype=np.float32), 8).tolist() == [[0, 1, 2, 0, 1, 2, 0, 1]]


def test_identity_licence_and_saved_folder(model, tmp_path) -> None:
    assert model.dim == 16 and model.sample_rate == 24000 and model.window_samples == 48000
    assert model.identity.startswith("muq-mulan@") and "CC-BY-NC" in model.licence
    folder = model.save(tmp_path / "m")
    again = muq_mulan.load_folder(*read_model_folder(folder), source=str(folder))
    assert again.identity == model.identity
    np.testing.assert_allclose(again.encode_text("jazz"), model.encode_text("jazz"), atol=1e-6)


def test_missing_model_says_what_to_get(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="MuQ-MuLan-large"):
        muq_mulan.load(str(tmp_path / "no-such-folder"))
