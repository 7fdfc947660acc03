"""melodex.descriptors on synthetic signals whose tempo, key and loudness are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from melodex.descriptors import (
    ANALYSIS_SR,
    DescriptorFilter,
    Descriptors,
    KeyFilter,
    analysis_excerpts,
    describe_signal,
    descriptor_filters,
    estimate_key,
    k_weighting,
    loudness,
    parse_bpm_range,
    parse_key_filter,
    pitch_class,
)
from tests.script_modules import load_script

SR = 22050


def click_train(bpm: float, *, seconds: float = 12.0, sr: int = SR) -> np.ndarray:
    """Decaying 1 kHz blips every beat, with a little seeded noise."""
    rng = np.random.default_rng(0)
    y = 0.001 * rng.standard_normal(int(seconds * sr))
    blip_t = np.arange(int(0.03 * sr)) / sr
    blip = np.sin(2 * np.pi * 1000 * blip_t) * np.exp(-blip_t / 0.008)
    for onset in np.arange(0.1, seconds - 0.05, 60.0 / bpm):
        i = int(onset * sr)
        y[i : i + blip.size] += 0.8 * blip[: y.size - i]
    return y.astype(np.float32)


def tone(midi: int, seconds: float, *, sr: int = SR) -> np.ndarray:
    """A note with five decaying harmonics and a short attack and release."""
    t = np.arange(int(seconds * sr)) / sr
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    y = sum(
        0.6**k * np.sin(2 * np.pi * f0 * (k + 1) * t) for k in range(5) if f0 * (k + 1) < sr / 2
    )
    env = np.minimum(1.0, np.minimum(t / 0.02, (seconds - t) / 0.05))
    return np.asarray(y * env, dtype=np.float64)


def tonal_passage(tonic: int, intervals: list[int], triad: list[int]) -> np.ndarray:
    """Scale up and down (0.25 s a note), then the tonic triad held for 3 s, twice."""
    scale = [tonic + i for i in intervals] + [tonic + 12]
    notes = [tone(m, 0.25) for m in scale + scale[::-1]]
    chord = sum(tone(tonic + i, 3.0) for i in triad) + tone(tonic - 12, 3.0)
    y = np.concatenate(notes + [chord] + notes + [chord])
    return (0.2 * y / np.abs(y).max()).astype(np.float32)


# --------------------------------------------------------------------------- tempo


@pytest.mark.parametrize("bpm", [120.0, 90.0])
def test_click_train_tempo(bpm: float) -> None:
    d = describe_signal(click_train(bpm), sr=SR)
    assert d.bpm is not None and abs(d.bpm - bpm) <= 0.02 * bpm
    assert d.bpm_confidence > 0.5
    assert d.duration == pytest.approx(12.0)


def test_tempo_at_the_indexing_rate() -> None:
    d = describe_signal(click_train(120.0, sr=16000), sr=16000)
    assert d.bpm == pytest.approx(120.0, rel=0.02)


def test_noise_has_low_tempo_confidence() -> None:
    y = 0.1 * np.random.default_rng(1).standard_normal(10 * SR).astype(np.float32)
    assert (
        describe_signal(y, sr=SR).bpm_confidence
        < describe_signal(click_train(120.0), sr=SR).bpm_confidence
    )


# --------------------------------------------------------------------------- key


def test_d_major() -> None:
    y = tonal_passage(62, [0, 2, 4, 5, 7, 9, 11], [0, 4, 7])
    d = describe_signal(y, sr=SR)
    assert (d.key, d.mode) == ("D", "major")
    assert 0 < d.key_confidence <= 1


def test_a_minor() -> None:
    y = tonal_passage(57, [0, 2, 3, 5, 7, 8, 11], [0, 3, 7])  # harmonic minor
    d = describe_signal(y, sr=SR)
    assert (d.key, d.mode) == ("A", "minor")


def test_key_spelling_and_profiles() -> None:
    y = tonal_passage(63, [0, 2, 4, 5, 7, 9, 11], [0, 4, 7])  # E-flat major
    excerpts = analysis_excerpts(y, sr=SR)
    assert estimate_key(excerpts, profile="temperley")[:2] == ("Eb", "major")
    with pytest.raises(ValueError, match="unknown key profile 'nope'"):
        estimate_key(excerpts, profile="nope")


# --------------------------------------------------------------------------- silence, short


@pytest.mark.parametrize("n", [0, 1, 100, SR // 2, 5 * SR])
def test_silence_gives_none(n: int) -> None:
    d = describe_signal(np.zeros(n, np.float32), sr=SR)
    assert d == Descriptors(None, 0.0, None, None, 0.0, None, round(n / SR, 3))


@pytest.mark.parametrize("seconds", [1 / SR, 0.01, 0.3, 1.0])
def test_very_short_signals_do_not_crash(seconds: float) -> None:
    n = max(1, int(seconds * SR))
    y = (0.5 * np.sin(2 * np.pi * 440 * np.arange(n) / SR)).astype(np.float32)
    d = describe_signal(y, sr=SR)
    assert d.bpm is None  # shorter than MIN_TEMPO_S
    assert d.key is None and d.mode is None  # shorter than MIN_KEY_S
    assert d.loudness_lufs is None or math.isfinite(d.loudness_lufs)
    assert d.duration == round(n / SR, 3)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="1-D mono"):
        describe_signal(np.zeros((2, 100), np.float32), sr=SR)
    with pytest.raises(ValueError, match="NaN"):
        describe_signal(np.array([0.0, np.nan], np.float32), sr=SR)
    with pytest.raises(ValueError, match="sr must be a positive integer"):
        describe_signal(np.zeros(10, np.float32), sr=0)
    with pytest.raises(ValueError, match="floats"):
        describe_signal(np.zeros(10, np.int16), sr=SR)


def test_long_signal_is_analysed_in_four_spread_excerpts() -> None:
    sr = ANALYSIS_SR  # no resampling, so the samples can be read back as time
    y = (np.arange(180 * sr) / sr).astype(np.float32)
    parts = analysis_excerpts(y, sr=sr)
    assert [p.shape[0] for p in parts] == [15 * sr] * 4
    assert [round(float(np.median(p)), 1) for p in parts] == [22.5, 67.5, 112.5, 157.5]
    assert len(analysis_excerpts(y[: 60 * sr], sr=sr)) == 1


# --------------------------------------------------------------------------- loudness


def test_k_weighting_matches_the_standard_at_48k() -> None:
    sos = k_weighting(48000)
    shelf = [1.53512485958697, -2.69169618940638, 1.19839281085285, 1, -1.69065929318241,
             0.73248077421585]  # fmt: skip
    hp = [1.0, -2.0, 1.0, 1, -1.99004745483398, 0.99007225036621]
    np.testing.assert_allclose(sos, [shelf, hp], atol=1e-8)


@pytest.mark.parametrize("sr", [48000, 44100, 22050, 16000])
@pytest.mark.parametrize("db", [0.0, -20.0])
def test_sine_loudness(sr: int, db: float) -> None:
    t = np.arange(5 * sr) / sr
    y = (10 ** (db / 20) * np.sin(2 * np.pi * 997 * t)).astype(np.float32)
    assert loudness(y, sr=sr) == pytest.approx(db - 3.01, abs=0.1 if sr >= 44100 else 0.15)


def test_loudness_gates_silence_and_quiet_parts() -> None:
    sr = 16000
    t = np.arange(4 * sr) / sr
    loud = np.sin(2 * np.pi * 997 * t) * 0.1
    y = np.concatenate([loud, np.zeros(8 * sr)]).astype(np.float32)
    # the silence is gated away; only the few blocks straddling the end of the tone count extra
    assert loudness(y, sr=sr) == pytest.approx(loudness(loud.astype(np.float32), sr=sr), abs=0.25)
    assert loudness(np.full(sr, 1e-5, np.float32), sr=sr) is None  # -100 dBFS: below -70 LUFS


# --------------------------------------------------------------------------- filters


def test_parse_bpm_range() -> None:
    assert parse_bpm_range("60-90") == (60.0, 90.0)
    assert parse_bpm_range(" 60.5 .. 90 bpm") == (60.5, 90.0)
    assert parse_bpm_range("100") == (96.0, 104.0)
    for bad in ["", "fast", "90-60", "0-10", "60-", "-5", "60-900"]:
        with pytest.raises(ValueError, match="bad bpm range"):
            parse_bpm_range(bad)


def test_parse_key_filter() -> None:
    assert parse_key_filter("minor") == KeyFilter(None, "minor")
    assert parse_key_filter("MAJOR") == KeyFilter(None, "major")
    assert parse_key_filter("D") == KeyFilter(2, None)
    assert parse_key_filter("D minor") == KeyFilter(2, "minor")
    assert parse_key_filter("f# maj") == KeyFilter(6, "major")
    assert parse_key_filter("Bbm") == KeyFilter(10, "minor")
    assert parse_key_filter("E-flat major") == KeyFilter(3, "major")
    assert parse_key_filter("Cb") == KeyFilter(11, None)
    for bad in ["", "H", "D dorian", "minor D", "Dx"]:
        with pytest.raises(ValueError, match="key filter"):
            parse_key_filter(bad)


def test_key_filter_predicate() -> None:
    f = parse_key_filter("C# minor")
    assert f("Db", "minor") and f("C#", "minor")
    assert not f("C#", "major") and not f(None, None) and not f("D", "minor")
    assert parse_key_filter("minor")("A", "minor") and not parse_key_filter("minor")(None, None)
    assert parse_key_filter("G")("G", "major") and parse_key_filter("G")("G", "minor")


def test_descriptor_filters() -> None:
    f = descriptor_filters('--bpm 60-90 --key "D minor"')
    assert f == DescriptorFilter(bpm=(60.0, 90.0), key=KeyFilter(2, "minor"))
    assert descriptor_filters("--key D minor").key == KeyFilter(2, "minor")
    assert descriptor_filters("--key=minor --bpm=120").bpm == (115.2, 124.8)
    assert descriptor_filters("") == DescriptorFilter()
    track = Descriptors(75.0, 0.5, "D", "minor", 0.8, -14.0, 30.0)
    assert f(track)
    assert not f(Descriptors(150.0, 0.5, "D", "minor", 0.8, -14.0, 30.0))
    assert descriptor_filters("--bpm 60-90", octaves=True)(
        Descriptors(150.0, 0.5, "D", "minor", 0.8, -14.0, 30.0)
    )
    for bad, msg in [
        ("--tempo 60-90", "unknown option '--tempo'"),
        ("--bpm", "--bpm needs a value"),
        ("--bpm 60-90 --bpm 70-80", "--bpm given twice"),
        ("--key 'D minor", "bad filter spec"),
        ("--bpm slow", "bad bpm range 'slow'"),
        ("--key Q", "bad key filter 'Q'"),
    ]:
        with pytest.raises(ValueError, match=msg):
            descriptor_filters(bad)


def test_pitch_class() -> None:
    assert [pitch_class(k) for k in ("C", "c#", "Db", "E-flat", "B#", "F♯")] == [0, 1, 1, 3, 12, 6]


# --------------------------------------------------------------------------- validation metrics


def _validator():  # noqa: ANN202 (a script module)
    return load_script("scripts/validate_descriptors.py")


def test_validation_metrics() -> None:
    v = _validator()
    assert v.tempo_hits(100.0, 100.0) == (True, True)
    assert v.tempo_hits(103.9, 100.0) == (True, True)
    assert v.tempo_hits(200.0, 100.0) == (False, True)
    assert v.tempo_hits(33.0, 100.0) == (False, True)
    assert v.tempo_hits(150.0, 100.0) == (False, False)
    assert v.tempo_hits(None, 100.0) == (False, False)
    rel = v.key_relation
    assert rel("D", "major", "D", "major") == "exact"
    assert rel("A", "major", "D", "major") == "fifth"
    assert rel("G", "major", "D", "major") == "other"  # a fifth below: not credited (mir_eval)
    assert rel("B", "minor", "D", "major") == "relative"
    assert rel("F", "major", "D", "minor") == "relative"
    assert rel("D", "minor", "D", "major") == "parallel"
    assert rel(None, None, "D", "major") == "other"
    s = v.summarise_keys(["exact", "fifth", "relative", "parallel", "other"])
    assert s["mirex"] == pytest.approx((1 + 0.5 + 0.3 + 0.2) / 5)
    with pytest.raises(ValueError, match="major or minor"):
        rel("D", "major", "D", "dorian")
