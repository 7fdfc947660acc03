"""The walk stays inside the folder it is given: `ln -s / music/root` indexes nothing outside.

Links are followed only with ``follow_symlinks`` (``index --follow-symlinks``), and then each
real folder once, never a folder above the root, never /proc, /sys or /dev.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from melodex.library.library import Library
from melodex.library.store import Store
from melodex.library.walk import walk_folder
from tests.music_fixtures import tone_piece, write_audio


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """music/ with one file, a link to /, a link to a folder outside, a link to a file outside,
    a link to its own parent, and a link to a file inside."""
    music, outside = tmp_path / "music", tmp_path / "outside"
    write_audio(music / "a.flac", tone_piece(0, 2.0))
    write_audio(outside / "far.flac", tone_piece(1, 2.0))
    (music / "root").symlink_to("/")
    (music / "elsewhere").symlink_to(outside)
    (music / "far-link.flac").symlink_to(outside / "far.flac")
    (music / "up").symlink_to("..")
    (music / "near-link.flac").symlink_to(music / "a.flac")
    return music, outside


def test_default_walk_stays_inside(tree: tuple[Path, Path]) -> None:
    music, _ = tree
    scan = walk_folder(music)
    assert scan.files == [str(music / "a.flac"), str(music / "near-link.flac")]
    assert scan.followed == []
    problems = dict(scan.problems)
    assert set(problems) == {str(music / "far-link.flac")}
    assert "outside the folder" in problems[str(music / "far-link.flac")]


def test_link_to_filesystem_root_indexes_nothing_outside(tmp_path: Path, toy_model) -> None:
    """The issue's repro: `ln -s / M/root; melodex index M`."""
    music = tmp_path / "M"
    write_audio(music / "a.flac", tone_piece(0, 2.0))
    (music / "root").symlink_to("/")
    report = Library(tmp_path / "db", model=toy_model).index(music)
    paths = [r["path"] for r in Store(tmp_path / "db").rows(columns=["path"])]
    assert paths == [str(music / "a.flac")]
    assert report.added == paths
    assert all(p.startswith(str(music) + "/") for p, _ in report.failed)


def test_follow_symlinks_enters_linked_folders_once_and_never_upward(
    tree: tuple[Path, Path],
) -> None:
    music, outside = tree
    scan = walk_folder(music, follow_symlinks=True)
    assert scan.files == sorted(
        [
            str(music / "a.flac"),
            str(music / "elsewhere" / "far.flac"),
            str(music / "far-link.flac"),
            str(music / "near-link.flac"),
        ]
    )
    assert scan.followed == [os.path.realpath(outside)]  # not /, not the parent
    assert scan.problems == []


def test_follow_symlinks_never_enters_system_trees(tmp_path: Path) -> None:
    music = tmp_path / "music"
    write_audio(music / "a.flac", tone_piece(0, 2.0))
    (music / "proc").symlink_to("/proc")
    (music / "self").symlink_to("/proc/self/cwd")  # another process's working folder
    scan = walk_folder(music, follow_symlinks=True)
    assert scan.files == [str(music / "a.flac")] and scan.followed == []


def test_followed_folders_are_served_roots(tree: tuple[Path, Path], toy_model) -> None:
    music, outside = tree
    db = music.parent / "db"
    report = Library(db, model=toy_model).index(music, follow_symlinks=True)
    assert str(music / "elsewhere" / "far.flac") in report.added
    assert Store(db).roots() == sorted([str(music), os.path.realpath(outside)])


def test_followed_links_to_devices_are_reported(tmp_path: Path, toy_model) -> None:
    music = tmp_path / "music"
    write_audio(music / "a.flac", tone_piece(0, 2.0))
    (music / "dev-zero.wav").symlink_to("/dev/zero")
    (music / "io-error.wav").symlink_to("/proc/self/mem")
    report = Library(tmp_path / "db", model=toy_model).index(music, follow_symlinks=True)
    failed = dict(report.failed)
    assert "not a regular file (a character device)" in failed[str(music / "dev-zero.wav")]
    assert "Input/output error" in failed[str(music / "io-error.wav")]
    assert report.added == [str(music / "a.flac")]
