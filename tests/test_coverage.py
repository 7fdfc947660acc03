"""`--coverage full|sampled`: every window or the model's sampled few, and the incremental rule
between them (full re-embeds rows stored sampled; sampled keeps rows stored full)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from melodex.audio import load_audio
from melodex.errors import ParameterError
from melodex.library.indexer import index_folder
from melodex.library.store import Store
from tests.music_fixtures import tone_piece, write_audio


def _windows(store: Store) -> dict[str, int]:
    rows = store.rows(columns=["path", "window_starts"])
    return {Path(r["path"]).name: len(r["window_starts"]) for r in rows}


@pytest.fixture()
def music(tmp_path: Path) -> Path:
    folder = tmp_path / "music"
    write_audio(folder / "long.flac", tone_piece(1, seconds=20.0))  # 20 one-second windows
    write_audio(folder / "short.wav", tone_piece(2, seconds=5.0, kind="organ"))  # 5
    return folder


def test_full_coverage_upgrades_sampled_rows_and_sampled_keeps_full_ones(
    toy_model, music: Path, tmp_path: Path
) -> None:
    store = Store(tmp_path / "db", create=True)
    index_folder(store, toy_model, music)
    assert _windows(store) == {"long.flac": 8, "short.wav": 5}  # the toy model samples 8

    full = index_folder(store, toy_model, music, coverage="full")
    assert full.updated == [str(music / "long.flac")] and full.skipped == 1
    assert _windows(store) == {"long.flac": 20, "short.wav": 5}
    y = load_audio(music / "long.flac", sr=toy_model.config.sample_rate)
    want = toy_model.embed_waveform(y, max_windows=None)
    row = store.find_path(str(music / "long.flac"))
    np.testing.assert_allclose(row["vector"], want.vector, atol=1e-6)

    again = index_folder(store, toy_model, music)  # sampled: rows with more windows stay
    assert again.skipped == 2 and not again.updated
    nothing = index_folder(store, toy_model, music, coverage="full")
    assert nothing.skipped == 2 and not (nothing.updated or nothing.added)
    assert _windows(store) == {"long.flac": 20, "short.wav": 5}


def test_a_moved_sampled_file_is_embedded_again_under_full_coverage(
    toy_model, music: Path, tmp_path: Path
) -> None:
    store = Store(tmp_path / "db", create=True)
    index_folder(store, toy_model, music)
    (music / "long.flac").rename(music / "renamed.flac")
    report = index_folder(store, toy_model, music, coverage="full")
    assert report.added == [str(music / "renamed.flac")] and not report.moved
    assert report.removed == [str(music / "long.flac")]
    assert _windows(store) == {"renamed.flac": 20, "short.wav": 5}


def test_coverage_is_checked(toy_model, music: Path, tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="coverage"):
        index_folder(Store(tmp_path / "db", create=True), toy_model, music, coverage="every")


def test_cli_coverage(toy_model_dir: Path, music: Path, tmp_path: Path) -> None:
    db = tmp_path / "db"
    base = [sys.executable, "-m", "melodex", "index", str(music), "--db", str(db)]
    base += ["--model", str(toy_model_dir), "--json"]
    first = subprocess.run(base, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    done = subprocess.run(
        [*base, "--coverage", "full"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["updated"] == [str(music / "long.flac")]
    bad = subprocess.run([*base, "--coverage", "most"], capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "most" in bad.stderr
