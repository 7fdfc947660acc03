"""The musicnn port against outputs recorded from the original TensorFlow code (no TF needed).

tests/fixtures/musicnn_reference.npz is made by scripts/record_musicnn_reference.py: mel inputs
computed as musicnn.extractor does (librosa, reflect padding), and the original graph's tag
probabilities and penultimate features on them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from melodex.encoders.musicnn import (
    MUSICNN_SR,
    N_FRAMES,
    N_MELS,
    WINDOW_SAMPLES,
    MusicnnTagger,
    available_taggers,
    mel_filterbank,
    mel_patches,
    musicnn_log_mel,
)
from melodex.errors import ModelLoadError
from tests.script_modules import load_script

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "musicnn_reference.npz"
NET_ATOL = 1e-4  # tag probabilities and penultimate features
MEL_ATOL = 5e-5  # torch float32 STFT vs librosa float64 FFT, on log10(10000 * mel + 1)


@pytest.fixture(scope="module")
def ref() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as data:
        return dict(data)


@pytest.fixture(scope="module")
def clips() -> dict[str, np.ndarray]:
    return load_script("scripts/record_musicnn_reference.py").make_clips()


@pytest.fixture(scope="module")
def taggers() -> dict[str, MusicnnTagger]:
    return {name: MusicnnTagger.from_pretrained(name) for name in available_taggers()}


def test_constants() -> None:
    assert MUSICNN_SR == 16000 and N_FRAMES == 187 and N_MELS == 96
    assert WINDOW_SAMPLES == 187 * 256
    librosa = pytest.importorskip("librosa")
    # the original: librosa.time_to_frames(input_length=3, ...) + 1
    assert librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1 == N_FRAMES


def test_filterbank_matches_librosa() -> None:
    librosa = pytest.importorskip("librosa")
    expected = librosa.filters.mel(sr=16000, n_fft=512, n_mels=96, norm="slaney", htk=False)
    np.testing.assert_allclose(mel_filterbank(), expected, rtol=1e-6, atol=1e-9)


def test_frontend_matches_librosa() -> None:
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(3)
    y = 0.3 * np.sin(2 * np.pi * 440 * np.arange(40000) / 16000) + 0.05 * rng.standard_normal(40000)
    y = y.astype(np.float32)
    power = librosa.feature.melspectrogram(
        y=y, sr=16000, n_fft=512, hop_length=256, n_mels=96, pad_mode="reflect"
    ).T
    expected = np.log10(10000 * power + 1)
    got = musicnn_log_mel(y).numpy()
    assert got.shape == expected.shape == (1 + 40000 // 256, 96)
    assert np.abs(got - expected).max() < MEL_ATOL


def test_frontend_matches_recorded_mel(ref: dict, clips: dict) -> None:
    for clip, y in clips.items():
        # guards against the synthetic clip drifting from the one that was recorded
        np.testing.assert_allclose(y[:2000], ref[f"{clip}_head"], atol=1e-7)
        got = mel_patches(musicnn_log_mel(y)).numpy()
        assert got.shape == ref[f"{clip}_mel"].shape
        assert np.abs(got - ref[f"{clip}_mel"]).max() < MEL_ATOL, clip


@pytest.mark.parametrize("name", ["MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg"])
@pytest.mark.parametrize("clip", ["music", "loud"])
def test_net_matches_tensorflow(ref: dict, taggers: dict, name: str, clip: str) -> None:
    with torch.inference_mode():
        probs, pen = taggers[name](torch.from_numpy(ref[f"{clip}_mel"]))
    assert np.abs(probs.numpy() - ref[f"{clip}_{name}_probs"]).max() < NET_ATOL
    assert np.abs(pen.numpy() - ref[f"{clip}_{name}_penultimate"]).max() < NET_ATOL


@pytest.mark.parametrize("name", ["MTT_musicnn", "MSD_musicnn"])
def test_net_matches_tensorflow_on_float16_mel(ref: dict, taggers: dict, name: str) -> None:
    """The original's own float16 log-mel, fed to both: the port reproduces it too."""
    with torch.inference_mode():
        probs, pen = taggers[name](torch.from_numpy(ref["music_mel16"].astype(np.float32)))
    assert np.abs(probs.numpy() - ref[f"music_{name}_probs16"]).max() < NET_ATOL
    assert np.abs(pen.numpy() - ref[f"music_{name}_penultimate16"]).max() < NET_ATOL


def test_tags_and_shapes(taggers: dict) -> None:
    mtt, msd = taggers["MTT_musicnn"], taggers["MSD_musicnn"]
    assert len(mtt.tags) == len(msd.tags) == 50
    assert mtt.tags[:3] == ["guitar", "classical", "slow"] and "choral" in mtt.tags
    assert msd.tags[:3] == ["rock", "pop", "alternative"] and "Hip-Hop" in msd.tags
    assert taggers["MTT_vgg"].tags == mtt.tags
    assert mtt.embedding_dim == 200 and taggers["MSD_vgg"].embedding_dim == 256


@pytest.mark.heavy  # trains, runs a real model, or decodes hours: not in the fast tier
def test_sanity_batches_and_determinism(taggers: dict) -> None:
    rng = np.random.default_rng(7)
    patches = torch.from_numpy(rng.uniform(0, 3, (4, N_FRAMES, N_MELS)).astype(np.float32))
    tagger = taggers["MTT_musicnn"]
    with torch.inference_mode():
        p4, e4 = tagger(patches)
        p4b, _ = tagger(patches)
        singles = [tagger(patches[i : i + 1]) for i in range(4)]
    assert p4.shape == (4, 50) and e4.shape == (4, 200)
    assert bool(((p4 >= 0) & (p4 <= 1)).all())
    torch.testing.assert_close(p4, p4b, rtol=0, atol=0)
    torch.testing.assert_close(torch.cat([p for p, _ in singles]), p4, rtol=0, atol=1e-5)
    torch.testing.assert_close(torch.cat([e for _, e in singles]), e4, rtol=0, atol=1e-5)


def test_tag_windows(taggers: dict, clips: dict) -> None:
    tagger = taggers["MSD_musicnn"]
    y = clips["music"]
    windows = y[: 3 * WINDOW_SAMPLES].reshape(3, WINDOW_SAMPLES)
    probs, pen = tagger.tag_windows(windows, batch_size=2)
    assert probs.shape == (3, 50) and pen.shape == (3, 200) and probs.dtype == np.float32
    with torch.inference_mode():
        mel = torch.stack([musicnn_log_mel(w)[:N_FRAMES] for w in windows])
        p_ref, e_ref = tagger(mel)
    np.testing.assert_allclose(probs, p_ref.numpy(), atol=1e-5)
    np.testing.assert_allclose(pen, e_ref.numpy(), atol=1e-5)
    # back-to-back windows reproduce the whole-track patch grid up to the window edges
    whole, _ = tagger.tag_windows(windows[:0])
    assert whole.shape == (0, 50)
    with pytest.raises(ValueError, match=str(WINDOW_SAMPLES)):
        tagger.tag_windows(np.zeros((2, 48000), np.float32))


def test_mel_patches_slicing() -> None:
    mel = torch.arange(400 * 96, dtype=torch.float32).reshape(400, 96)
    patches = mel_patches(mel)
    assert patches.shape == (2, N_FRAMES, 96)
    torch.testing.assert_close(patches[1], mel[187:374])
    assert mel_patches(mel[:186]).shape == (0, N_FRAMES, 96)
    short = musicnn_log_mel(np.zeros(100, np.float32))
    assert short.shape == (1, 96)


def test_loud_audio_stays_finite(clips: dict) -> None:
    mel = musicnn_log_mel(clips["loud"])
    assert bool(torch.isfinite(mel).all()) and float(mel.max()) > np.log10(65504.0)


def test_load_errors() -> None:
    with pytest.raises(ModelLoadError, match="unknown musicnn tagger 'nope'"):
        MusicnnTagger.from_pretrained("nope")
    from safetensors.torch import load as load_bytes

    from melodex.encoders import musicnn

    path = Path(musicnn.__file__).parents[1] / "weights" / "musicnn" / "MTT_musicnn.safetensors"
    tensors = load_bytes(path.read_bytes())
    tagger = MusicnnTagger("MTT_musicnn", [str(i) for i in range(50)])
    bad = dict(tensors, **{"conv2d_5/kernel": torch.zeros(7, 560, 1, 64)})
    with pytest.raises(ModelLoadError, match=r"'conv2d_5/kernel' has shape \(7, 560, 1, 64\)"):
        tagger.load_tf_weights(bad, source="x.safetensors")
    missing = {k: v for k, v in tensors.items() if k != "dense/bias"}
    with pytest.raises(ModelLoadError, match="missing tensor.*dense/bias"):
        tagger.load_tf_weights(missing)
