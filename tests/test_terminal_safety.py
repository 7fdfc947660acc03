"""Names print safely: escape sequences in file names and tags never reach the terminal raw.

The issue's repro: a file named ``x<ESC>]52;c;SGVsbG8=<ESC>\\.flac`` (OSC 52, a clipboard
write), indexed, then found by ``search``. Tables, index reports and errors show the escapes as
text; ``--json`` keeps every name exact.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from melodex.cli import app
from melodex.cli.common import json_text, shown
from melodex.cli.terminal import SafeConsole, escape_controls
from melodex.library.library import Library
from tests.music_fixtures import tone_piece, write_audio

OSC52 = "x\x1b]52;c;SGVsbG8=\x1b\\.flac"
SGR_TITLE = "\x1b[31mred\x1b[0m \x1b]0;pwned\x07 \x9b2J"
#: Any control character a terminal acts on (C0 but newline, DEL, C1).
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")


@pytest.fixture(scope="module")
def hostile_library(tmp_path_factory: pytest.TempPathFactory, toy_model) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("names")
    music = root / "M"
    write_audio(music / OSC52, tone_piece(0, 3.0), tags={"title": SGR_TITLE})
    write_audio(music / "plain.flac", tone_piece(1, 3.0))
    (music / "bad\x1b[2J.wav").write_bytes(b"RIFF junk, not a wav")
    Library(root / "db", model=toy_model).index(music)
    return root / "db", music


def test_escape_controls() -> None:
    assert escape_controls(OSC52) == "x\\x1b]52;c;SGVsbG8=\\x1b\\.flac"
    assert escape_controls("a\nb\u202ec") == "a\\x0ab\\u202ec"
    assert escape_controls("a\nb", keep_newlines=True) == "a\nb"
    assert escape_controls("café [live] ♪") == "café [live] ♪"


def test_safe_console_escapes_what_it_is_given_but_keeps_its_styles() -> None:
    buf = io.StringIO()
    console = SafeConsole(file=buf, force_terminal=True, width=120)
    console.print(f"[bold]name[/bold] {OSC52}", highlight=False)
    text = buf.getvalue()
    assert "\x1b[1m" in text  # rich's own style
    assert "\x1b]52" not in text and "\\x1b]52;c;SGVsbG8=" in text


def test_search_table_shows_escapes_as_text(hostile_library, monkeypatch) -> None:
    db, _ = hostile_library
    res = CliRunner().invoke(
        app, ["search", "organ", "--db", str(db)], env={"COLUMNS": "300", "FORCE_COLOR": "1"}
    )
    assert res.exit_code == 0, res.output
    assert "\x1b]52" not in res.stdout and "\x9b" not in res.stdout
    assert "\x1b]0;pwned" not in res.stdout
    assert "\\x1b]52;c;SGVsbG8=" in res.stdout
    assert "\\x1b[31mred" in res.stdout


def test_search_json_stays_exact(hostile_library) -> None:
    db, music = hostile_library
    res = CliRunner().invoke(app, ["search", "organ", "--db", str(db), "--json"])
    assert res.exit_code == 0, res.output
    assert not RAW_CONTROL.search(res.stdout)  # escaped as JSON, so the terminal is safe too
    hits = json.loads(res.stdout)
    assert str(music / OSC52) in {h["path"] for h in hits}
    assert SGR_TITLE in {h["title"] for h in hits}


def test_index_report_shows_escapes_as_text(hostile_library, toy_model_dir: Path) -> None:
    db, music = hostile_library
    (music / "new\x1b]52;c;QQ==\x07.flac").write_bytes(b"fLaC then junk")
    res = CliRunner().invoke(app, ["index", str(music), "--db", str(db)], env={"COLUMNS": "300"})
    assert res.exit_code == 0, res.output
    assert not RAW_CONTROL.search(res.stdout), repr(res.stdout)
    assert "failed" in res.stdout and "bad\\x1b[2J.wav" in res.stdout


def test_errors_escape_names_but_keep_their_lines(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app, ["tag", str(tmp_path / "no\x1b[2Jfile.wav"), "--db", str(tmp_path)]
    )
    assert res.exit_code == 1
    assert "\x1b[2J" not in res.output and "no\\x1b[2Jfile.wav" in res.output
    assert shown("one\ntwo", lines=True) == "one\ntwo"


def test_json_text_escapes_c1_and_round_trips() -> None:
    data = {"path": "a\x9b2Jb\u202e\x1b.flac"}
    text = json_text(data)
    assert not RAW_CONTROL.search(text) and "\u202e" not in text
    assert json.loads(text) == data
