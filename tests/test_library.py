"""The library end to end on real files: index, incremental re-index, queries, bad files, kills."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from melodex.errors import MelodexError
from melodex.library.library import Library
from tests.music_fixtures import tone_piece, write_audio

FORMATS = (".flac", ".ogg", ".mp3", ".m4a", ".wav")


def make_music(folder: Path, n: int = 6, *, seconds: float = 7.0, offset: int = 0) -> list[Path]:
    kinds = ("plucked", "organ", "clicks")
    paths = []
    for i in range(offset, offset + n):
        path = folder / f"sub{i % 2}" / f"track{i:02d}{FORMATS[i % len(FORMATS)]}"
        tags = {
            "title": f"Track {i}",
            "artist": f"Artist {i % 3}",
            "album": "Fixtures",
            "genre": "Test",
        }
        write_audio(path, tone_piece(i, seconds, kind=kinds[i % 3]), tags=tags)
        paths.append(path)
    return paths


@pytest.fixture()
def music(tmp_path: Path) -> Path:
    folder = tmp_path / "music"
    make_music(folder)
    (folder / "notes.txt").write_text("not music, and not an audio extension: ignored")
    (folder / "broken.mp3").write_text("this is text, not an mp3")
    (folder / "empty.flac").write_bytes(b"")
    return folder


def test_index_reports_bad_files_and_indexes_the_rest(
    music: Path, tmp_path: Path, toy_model
) -> None:
    lib = Library(tmp_path / "db", model=toy_model)
    calls = []
    report = lib.index(music, progress=lambda done, total, path: calls.append((done, total)))
    assert len(report.added) == 6
    failed = dict(report.failed)
    assert set(failed) == {str(music / "broken.mp3"), str(music / "empty.flac")}
    assert "empty" in failed[str(music / "empty.flac")]
    assert len(lib) == 6
    assert calls[-1] == (8, 8)
    rows = lib.store.rows(columns=["path", "title", "artist", "duration", "window_vectors"])
    by_name = {Path(r["path"]).name: r for r in rows}
    assert by_name["track01.ogg"]["title"] == "Track 1"
    assert by_name["track02.mp3"]["artist"] == "Artist 2"
    assert abs(by_name["track00.flac"]["duration"] - 7.0) < 0.2
    assert len(by_name["track00.flac"]["window_vectors"]) == 7  # the toy model's 1-s windows


def test_real_model_windows(music: Path, tmp_path: Path, base_model) -> None:
    lib = Library(tmp_path / "db", model=base_model)
    lib.index(music / "sub0")
    row = lib.store.find_path(str(music / "sub0" / "track00.flac"))
    assert len(row["window_vectors"]) == 2  # 7 s = 2 full 3-s windows + 1 s dropped


def test_reindex_is_incremental(music: Path, tmp_path: Path, toy_model) -> None:
    lib = Library(tmp_path / "db", model=toy_model)
    lib.index(music)
    before = {
        r["path"]: np.asarray(r["vector"]) for r in lib.store.rows(columns=["path", "vector"])
    }

    again = lib.index(music)
    assert (len(again.added), len(again.updated), again.skipped) == (0, 0, 6)

    changed = music / "sub0" / "track00.flac"
    write_audio(changed, tone_piece(99, 7.0, kind="clicks"))
    (music / "sub1" / "track01.ogg").unlink()
    shutil.move(music / "sub1" / "track03.m4a", music / "moved.m4a")
    report = lib.index(music)
    assert report.updated == [str(changed)]
    assert report.removed == [str(music / "sub1" / "track01.ogg")]
    assert report.moved == [str(music / "moved.m4a")]
    after = {r["path"]: np.asarray(r["vector"]) for r in lib.store.rows(columns=["path", "vector"])}
    assert len(after) == 5
    np.testing.assert_array_equal(
        after[str(music / "moved.m4a")], before[str(music / "sub1" / "track03.m4a")]
    )
    assert float(after[str(changed)] @ before[str(changed)]) < 0.9999


def test_queries_and_json_contract(music: Path, tmp_path: Path, toy_model) -> None:
    lib = Library(tmp_path / "db", model=toy_model)
    lib.index(music)
    hits = lib.search("organ", k=3)
    assert [h.rank for h in hits] == [1, 2, 3]
    assert hits[0].score >= hits[1].score >= hits[2].score
    keys = {"rank", "score", "path", "title", "artist", "album", "duration"}
    assert keys <= set(hits[0].to_json())
    # the same vectors ranked by brute force give the same order
    ids, vectors = lib.store.vectors()
    brute = ids[np.argsort(-(vectors @ toy_model.encode_text("organ")), kind="stable")][:3]
    assert [h.id for h in hits] == list(brute)

    target = music / "sub0" / "track02.mp3"
    near = lib.similar(target, k=3)
    assert str(target) not in [h.path for h in near]
    desc = lib.describe(target, k=5)
    data = desc.to_json()
    assert len(data["tags"]) == 5 and {"text", "score"} == set(data["tags"][0])
    assert len(data["texts"]) == 5 and len(data["similar"]) == 3 or len(data["similar"]) == 5
    assert lib.tag(target, k=3) == desc.tags[:3]
    with pytest.raises(MelodexError, match="empty"):
        lib.search("   ")


def _cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "melodex", *args], capture_output=True, text=True, timeout=300, **kw
    )


@pytest.mark.heavy  # CLI subprocesses
def test_cli_search_json(music: Path, tmp_path: Path, toy_model_dir: Path) -> None:
    """A library indexed with a model folder is searched later without --model: it records
    where its model came from. The index runs as a real `melodex` process; the later commands
    in-process (CliRunner), each with a new Library as a new process would have."""
    from typer.testing import CliRunner

    from melodex.cli import app

    db = tmp_path / "db"
    indexed = _cli("index", str(music), "--db", str(db), "--model", str(toy_model_dir))
    assert indexed.returncode == 0, indexed.stderr
    runner = CliRunner()
    res = runner.invoke(app, ["search", "solo piano", "-k", "2", "--db", str(db), "--json"])
    assert res.exit_code == 0, res.output
    hits = json.loads(res.stdout)
    assert len(hits) == 2 and hits[0]["rank"] == 1 and hits[0]["path"].startswith(str(music))
    info = json.loads(runner.invoke(app, ["info", "--db", str(db), "--json"]).stdout)
    assert info["model_source"] == str(toy_model_dir.resolve()) and info["tracks"] == 6
    assert info["model"].startswith("toy@") and info["licence"] == "MIT"
    track = str(music / "sub0" / "track00.flac")
    similar = runner.invoke(app, ["similar", track, "--db", str(db), "--json"])
    assert similar.exit_code == 0, similar.output
    assert track not in {h["path"] for h in json.loads(similar.stdout)}
    bad = runner.invoke(app, ["search", "x", "--db", str(tmp_path / "nowhere")])
    assert bad.exit_code == 1 and "no library here" in bad.output


def test_a_moved_model_folder_is_named_in_the_error(music: Path, tmp_path: Path, toy_model) -> None:
    model_dir = toy_model.save(tmp_path / "my-model")
    from melodex.models import load_model

    lib = Library(tmp_path / "db", model=load_model(model_dir))
    lib.index(music / "sub0")
    assert Library(tmp_path / "db").search("x", k=1)  # found from the store's record
    shutil.rmtree(model_dir)
    with pytest.raises(MelodexError, match="my-model.*pass --model"):
        Library(tmp_path / "db").search("x", k=1)
