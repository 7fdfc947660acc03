"""Each crash row of the hardening issue gives a clear error (or the right answer), no traceback.

Non-UTF-8 query bytes, ``similar 9223372036854775808``, ``similar ²``, ``/api/similar/1_000``,
``info --json --model``, and SIGINT during ``index`` (a clear message; the bar counts what was
written apart from what was handled).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from melodex.cli import app
from melodex.errors import ParameterError
from melodex.library.library import Library
from melodex.library.store import Store
from tests import child_events
from tests.music_fixtures import tone_piece, write_audio


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, toy_model) -> Path:
    root = tmp_path_factory.mktemp("rows")
    for i in range(3):
        write_audio(root / "music" / f"t{i}.flac", tone_piece(i, 2.0))
    Library(root / "db", model=toy_model).index(root / "music")
    return root / "db"


def _run(*args: str) -> object:
    res = CliRunner().invoke(app, list(args))
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert "Traceback" not in res.output
    return res


def test_non_utf8_query_bytes(db: Path) -> None:
    query = os.fsdecode(b"\xff x")  # what Python makes of `melodex search $'\xff x'`
    with pytest.raises(ParameterError, match=r"not valid UTF-8 \(byte 0xff at position 0\)"):
        Library(db).search(query)
    res = _run("search", query, "--db", str(db))
    assert res.exit_code == 1 and "not valid UTF-8" in res.output


def test_similar_with_an_id_past_63_bits(db: Path) -> None:
    res = _run("similar", "9223372036854775808", "--db", str(db))
    assert res.exit_code == 1 and "too large" in res.output


def test_similar_with_a_superscript_digit(db: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no file named ² here
    res = _run("similar", "²", "--db", str(db))
    assert res.exit_code == 1 and "²" in res.output and "not found" in res.output


def test_api_track_ids_are_plain_digits(db: Path, toy_model) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from melodex.serve import ServeConfig, create_app

    client = TestClient(
        create_app(ServeConfig(db=db, model=toy_model)), base_url="http://localhost"
    )
    for raw in ("1_000", "+1000", "1e3", "%C2%B2", "0x10"):
        r = client.get(f"/api/similar/{raw}")
        assert r.status_code == 422, (raw, r.text)
        assert r.json()["error"]["code"] == "invalid_request"
        assert client.get(f"/api/tracks/{raw}/audio").status_code == 422
    assert client.get("/api/similar/1000").status_code == 404  # read as digits: no such track


def test_info_json_with_model(db: Path, toy_model_dir: Path) -> None:
    res = _run("info", "--json", "--model", str(toy_model_dir), "--db", str(db))
    assert res.exit_code == 0
    facts = json.loads(res.stdout)
    assert facts["tracks"] == 3 and facts["model"].startswith("toy@")


@pytest.mark.heavy  # a CLI subprocess, interrupted
def test_sigint_during_index_says_what_was_kept(tmp_path: Path, toy_model_dir: Path) -> None:
    music = tmp_path / "music"
    for i in range(60):
        write_audio(music / f"t{i:02d}.wav", tone_piece(i, 4.0))
    db = tmp_path / "db"
    cmd = [sys.executable, "-m", "melodex", "index", str(music), "--db", str(db)]
    cmd += ["--model", str(toy_model_dir), "--events", "--commit-every", "4"]
    # its events hold it back (tests/child_events.py): the signal lands in a live run
    proc = child_events.start(cmd, stdout=subprocess.PIPE)
    deadline = time.monotonic() + 120
    for event in child_events.events(proc):  # wait until a batch is written, then interrupt
        if event["event"] == "committed":
            break
        assert time.monotonic() < deadline
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=120)[1].decode("utf-8", "replace")
    assert proc.returncode == 130, rest[-2000:]
    assert "Traceback" not in rest
    said = next(x for x in rest.splitlines() if x.startswith("interrupted:"))
    kept = int(said.split()[1])
    # what the store holds (a commit interrupted before its event was counted is kept too)
    assert 0 < kept <= len(Store(db)) < 60
    assert "run the same command again" in said
