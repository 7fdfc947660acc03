"""Duplicates: a transcode, trimmed copies (on and off the window grid) and a quieter copy are
found; distinct tracks are not."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from melodex.library.duplicates import PairEvidence, is_duplicate, window_match
from melodex.library.library import Library
from tests.music_fixtures import tone_piece, write_audio


def ffmpeg(src: Path, dest: Path, *args: str) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(src), *args, str(dest)]
    subprocess.run(cmd, check=True)
    return dest


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory, toy_model) -> tuple[Library, Path]:
    root = tmp_path_factory.mktemp("dups")
    music = root / "music"
    # distinct pieces, two of each kind, so that similar-sounding tracks must stay apart
    for i, kind in enumerate(("plucked", "plucked", "organ", "organ", "clicks")):
        write_audio(music / f"piece{i}.flac", tone_piece(10 + i, 9.0, kind=kind))
    ffmpeg(music / "piece0.flac", music / "copies" / "piece0.mp3", "-b:a", "96k")
    ffmpeg(music / "piece2.flac", music / "copies" / "piece2-trim.flac", "-ss", "2", "-t", "6")
    # 2.3 s cut: off the toy model's 1-s window grid, so no window lines up with the original's
    ffmpeg(music / "piece1.flac", music / "copies" / "piece1-cut.flac", "-ss", "2.3", "-t", "6")
    ffmpeg(music / "piece4.flac", music / "copies" / "piece4-quiet.wav", "-af", "volume=-6dB")
    lib = Library(root / "db", model=toy_model)
    lib.index(music)
    return lib, music


def test_finds_copies_and_keeps_distinct_tracks_apart(variants) -> None:
    lib, _ = variants
    groups = lib.duplicates()
    found = {frozenset(Path(t["path"]).name for t in g.tracks) for g in groups}
    assert found == {
        frozenset({"piece0.flac", "piece0.mp3"}),
        frozenset({"piece1.flac", "piece1-cut.flac"}),
        frozenset({"piece2.flac", "piece2-trim.flac"}),
        frozenset({"piece4.flac", "piece4-quiet.wav"}),
    }
    for g in groups:
        assert g.tracks[0]["duration"] >= g.tracks[1]["duration"]  # the longest first
        (ev,) = g.evidence
        assert ev.track_cosine >= 0.95 and (ev.window_match >= 0.8 or ev.audio_match >= 0.7)
    trim = next(g for g in groups if "trim" in g.tracks[1]["path"])
    assert trim.evidence[0].duration_ratio == pytest.approx(6 / 9, abs=0.02)
    # the off-grid cut: its windows straddle the original's, so the audio decided
    (cut,) = next(g for g in groups if "cut" in g.tracks[1]["path"]).evidence
    assert cut.window_match < 0.8 and cut.audio_match > 0.85


def test_windows_alone_miss_the_off_grid_trim(variants) -> None:
    lib, _ = variants
    found = {frozenset(Path(t["path"]).name for t in g.tracks) for g in lib.duplicates(audio=False)}
    assert frozenset({"piece1.flac", "piece1-cut.flac"}) not in found
    assert frozenset({"piece2.flac", "piece2-trim.flac"}) in found  # on the grid: windows do


def test_cli_json(variants) -> None:
    from typer.testing import CliRunner

    from melodex.cli import app

    lib, _ = variants
    res = CliRunner().invoke(
        app, ["duplicates", "--db", str(lib.path), "--model", lib.model.source, "--json"]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert len(data) == 4 and {"tracks", "evidence"} == set(data[0])
    keys = {"a", "b", "track_cosine", "window_match", "duration_ratio", "audio_match"}
    assert all(set(g["evidence"][0]) == keys for g in data)
    assert any(g["evidence"][0]["audio_match"] is not None for g in data)
    res = CliRunner().invoke(
        app,
        ["duplicates", "--db", str(lib.path), "--model", lib.model.source, "--json", "--no-audio"],
    )
    assert res.exit_code == 0 and len(json.loads(res.stdout)) == 3


def test_evidence_rules() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((8, 16)).astype(np.float32)
    starts = np.arange(8.0) * 3
    assert window_match(a, a) == pytest.approx(1.0, abs=1e-6)
    # a trim: the copy's windows are the original's from 6 s on, at their own times
    assert window_match(a, a[2:], starts, starts[:6]) == pytest.approx(1.0, abs=1e-6)
    assert window_match(a, a[::-1], starts, starts) < 0.5  # the same windows, another order
    assert window_match(a[:1], a) == 0.0
    # a cut of a fraction of a hop: window vectors pooled over a slowly changing signal; the
    # blend of the two straddled windows stands in for the moment between them
    t = np.arange(0, 40, 0.01)
    sig = np.sin(t[:, None] * rng.uniform(0.05, 0.3, 16) + rng.uniform(0, 6, 16))

    def pooled(cut: float, length: float) -> tuple[np.ndarray, np.ndarray]:
        starts = np.arange(0, length - 2.99, 3.0)
        return np.stack([sig[(t >= s + cut) & (t < s + cut + 3)].mean(0) for s in starts]), starts

    (orig, o_starts), (copy, c_starts) = pooled(0, 30), pooled(1.5, 26)
    assert window_match(orig, copy, o_starts, c_starts, max_shift=4) > 0.95
    assert is_duplicate(PairEvidence(1, 2, 0.99, 0.9, 0.9))
    assert is_duplicate(PairEvidence(1, 2, 0.99, 0.5, 0.9, audio_match=0.9))  # audio decides
    assert not is_duplicate(PairEvidence(1, 2, 0.99, 0.5, 0.9, audio_match=0.5))
    assert not is_duplicate(PairEvidence(1, 2, 0.9, 0.5, 0.9, audio_match=0.99))
    assert not is_duplicate(PairEvidence(1, 2, 0.99, 0.99, 0.3))  # too short to be a trim
    assert not is_duplicate(PairEvidence(1, 2, 0.99, 0.7, 0.9))
    assert not is_duplicate(PairEvidence(1, 2, 0.9, 0.99, 0.9))


def test_envelopes_align_at_any_lag(tmp_path: Path) -> None:
    from melodex.library.audio_match import envelope, envelope_match
    from tests.music_fixtures import SR

    piece = tone_piece(3, 9.0, kind="plucked")
    other = tone_piece(4, 9.0, kind="plucked")
    a = envelope(write_audio(tmp_path / "a.flac", piece))
    cut = envelope(write_audio(tmp_path / "cut.flac", 0.5 * piece[int(2.74 * SR) :]))
    b = envelope(write_audio(tmp_path / "b.flac", other))
    assert envelope_match(a, cut, max_shift=3) > 0.9  # 2.74 s cut, and 6 dB quieter
    assert envelope_match(a, cut, max_shift=1) < 0.5  # the lag is out of the allowed range
    assert envelope_match(a, b) < 0.5
    # two pieces of noise clicks on one pulse: the same beat, not the same recording
    clicks = [envelope(write_audio(tmp_path / f"c{i}.flac", tone_piece(i, 7, kind="clicks")))
              for i in (5, 6)]  # fmt: skip
    assert envelope_match(*clicks, max_shift=1) < 0.5
    assert envelope(tmp_path / "missing.flac") is None
