"""A --db that holds another program's LanceDB ``tracks`` table is refused, and nothing is
written into it; ``serve --db`` on a missing folder says so instead of serving nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from melodex.cli import app
from melodex.errors import StoreError
from melodex.library.library import Library
from melodex.library.store import Store
from tests.music_fixtures import tone_piece, write_audio


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
    }


@pytest.fixture
def foreign(tmp_path: Path) -> Path:
    import lancedb

    db = tmp_path / "theirs"
    table = pa.table({"name": ["a song"], "plays": [3]})
    lancedb.connect(str(db)).create_table("tracks", data=table)
    return db


def test_index_into_a_foreign_table_is_refused_and_writes_nothing(
    foreign: Path, tmp_path: Path, toy_model
) -> None:
    write_audio(tmp_path / "music" / "a.flac", tone_piece(0, 2.0))
    before = _snapshot(foreign)
    with pytest.raises(StoreError, match="another program's database"):
        Library(foreign, model=toy_model).index(tmp_path / "music")
    assert _snapshot(foreign) == before


def test_cli_commands_on_a_foreign_table_give_one_clear_error(
    foreign: Path, tmp_path: Path, toy_model_dir: Path
) -> None:
    write_audio(tmp_path / "music" / "a.flac", tone_piece(0, 2.0))
    before = _snapshot(foreign)
    runner = CliRunner()
    for args in (
        ["index", str(tmp_path / "music"), "--model", str(toy_model_dir)],
        ["search", "piano", "--model", str(toy_model_dir)],
        ["info"],
        ["serve", "--model", str(toy_model_dir)],
    ):
        res = runner.invoke(app, [*args, "--db", str(foreign)])
        assert res.exit_code == 1, (args, res.output)
        assert isinstance(res.exception, SystemExit)
        assert "another program's database" in res.output, args
    assert _snapshot(foreign) == before


def test_a_melodex_table_missing_its_columns_is_refused(tmp_path: Path, toy_model) -> None:
    """A library folder whose table was replaced by another program's."""
    import lancedb

    music = tmp_path / "music"
    write_audio(music / "a.flac", tone_piece(0, 2.0))
    Library(tmp_path / "db", model=toy_model).index(music)
    lancedb.connect(str(tmp_path / "db")).drop_table("tracks")
    lancedb.connect(str(tmp_path / "db")).create_table("tracks", data=pa.table({"x": [1]}))
    with pytest.raises(StoreError, match="lacks the columns melodex writes"):
        len(Store(tmp_path / "db"))


def test_serve_on_a_typo_db_is_an_error(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["serve", "--db", str(tmp_path / "typo")])
    assert res.exit_code == 1 and "no library here" in res.output
    assert not os.path.exists(tmp_path / "typo")
