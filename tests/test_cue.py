"""A CUE album (one WAV + a .cue) is indexed as its tracks, searched and played from offsets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from melodex.errors import MelodexError
from melodex.library.cue import cue_id, parse_cue
from melodex.library.library import Library
from tests.music_fixtures import SR, tone_piece

SHEET = """REM GENRE Test
PERFORMER "The Album Band"
TITLE "One File Album"
FILE "album.wav" WAVE
  TRACK 01 AUDIO
    TITLE "Opening Organ"
    INDEX 01 00:00:00
  TRACK 02 AUDIO
    TITLE "Clicking Middle"
    PERFORMER "A Guest"
    INDEX 00 00:05:00
    INDEX 01 00:06:00
  TRACK 03 AUDIO
    TITLE "Plucked Ending"
    INDEX 01 00:11:37
"""


def make_album(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    parts = [tone_piece(1, 6.0, kind="organ"), tone_piece(2, 5.5, kind="clicks"),
             tone_piece(3, 4.5, kind="plucked")]  # fmt: skip
    sf.write(folder / "album.wav", np.concatenate(parts), SR)
    (folder / "album.cue").write_text(SHEET, "utf-8")
    return folder / "album.wav"


def test_parse_cue(tmp_path: Path) -> None:
    audio = make_album(tmp_path)
    sheet = parse_cue(tmp_path / "album.cue")
    assert sheet.file == str(audio.resolve()) and sheet.album == "One File Album"
    assert [(t.number, t.title, t.start, t.end) for t in sheet.tracks] == [
        (1, "Opening Organ", 0.0, 6.0),
        (2, "Clicking Middle", 6.0, 11 + 37 / 75),
        (3, "Plucked Ending", 11 + 37 / 75, None),
    ]
    assert sheet.tracks[1].performer == "A Guest" and sheet.performer == "The Album Band"
    (tmp_path / "bad.cue").write_text('FILE "x.wav" WAVE\n TRACK 01 AUDIO\n INDEX 01 1:2\n')
    with pytest.raises(MelodexError, match="bad.cue:3"):
        parse_cue(tmp_path / "bad.cue")


def test_a_cue_album_is_indexed_as_its_tracks(tmp_path: Path, toy_model) -> None:
    audio = str(make_album(tmp_path / "music").resolve())
    lib = Library(tmp_path / "db", model=toy_model)
    lib.index(tmp_path / "music")
    rows = sorted(lib.store.rows(columns=["id", "path", "title", "artist", "album", "duration",
                                          "window_starts"]), key=lambda r: r["window_starts"][0])  # fmt: skip
    assert [r["title"] for r in rows] == ["Opening Organ", "Clicking Middle", "Plucked Ending"]
    assert [r["id"] for r in rows] == [cue_id(audio, n) for n in (1, 2, 3)]
    assert {r["path"] for r in rows} == {audio}  # the file itself is served
    assert [r["artist"] for r in rows] == ["The Album Band", "A Guest", "The Album Band"]
    assert rows[1]["duration"] == pytest.approx(11 + 37 / 75 - 6, abs=1e-3)
    assert rows[1]["window_starts"][0] == pytest.approx(6.0)  # in the file's time
    # searched by name, and the hit plays from inside its span
    (hit,) = lib.search("Clicking", k=1, mode="text")
    assert hit.title == "Clicking Middle" and 6.0 <= hit.segment_start < 11.5
    # a second run changes nothing; a changed sheet is applied again
    again = lib.index(tmp_path / "music")
    assert again.skipped == 1 and len(lib) == 3
    (tmp_path / "music" / "album.cue").write_text(SHEET.replace("Plucked Ending", "Finale"))
    lib.index(tmp_path / "music")
    assert sorted(r["title"] for r in lib.store.rows(columns=["title"])) == [
        "Clicking Middle", "Finale", "Opening Organ"]  # fmt: skip
    assert [h.title for h in lib.search("Finale", k=3, mode="text")] == ["Finale"]
    # the album file gone: its tracks go too
    Path(audio).unlink()
    lib.index(tmp_path / "music")
    assert len(lib) == 0
