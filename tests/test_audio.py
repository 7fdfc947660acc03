"""melodex.audio on real files in every format, made here from a seeded signal."""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from melodex import audio
from melodex.audio import (
    SUPPORTED_EXTENSIONS,
    AudioInfo,
    frame_windows,
    load_audio,
    probe,
    read_tags,
    select_windows,
)
from melodex.errors import AudioDecodeError
from tests.audio_files import (
    FFMPEG_FORMATS,
    LOSSLESS,
    SECONDS,
    SOUNDFILE_FORMATS,
    SR,
    TAGS,
    TONE_HZ,
    dominant_hz,
    make_all,
    stereo_signal,
    truncate,
    write_ffmpeg,
    write_soundfile,
)

FORMATS = sorted(SOUNDFILE_FORMATS) + sorted(FFMPEG_FORMATS)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_all(tmp_path_factory.mktemp("audio"))


# --------------------------------------------------------------------------- decoding


@pytest.mark.parametrize("ext", FORMATS)
@pytest.mark.parametrize("sr", [16000, 22050])
def test_decode_every_format(files: dict[str, Path], ext: str, sr: int) -> None:
    y = load_audio(files[ext], sr=sr)
    assert y.dtype == np.float32 and y.ndim == 1 and y.flags.c_contiguous
    if ext in LOSSLESS:
        assert len(y) == round(SECONDS * sr)
    else:  # codec priming/padding: a few ms at most
        assert abs(len(y) / sr - SECONDS) < 0.06, len(y) / sr
    assert abs(dominant_hz(y, sr) - TONE_HZ) < 1.0
    assert 0.2 < np.sqrt(np.mean(y**2)) < 0.5  # the tone survived at the right level
    assert np.array_equal(y, load_audio(files[ext], sr=sr)), "decoding must be deterministic"


def test_supported_extensions_cover_brief() -> None:
    wanted = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".mp4", ".aif"}
    assert wanted | {".aiff", ".wma"} <= SUPPORTED_EXTENSIONS
    assert all(e == e.lower() and e.startswith(".") for e in SUPPORTED_EXTENSIONS)


@pytest.mark.parametrize("channels", [1, 2, 6])
def test_downmix_is_channel_mean_at_native_rate(tmp_path: Path, channels: int) -> None:
    rng = np.random.default_rng(channels)
    x = rng.uniform(-0.9, 0.9, size=(70000, channels)).astype(np.float32)  # > one read block
    path = tmp_path / "float.wav"
    sf.write(path, x, 8000, subtype="FLOAT")
    y = load_audio(path, sr=8000)
    np.testing.assert_allclose(y, x.mean(axis=1), rtol=0, atol=1e-6)
    if channels == 2:  # (L + R) / 2 exactly
        np.testing.assert_array_equal(y, (x[:, 0] + x[:, 1]) * np.float32(0.5))


def test_uppercase_extension_and_str_path(files: dict[str, Path], tmp_path: Path) -> None:
    upper = tmp_path / "TONE.FLAC"
    upper.write_bytes(files[".flac"].read_bytes())
    assert len(load_audio(str(upper), sr=16000)) == round(SECONDS * 16000)


@pytest.mark.parametrize("ext", [".wav", ".m4a", ".mp3"])
def test_offset_and_duration_slice_the_native_signal(files: dict[str, Path], ext: str) -> None:
    full = load_audio(files[ext], sr=SR)
    part = load_audio(files[ext], sr=SR, offset=1.0, duration=0.5)
    assert len(part) == SR // 2
    if ext in {".wav", ".m4a"}:  # exact seek (wav) / decode-and-drop (FFmpeg path)
        np.testing.assert_array_equal(part, full[SR : SR + SR // 2])
    else:  # mpg123 seeks through its own frame index: allow a tiny alignment difference
        np.testing.assert_allclose(part, full[SR : SR + SR // 2], atol=2e-3)


@pytest.mark.parametrize("ext", [".flac", ".m4a"])
def test_offset_duration_resampled(files: dict[str, Path], ext: str) -> None:
    y = load_audio(files[ext], sr=16000, offset=0.5, duration=2.0)
    assert len(y) == 32000
    assert abs(dominant_hz(y, 16000) - TONE_HZ) < 1.0
    tail = load_audio(files[ext], sr=16000, offset=2.5)  # to the end
    assert abs(len(tail) / 16000 - 0.5) < 0.06
    longer = load_audio(files[ext], sr=16000, offset=2.0, duration=10.0)  # clipped at the end
    assert abs(len(longer) / 16000 - 1.0) < 0.06


@pytest.mark.parametrize("ext", [".wav", ".m4a"])
def test_offset_past_end_is_zero_length(files: dict[str, Path], ext: str) -> None:
    with pytest.raises(AudioDecodeError, match="zero-length audio"):
        load_audio(files[ext], sr=16000, offset=10.0)


def test_bad_arguments_are_value_errors(files: dict[str, Path]) -> None:
    for kwargs in ({"sr": 0}, {"sr": 16000, "offset": -1.0}, {"sr": 16000, "duration": 0.0}):
        with pytest.raises(ValueError):
            load_audio(files[".wav"], **kwargs)


# --------------------------------------------------------------------------- probe and tags


@pytest.mark.parametrize("ext", FORMATS)
def test_probe(files: dict[str, Path], ext: str) -> None:
    info = probe(files[ext])
    assert isinstance(info, AudioInfo)
    assert info.channels == 2
    assert info.sample_rate == (48000 if ext == ".opus" else SR)
    assert abs(info.duration - SECONDS) < 0.06
    assert info.codec and info.format


@pytest.mark.parametrize("ext", FORMATS)
def test_tags_read_back(files: dict[str, Path], ext: str) -> None:
    tags = read_tags(files[ext])
    expected = {k: TAGS[k] for k in ("title", "artist")} if ext == ".aiff" else TAGS
    assert {k: tags.get(k) for k in expected} == expected


def test_tags_absent_and_unparseable(tmp_path: Path) -> None:
    bare = write_soundfile(tmp_path / "bare.wav", stereo_signal(0.1))
    assert read_tags(bare) == {}
    bare_mp3 = write_ffmpeg(tmp_path / "bare.mp3", bare)
    assert set(read_tags(bare_mp3)) <= {"date"}  # nothing but what an encoder might stamp
    junk = tmp_path / "junk.flac"
    junk.write_bytes(b"not a flac at all" * 10)
    assert read_tags(junk) == {}
    with pytest.raises(AudioDecodeError, match="file not found"):
        read_tags(tmp_path / "missing.mp3")


def test_id3_in_wav(tmp_path: Path) -> None:
    from mutagen.id3 import TCON, TIT2, TPE1
    from mutagen.wave import WAVE

    path = write_soundfile(tmp_path / "id3.wav", stereo_signal(0.1))
    wav = WAVE(path)
    wav.add_tags()
    wav.tags.add(TIT2(encoding=3, text="Wave Title"))
    wav.tags.add(TPE1(encoding=3, text=["A", "B"]))
    wav.tags.add(TCON(encoding=3, text="Folk"))
    wav.save()
    assert read_tags(path) == {"title": "Wave Title", "artist": "A; B", "genre": "Folk"}


# --------------------------------------------------------------------------- errors


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioDecodeError, match="file not found") as err:
        load_audio(tmp_path / "nope.flac", sr=16000)
    assert err.value.path.endswith("nope.flac")
    with pytest.raises(AudioDecodeError, match="file not found"):
        probe(tmp_path / "nope.flac")


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp3"
    path.touch()
    with pytest.raises(AudioDecodeError, match=r"empty file \(zero bytes\)"):
        load_audio(path, sr=16000)


def test_text_named_mp3(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp3"
    path.write_text("These are my shopping notes, not a song.\n" * 20)
    with pytest.raises(AudioDecodeError, match="not an audio file"):
        load_audio(path, sr=16000)
    with pytest.raises(AudioDecodeError, match="not an audio file"):
        probe(path)
    assert read_tags(path) == {}


def test_random_bytes_named_wav(tmp_path: Path) -> None:
    path = tmp_path / "noise.wav"
    path.write_bytes(np.random.default_rng(2).bytes(20000))
    with pytest.raises(AudioDecodeError, match="not an audio file"):
        load_audio(path, sr=16000)


def test_unsupported_extension(tmp_path: Path, files: dict[str, Path]) -> None:
    path = tmp_path / "tone.xyz"
    path.write_bytes(files[".wav"].read_bytes())
    with pytest.raises(AudioDecodeError, match=r"unsupported extension \.xyz"):
        load_audio(path, sr=16000)


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "album.flac"
    folder.mkdir()
    with pytest.raises(AudioDecodeError, match="is a directory"):
        load_audio(folder, sr=16000)


def test_unreadable_file(tmp_path: Path, files: dict[str, Path]) -> None:
    path = tmp_path / "locked.wav"
    path.write_bytes(files[".wav"].read_bytes())
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("this user can read a chmod 000 file (root)")
        with pytest.raises(AudioDecodeError, match="permission denied"):
            load_audio(path, sr=16000)
    finally:
        path.chmod(0o644)


def test_truncated_flac_raises(tmp_path: Path, files: dict[str, Path]) -> None:
    path = truncate(files[".flac"], tmp_path / "cut.flac", 0.3)
    with pytest.raises(AudioDecodeError, match="corrupt or truncated"):
        load_audio(path, sr=16000)


def test_truncated_m4a_raises(tmp_path: Path, files: dict[str, Path]) -> None:
    path = truncate(files[".m4a"], tmp_path / "cut.m4a", 0.3)  # the index (moov) is at the end
    with pytest.raises(AudioDecodeError, match="damaged container"):
        load_audio(path, sr=16000)


@pytest.mark.parametrize("ext", [".mp3", ".wav", ".ogg"])
def test_truncated_stream_returns_what_decodes(
    tmp_path: Path, files: dict[str, Path], ext: str
) -> None:
    path = truncate(files[ext], tmp_path / f"cut{ext}", 0.3)
    y = load_audio(path, sr=16000)
    assert 0.15 * SECONDS * 16000 < len(y) < 0.5 * SECONDS * 16000
    assert abs(dominant_hz(y, 16000) - TONE_HZ) < 2.0


def test_zero_length_audio(tmp_path: Path) -> None:
    path = tmp_path / "silent.wav"
    sf.write(path, np.zeros((0, 2), np.float32), SR)
    with pytest.raises(AudioDecodeError, match="zero-length audio"):
        load_audio(path, sr=16000)


def test_no_audio_stream(tmp_path: Path) -> None:
    path = tmp_path / "video.mp4"
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=32x32:rate=5"]
    subprocess.run(cmd + ["-t", "0.4", "-c:v", "mpeg4", str(path)], check=True, timeout=60)
    with pytest.raises(AudioDecodeError, match="no audio stream"):
        load_audio(path, sr=16000)


def test_absurd_sample_rate_refused(tmp_path: Path) -> None:
    path = write_soundfile(tmp_path / "fast.wav", stereo_signal(0.05))
    data = bytearray(path.read_bytes())
    assert data[12:16] == b"fmt "
    struct.pack_into("<II", data, 24, 50_000_000, 50_000_000 * 4)  # sample rate, byte rate
    path.write_bytes(bytes(data))
    with pytest.raises(AudioDecodeError, match="sample rate 50000000 Hz"):
        load_audio(path, sr=16000)
    with pytest.raises(AudioDecodeError, match="sample rate"):
        probe(path)


@pytest.mark.parametrize("ext", [".flac", ".m4a"])
def test_overlong_span_refused(
    files: dict[str, Path], ext: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in (audio.formats, audio.decode):  # the span check and the output sink
        monkeypatch.setattr(module, "MAX_DURATION_S", 1.0)
    with pytest.raises(AudioDecodeError, match="limit"):
        load_audio(files[ext], sr=16000)
    assert len(load_audio(files[ext], sr=16000, duration=0.5)) == 8000  # a part is fine


# --------------------------------------------------------------------------- windows


@pytest.mark.parametrize(
    ("length", "n_windows", "last_held"),
    [
        (0, 0, None),
        (40, 1, 40),  # shorter than a window: one padded window, even under half
        (50, 1, 50),
        (100, 1, 100),
        (249, 2, 100),  # tail of 49 < half: dropped
        (250, 3, 50),  # tail of exactly half: kept, padded
        (251, 3, 51),
        (300, 3, 100),
    ],
)
def test_frame_windows_counts(length: int, n_windows: int, last_held: int | None) -> None:
    y = np.arange(1, length + 1, dtype=np.float32)
    w = frame_windows(y, window=100)
    assert w.shape == (n_windows, 100) and w.dtype == np.float32
    if n_windows:
        assert np.count_nonzero(w[-1]) == last_held
        np.testing.assert_array_equal(w[-1, :last_held], y[(n_windows - 1) * 100 :][:last_held])
        np.testing.assert_array_equal(w.ravel()[: min(length, n_windows * 100)], y[: w.size])


def test_frame_windows_with_hop() -> None:
    y = np.arange(1, 26, dtype=np.float32)  # 25 samples
    w = frame_windows(y, window=10, hop=5)  # full at 0,5,10,15; the tail adds nothing new
    assert w.shape == (4, 10)
    np.testing.assert_array_equal(w[3], y[15:25])
    w = frame_windows(y[:23], window=10, hop=4)  # full at 0,4,8,12; next at 16 holds 7 (3 new)
    assert w.shape == (5, 10)
    np.testing.assert_array_equal(w[4], np.r_[y[16:23], 0, 0, 0])
    w = frame_windows(y[:13], window=10, hop=8)  # full at 0; next at 8 holds 5 = half: kept
    assert w.shape == (2, 10)
    np.testing.assert_array_equal(w[1], np.r_[y[8:13], 0, 0, 0, 0, 0])
    w = frame_windows(y[:12], window=10, hop=8)  # next at 8 holds 4 < half: dropped
    assert w.shape == (1, 10)
    w = frame_windows(y[:24], window=10, hop=8)  # 0,8; next at 16 holds 8 -> kept
    assert w.shape == (3, 10)


def test_frame_windows_returns_writable_copy() -> None:
    y = np.ones(300, dtype=np.float64)
    w = frame_windows(y, window=100)
    w[0, 0] = 5.0
    assert y[0] == 1.0 and w.flags.writeable and w.flags.c_contiguous


def test_frame_windows_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="1-D"):
        frame_windows(np.zeros((2, 10)), window=4)
    with pytest.raises(ValueError, match="window"):
        frame_windows(np.zeros(10), window=0)
    with pytest.raises(ValueError, match="hop"):
        frame_windows(np.zeros(10), window=4, hop=0)


def test_select_windows_known_answers() -> None:
    assert select_windows(10, max_windows=3).tolist() == [1, 5, 8]
    assert select_windows(100, max_windows=1).tolist() == [50]
    assert select_windows(5, max_windows=None).tolist() == [0, 1, 2, 3, 4]
    assert select_windows(4, max_windows=4).tolist() == [0, 1, 2, 3]
    assert select_windows(0, max_windows=3).tolist() == []
    assert select_windows(7, max_windows=6).tolist() == [0, 1, 2, 4, 5, 6]


def test_select_windows_properties() -> None:
    for n in range(1, 60):
        for m in range(1, n):
            idx = select_windows(n, max_windows=m)
            assert len(idx) == m and np.all(np.diff(idx) > 0)
            assert idx[0] >= 0 and idx[-1] < n
            np.testing.assert_array_equal(idx, select_windows(n, max_windows=m))


def test_select_windows_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="max_windows"):
        select_windows(10, max_windows=0)
    with pytest.raises(ValueError, match="n_windows"):
        select_windows(-1, max_windows=3)


def test_matroska_tags_through_ffmpeg(tmp_path: Path, files: dict[str, Path]) -> None:
    path = tmp_path / "tone.mka"
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(files[".wav"]), "-map_metadata", "-1"]
    cmd += ["-c:a", "flac", "-metadata", "title=Mk Title", "-metadata", "track=4", str(path)]
    subprocess.run(cmd, check=True, timeout=60)
    assert read_tags(path) == {"title": "Mk Title", "tracknumber": "4"}
    assert len(load_audio(path, sr=16000)) == round(SECONDS * 16000)
