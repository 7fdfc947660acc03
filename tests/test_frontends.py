"""Front-ends against librosa on seeded signals, and on signals whose answer is known."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from melodex.encoders import musicnn
from melodex.frontends import (
    FRONTENDS,
    HandcraftedFrontend,
    LogMelFrontend,
    MusicnnFrontend,
    frontend_to_config,
    get_frontend,
)

librosa = pytest.importorskip("librosa")


def _noise(seconds: float, sr: int, *, seed: int = 0, batch: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal((batch, int(seconds * sr)))).astype(np.float32)


@pytest.mark.parametrize("pad_mode", ["reflect", "constant"])
@pytest.mark.parametrize(
    "params",
    [
        {},  # the short-chunk preset's STFT and Slaney mel
        {"sample_rate": 16000, "hop": 160, "f_max": 8000.0, "htk": True, "mel_norm": None},
    ],
)
def test_mel_power_matches_librosa(params: dict, pad_mode: str) -> None:
    fe = LogMelFrontend(log="none", pad_mode=pad_mode, **params)
    y = _noise(1.0, fe.sample_rate)
    ours = fe(torch.from_numpy(y)).numpy()
    ref = librosa.feature.melspectrogram(
        y=y,
        sr=fe.sample_rate,
        n_fft=fe.n_fft,
        hop_length=fe.hop,
        n_mels=fe.n_mels,
        fmax=fe.f_max,
        htk=fe.htk,
        norm=fe.mel_norm,
        pad_mode=pad_mode,
    ).transpose(0, 2, 1)
    assert ours.shape == ref.shape == (2, 1 + y.shape[1] // fe.hop, fe.n_mels)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-6 * ref.max())


def test_db_and_log1p_are_the_documented_logs() -> None:
    y = torch.from_numpy(_noise(0.5, 22050))
    mel = LogMelFrontend(log="none")(y).numpy()
    db = LogMelFrontend(log="db")(y).numpy()
    ref_db = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)
    np.testing.assert_allclose(db, ref_db, atol=1e-3)
    log1p = LogMelFrontend(log="log1p", log_scale=100.0)(y).numpy()
    np.testing.assert_allclose(log1p, np.log10(1 + 100.0 * mel), rtol=1e-5, atol=1e-6)


def test_whisper_log_is_per_example() -> None:
    fe = FRONTENDS["ttmrpp"]
    y = torch.from_numpy(_noise(0.5, fe.sample_rate))
    y[1] *= 1e-3  # a much quieter batch-mate must not change example 0
    both = fe(y)
    alone = fe(y[:1])
    torch.testing.assert_close(both[:1], alone)
    assert both.max() <= 1.0 + 1e-6 + float(both[0].max())  # floor at max - 8, scaled by 1/4
    assert float(both[0].max() - both[0].min()) <= 2.0 + 1e-5


@pytest.mark.parametrize(
    ("name", "frames", "mels"),
    [("shortchunk", 173, 128), ("ttmr", 992, 128), ("ttmrpp", 1003, 128), ("musicnn", 187, 96)],
)
def test_preset_output_shapes(name: str, frames: int, mels: int) -> None:
    fe = FRONTENDS[name]
    assert fe.output_shape == (frames, mels)
    out = fe(torch.from_numpy(_noise(fe.window_samples / fe.sample_rate, fe.sample_rate)))
    assert out.shape == (2, frames, mels)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_shortchunk_preset_is_the_seed_setting() -> None:
    fe = FRONTENDS["shortchunk"]
    assert (fe.sample_rate, fe.n_fft, fe.hop, fe.n_mels, fe.n_frames) == (
        22050,
        1024,
        512,
        128,
        173,
    )


def test_musicnn_frontend_reuses_the_port_and_feeds_autograd() -> None:
    y = _noise(musicnn.WINDOW_SAMPLES / musicnn.MUSICNN_SR, musicnn.MUSICNN_SR)
    out = MusicnnFrontend()(torch.from_numpy(y))
    torch.testing.assert_close(out, musicnn.window_log_mels(y))
    assert not out.is_inference()
    with pytest.raises(ValueError, match="fixed"):
        MusicnnFrontend(sample_rate=22050)


def test_keys_are_stable_and_distinct() -> None:
    keys = {name: fe.key() for name, fe in FRONTENDS.items()}
    assert len(set(keys.values())) == len(keys)
    assert LogMelFrontend().key() == LogMelFrontend().key() == keys["shortchunk"]
    assert LogMelFrontend(hop=256).key() != keys["shortchunk"]
    assert keys["shortchunk"].startswith("logmel/v1/sample_rate=22050,n_fft=1024,hop=512")


@pytest.mark.parametrize("fe", [*FRONTENDS.values(), LogMelFrontend(n_mels=64, log="log1p")])
def test_config_round_trips_through_json(fe) -> None:
    assert get_frontend(json.loads(json.dumps(fe.to_dict()))) == fe
    assert get_frontend(json.loads(json.dumps(frontend_to_config(fe)))) == fe


def test_bad_configs_name_the_problem() -> None:
    with pytest.raises(ValueError, match="unknown front-end preset 'nope'"):
        get_frontend("nope")
    with pytest.raises(ValueError, match=r"parameter\(s\) \['hopp'\]"):
        get_frontend({"type": "logmel", "hopp": 3})
    with pytest.raises(ValueError, match="unknown log 'ln'"):
        LogMelFrontend(log="ln")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"expected waveforms of shape \(B, samples\)"):
        LogMelFrontend()(torch.zeros(100))


def test_handcrafted_features_have_the_documented_layout() -> None:
    fe = HandcraftedFrontend()
    assert fe.feature_dim == 30 == len(fe.feature_names())
    out = fe(torch.from_numpy(_noise(1.0, fe.sample_rate)))
    assert out.shape == (2, 30) and out.dtype == torch.float32
    assert fe.feature_names()[26:] == ["rolloff_mean", "rolloff_std", "zcr_mean", "zcr_std"]


def test_handcrafted_zcr_of_a_sine() -> None:
    fe = HandcraftedFrontend()
    sr = fe.sample_rate
    t = np.arange(3 * sr) / sr  # 3 s: the two half-empty edge frames weigh ~1 %
    y = np.stack([np.sin(2 * np.pi * f * t + 0.1) for f in (220.0, 1000.0)]).astype(np.float32)
    out = fe(torch.from_numpy(y)).numpy()
    zcr = out[:, 28]
    np.testing.assert_allclose(zcr, [2 * 220.0 / sr, 2 * 1000.0 / sr], rtol=0.02)
    assert (out[:, 29] < 0.1 * zcr).all()  # steady over frames


def test_handcrafted_rolloff_of_low_passed_noise() -> None:
    fe = HandcraftedFrontend()
    sr, cutoff = fe.sample_rate, 2000.0
    white = _noise(1.0, sr, seed=3, batch=1)[0]
    spec = np.fft.rfft(white)
    spec[np.fft.rfftfreq(white.size, 1 / sr) > cutoff] = 0
    low = np.fft.irfft(spec, n=white.size).astype(np.float32)
    out = fe(torch.from_numpy(np.stack([white, low]))).numpy()
    rolloff_white, rolloff_low = out[:, 26]
    assert rolloff_low < cutoff
    assert rolloff_white > 0.8 * sr / 2  # 85 % of a flat spectrum's energy lies below 0.85 Nyquist
