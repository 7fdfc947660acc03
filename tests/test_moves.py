"""Moves and deletes are decided per file, not per content hash alone.

The issue's case: two identical files; rename one and delete the other. The run must report one
move and one removal, and the deleted file must not come back from a search.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from melodex.library.library import Library
from melodex.library.store import Store
from tests.music_fixtures import tone_piece, write_audio


def _paths(db: Path) -> list[str]:
    return sorted(r["path"] for r in Store(db).rows(columns=["path"]))


def test_rename_one_copy_and_delete_the_other(tmp_path: Path, toy_model) -> None:
    music = tmp_path / "music"
    a = write_audio(music / "a.flac", tone_piece(0, 3.0))
    b = music / "b.flac"
    shutil.copyfile(a, b)
    os.utime(b, ns=(a.stat().st_atime_ns, a.stat().st_mtime_ns + 5_000_000_000))
    write_audio(music / "other.flac", tone_piece(1, 3.0))
    lib = Library(tmp_path / "db", model=toy_model)
    lib.index(music)
    assert _paths(tmp_path / "db") == sorted(map(str, [a, b, music / "other.flac"]))

    z = music / "z.flac"
    os.rename(a, z)  # a rename keeps size and mtime: it is the one that moved
    os.remove(b)
    report = Library(tmp_path / "db", model=toy_model).index(music)
    assert report.moved == [str(z)]
    assert report.removed == [str(b)]
    assert report.added == [] and report.failed == []
    assert _paths(tmp_path / "db") == sorted([str(z), str(music / "other.flac")])
    hits = Library(tmp_path / "db", model=toy_model).search("organ", k=10)
    assert {h.path for h in hits} == {str(z), str(music / "other.flac")}


def test_all_copies_deleted_are_all_removed(tmp_path: Path, toy_model) -> None:
    music = tmp_path / "music"
    a = write_audio(music / "a.flac", tone_piece(0, 3.0))
    for name in ("b.flac", "c.flac"):
        shutil.copy2(a, music / name)
    keep = write_audio(music / "keep.flac", tone_piece(2, 3.0))
    Library(tmp_path / "db", model=toy_model).index(music)
    for name in ("a.flac", "b.flac", "c.flac"):
        os.remove(music / name)
    report = Library(tmp_path / "db", model=toy_model).index(music)
    assert sorted(report.removed) == sorted(str(music / n) for n in ("a.flac", "b.flac", "c.flac"))
    assert report.moved == []
    assert _paths(tmp_path / "db") == [str(keep)]


def test_two_copies_moved_are_two_moves(tmp_path: Path, toy_model) -> None:
    music = tmp_path / "music"
    a = write_audio(music / "a.flac", tone_piece(0, 3.0))
    shutil.copy2(a, music / "b.flac")  # identical bytes and mtime
    Library(tmp_path / "db", model=toy_model).index(music)
    (music / "sub").mkdir()
    os.rename(a, music / "sub" / "a.flac")
    os.rename(music / "b.flac", music / "sub" / "b.flac")
    report = Library(tmp_path / "db", model=toy_model).index(music)
    assert sorted(report.moved) == sorted(str(music / "sub" / n) for n in ("a.flac", "b.flac"))
    assert report.removed == [] and report.added == []
    assert _paths(tmp_path / "db") == sorted(str(music / "sub" / n) for n in ("a.flac", "b.flac"))
