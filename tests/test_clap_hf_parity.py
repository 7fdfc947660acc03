"""clap-hf against transformers itself: a random-weight CLAP folder (tiny ClapConfig + a BPE
tokenizer trained here, saved with save_pretrained) loaded through melodex gives the same text
and audio embeddings as ``ClapModel.get_text_features`` / ``get_audio_features`` on the
processor's inputs, to 1e-5; and a library indexed with it answers every door."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")

import torch  # noqa: E402
from transformers import ClapModel, ClapProcessor  # noqa: E402

from melodex.errors import ModelLoadError  # noqa: E402
from melodex.models import load_model  # noqa: E402
from melodex.models.clap_hf import repeat_pad  # noqa: E402
from tests.clap_fixtures import SENTENCES, make_clap_folder  # noqa: E402

SR = 48000
WINDOW = 10 * SR
TEXTS = ["calm piano", "a reggae guitar with latin percussion and a trumpet", *SENTENCES[:3]]


@pytest.fixture(scope="module", params=[False, True], ids=["unfused", "fused"])
def folder(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clap_folder(tmp_path_factory.mktemp("clap") / "tiny-clap", fusion=request.param)


def reference(folder: Path) -> tuple[ClapModel, ClapProcessor]:
    return ClapModel.from_pretrained(str(folder)).eval(), ClapProcessor.from_pretrained(str(folder))


def signal(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    tone = 0.3 * np.sin(2 * np.pi * (220 + 200 * rng.random()) * t)
    return (tone + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


def test_text_embeddings_equal_transformers(folder: Path) -> None:
    model = load_model(f"clap-hf:{folder}")
    ref, proc = reference(folder)
    with torch.inference_mode():
        inputs = proc.tokenizer(TEXTS, padding=True, truncation=True, return_tensors="pt")
        expected = ref.get_text_features(**inputs).pooler_output.numpy()
    got = model.encode_text(TEXTS, batch_size=2)
    assert got.shape == (len(TEXTS), model.dim) == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert np.abs(got[0] - got[1]).max() > 1e-3  # different texts, different vectors


def test_audio_windows_and_track_equal_transformers(folder: Path) -> None:
    model = load_model(f"clap-hf:{folder}")
    ref, proc = reference(folder)
    y = signal(15.0)  # a full window and a 5 s tail (kept, zero-padded)
    emb = model.embed_waveform(y, max_windows=None)
    chunks = [y[:WINDOW], np.pad(y[WINDOW:], (0, 5 * SR))]
    feats = proc.feature_extractor(chunks, sampling_rate=SR, return_tensors="pt")
    with torch.inference_mode():
        # is_longer False for all (the processor marks a random clip True when fusing)
        expected = ref.get_audio_features(
            input_features=feats["input_features"], is_longer=torch.zeros(2, 1, dtype=torch.bool)
        ).pooler_output.numpy()
    np.testing.assert_allclose(emb.window_vectors, expected, atol=1e-5)
    mean = expected.mean(axis=0)
    np.testing.assert_allclose(emb.vector, mean / np.linalg.norm(mean), atol=1e-5)
    np.testing.assert_allclose(emb.window_starts, [0.0, 10.0])
    batched = model.encode_audio([y, y[: 4 * SR]], batch_size=2, max_windows=None)
    np.testing.assert_allclose(batched[0], emb.vector, atol=1e-5)


def test_short_clip_is_repeat_padded_as_the_processor_does(folder: Path) -> None:
    model = load_model(f"clap-hf:{folder}")
    ref, proc = reference(folder)
    y = signal(3.5, seed=1)
    feats = proc.feature_extractor(y, sampling_rate=SR, padding="repeatpad", return_tensors="pt")
    padded = repeat_pad(y, WINDOW)
    np.testing.assert_array_equal(padded[: 2 * len(y)], np.tile(y, 2))
    assert not padded[2 * len(y) :].any()
    with torch.inference_mode():
        expected = ref.get_audio_features(
            input_features=feats["input_features"], is_longer=torch.zeros(1, 1, dtype=torch.bool)
        ).pooler_output.numpy()[0]
    np.testing.assert_allclose(model.embed_waveform(y).vector, expected, atol=1e-5)


def test_identity_licence_and_missing_folder(folder: Path, tmp_path: Path) -> None:
    model = load_model(f"clap-hf:{folder}")
    assert model.source == f"clap-hf:{folder}"
    assert model.identity.startswith("clap-hf:tiny-clap@")
    assert model.licence and model.sample_rate == SR and model.config.window_seconds == 10.0
    other = load_model(f"clap-hf:{make_clap_folder(tmp_path / 'tiny-clap', seed=1)}")
    assert other.identity != model.identity  # same name, other weights
    with pytest.raises(ModelLoadError, match="no such folder.*Get a transformers CLAP folder"):
        load_model(f"clap-hf:{tmp_path / 'absent'}")


def test_uncached_hub_id_offline_says_what_to_download(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="transformers could not load it.*Get a transformers"):
        load_model("clap-hf:melodex-tests/no-such-clap-model")
