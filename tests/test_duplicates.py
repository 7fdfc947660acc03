"""Duplicates: a transcode, a trimmed copy and a quieter copy are found; distinct tracks are not."""

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
        frozenset({"piece2.flac", "piece2-trim.flac"}),
        frozenset({"piece4.flac", "piece4-quiet.wav"}),
    }
    for g in groups:
        assert g.tracks[0]["duration"] >= g.tracks[1]["duration"]  # the longest first
        (ev,) = g.evidence
        assert ev.track_cosine >= 0.95 and ev.window_match >= 0.8
    trim = next(g for g in groups if "trim" in g.tracks[1]["path"])
    assert trim.evidence[0].duration_ratio == pytest.approx(6 / 9, abs=0.02)


def test_cli_json(variants) -> None:
    from typer.testing import CliRunner

    from melodex.cli import app

    lib, _ = variants
    res = CliRunner().invoke(
        app, ["duplicates", "--db", str(lib.path), "--model", lib.model.source, "--json"]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert len(data) == 3 and {"tracks", "evidence"} == set(data[0])
    assert {"a", "b", "track_cosine", "window_match", "duration_ratio"} == set(
        data[0]["evidence"][0]
    )


def test_evidence_rules() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((8, 16)).astype(np.float32)
    starts = np.arange(8.0) * 3
    assert window_match(a, a) == pytest.approx(1.0, abs=1e-6)
    # a trim: the copy's windows are the original's from 6 s on, at their own times
    assert window_match(a, a[2:], starts, starts[:6]) == pytest.approx(1.0, abs=1e-6)
    assert window_match(a, a[::-1], starts, starts) < 0.5  # the same windows, another order
    assert window_match(a[:1], a) == 0.0
    assert is_duplicate(PairEvidence(1, 2, 0.99, 0.9, 0.9))
    assert not is_duplicate(PairEvidence(1, 2, 0.99, 0.99, 0.3))  # too short to be a trim
    assert not is_duplicate(PairEvidence(1, 2, 0.99, 0.7, 0.9))
    assert not is_duplicate(PairEvidence(1, 2, 0.9, 0.99, 0.9))
