"""Hostile audio: one bad file is reported and skipped, never fatal to a run, the CLI or the server.

The corpus (tests/hostile_audio.py) is made here: odd bit depths (scipy's 36/45/53-bit WAVs),
chunk sizes past the end, zero channels, absurd rates, an ID3 tag without frames, truncated
frames, and a 20 GB sparse file of zeros, which must be refused from its first bytes.
"""

from __future__ import annotations

import io
import re
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from melodex.audio import check_header, load_audio, probe, read_tags
from melodex.cli import app
from melodex.errors import AudioDecodeError
from melodex.library.indexer import _decode
from melodex.library.library import Library
from tests import hostile_audio
from tests.conftest import examples
from tests.music_fixtures import tone_piece, write_audio

#: The base URL of in-process clients: a loopback Host, which the server answers by default.
LOCAL = "http://localhost"

#: What a reason must never look like: a Python exception leaking through.
LEAK = re.compile(r"Traceback|NoneType|AttributeError|object has no attribute")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str], set[str]]:
    folder = tmp_path_factory.mktemp("hostile") / "music"
    good, bad = hostile_audio.build(folder)
    return folder, good, bad


@pytest.mark.parametrize("name", sorted(hostile_audio.BAD))
def test_each_bad_file_is_a_decode_error_naming_the_cause(tmp_path: Path, name: str) -> None:
    path = hostile_audio.BAD[name](tmp_path / name)
    with pytest.raises(AudioDecodeError) as caught:
        load_audio(path, sr=16000)
    assert caught.value.path == str(path) and caught.value.reason
    assert not LEAK.search(caught.value.reason), caught.value.reason
    try:  # headers alone may look fine (a header-only FLAC): then probe answers
        probe(path)
    except AudioDecodeError as exc:
        assert exc.reason and not LEAK.search(exc.reason)
    assert isinstance(read_tags(path), dict)


def test_36_bit_wav_from_the_issue_names_the_encoding(tmp_path: Path) -> None:
    path = hostile_audio.BAD["issue-36bit.wav"](tmp_path / "x.wav")
    with pytest.raises(AudioDecodeError, match="unsupported audio encoding"):
        load_audio(path, sr=16000)


@pytest.mark.parametrize("name", sorted(hostile_audio.RECOVERABLE))
def test_damaged_but_recoverable_wavs_decode(tmp_path: Path, name: str) -> None:
    y = load_audio(hostile_audio.RECOVERABLE[name](tmp_path / name), sr=8000)
    assert y.shape == (16000,) and np.isfinite(y).all()


def test_sparse_20gb_file_is_refused_from_its_header(tmp_path: Path) -> None:
    """`truncate -s 20G x.flac`: refused in well under a second, never hashed or scanned."""
    path = hostile_audio.sparse_file(tmp_path / "x.flac")
    started = time.perf_counter()
    with pytest.raises(AudioDecodeError, match="no audio header.*all zero"):
        load_audio(path, sr=16000)
    with pytest.raises(AudioDecodeError, match="no audio header"):
        probe(path)
    item = _decode(str(path), 16000)  # the indexer's per-file step: no hash of 20 GB
    assert item.error is not None and "no audio header" in item.error
    assert item.content_hash == ""
    assert time.perf_counter() - started < 10  # reading 20 GB took 59-85 s before


def test_huge_file_with_a_plausible_header_is_not_hashed(tmp_path: Path) -> None:
    """`fLaC` then 20 GB of zeros passes the sniff; its decoder fails fast, and the content is
    hashed only after a file has decoded (the hash used to read all 20 GB)."""
    path = hostile_audio.sparse_file(tmp_path / "x.flac")
    with open(path, "r+b") as f:
        f.write(b"fLaC")
    started = time.perf_counter()
    item = _decode(str(path), 16000)
    assert item.error is not None and item.content_hash == ""
    assert time.perf_counter() - started < 30


def test_header_sniff_accepts_every_real_format(tmp_path: Path) -> None:
    for ext in (".flac", ".wav", ".mp3", ".ogg", ".m4a"):
        check_header(write_audio(tmp_path / f"a{ext}", tone_piece(0, 1.0)))
    mp3 = tmp_path / "a.mp3"
    tagged = tmp_path / "tagged.mp3"  # an ID3 tag in front of the frames
    tagged.write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x05" + b"\0" * 5 + mp3.read_bytes())
    check_header(tagged)
    assert len(load_audio(tagged, sr=16000)) > 8000


def test_decode_time_is_capped_with_a_clear_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from melodex.audio import decode

    path = write_audio(tmp_path / "a.flac", tone_piece(0, 2.0))
    monkeypatch.setattr(decode, "FILE_TIME_LIMIT_S", -1.0)  # every file is over the limit
    with pytest.raises(AudioDecodeError, match=r"longer than the -1 s limit per file"):
        load_audio(path, sr=16000)


def test_truncated_frames_are_reported_or_decoded(tmp_path: Path) -> None:
    for ext in (".flac", ".mp3", ".ogg"):
        source = write_audio(tmp_path / f"full{ext}", tone_piece(1, 2.0))
        for keep in (60, 600, 6000):
            cut = hostile_audio.truncated(tmp_path / f"cut{keep}{ext}", source, keep)
            try:
                y = load_audio(cut, sr=16000)
            except AudioDecodeError as exc:
                assert exc.reason and not LEAK.search(exc.reason)
            else:
                assert y.ndim == 1 and len(y) > 0 and np.isfinite(y).all()


# --------------------------------------------------------------------------- a whole run


def test_index_run_indexes_every_good_file_and_reports_every_bad_one(
    corpus: tuple[Path, set[str], set[str]], tmp_path: Path, toy_model
) -> None:
    folder, good, bad = corpus
    report = Library(tmp_path / "db", model=toy_model).index(folder)
    assert set(report.added) == good
    failed = dict(report.failed)
    assert set(failed) == bad
    for path, reason in failed.items():
        assert reason and not LEAK.search(reason), (path, reason)
    again = Library(tmp_path / "db", model=toy_model).index(folder)  # re-runs finish too
    assert again.skipped == len(good) and set(dict(again.failed)) == bad


def test_tag_and_describe_give_one_clear_error(tmp_path: Path, toy_model_dir: Path) -> None:
    path = hostile_audio.BAD["issue-36bit.wav"](tmp_path / "x.wav")
    runner = CliRunner()
    for command in ("tag", "describe"):
        args = [command, str(path), "--db", str(tmp_path / "db"), "--model", str(toy_model_dir)]
        res = runner.invoke(app, args)
        assert res.exit_code == 1, res.output
        assert isinstance(res.exception, SystemExit)
        assert "unsupported audio encoding" in res.output and not LEAK.search(res.output)


@pytest.mark.heavy  # the server decodes uploads in a child process
def test_server_422_names_the_cause_without_exception_text(tmp_path: Path, toy_model) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from melodex.serve import ServeConfig, create_app

    music = tmp_path / "music"
    write_audio(music / "a.flac", tone_piece(0, 3.0))
    Library(tmp_path / "db", model=toy_model).index(music)
    client = TestClient(
        create_app(ServeConfig(db=tmp_path / "db", model=toy_model)), base_url=LOCAL
    )
    clip = hostile_audio.wav_bytes(bits=36, rate=8000, frames=30)
    r = client.post("/api/describe", files={"file": ("x.wav", io.BytesIO(clip), "audio/wav")})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "undecodable_audio"
    assert "unsupported audio encoding" in error["message"]
    assert not LEAK.search(error["message"]) and str(tmp_path) not in error["message"]


# --------------------------------------------------------------------------- fuzzing headers

FUZZ = settings(
    max_examples=examples(120),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _good_headers(tmp: Path) -> dict[str, bytes]:
    wav = hostile_audio.wav_bytes(bits=16, rate=8000, frames=4000)
    flac = write_audio(tmp / "seed.flac", tone_piece(3, 0.5)).read_bytes()
    return {".wav": wav, ".flac": flac}


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return _good_headers(tmp_path_factory.mktemp("seeds"))


@FUZZ
@given(
    ext=st.sampled_from([".wav", ".flac"]),
    edits=st.lists(st.tuples(st.integers(0, 95), st.integers(0, 255)), min_size=1, max_size=6),
    field=st.none() | st.tuples(st.integers(0, 92), st.sampled_from([0, 1, 0x7FFFFFFF, 2**32 - 1])),
    cut=st.none() | st.integers(1, 4000),
)
def test_fuzzed_headers_decode_or_fail_with_a_reason(
    seeds: dict[str, bytes], tmp_path: Path, ext: str, edits, field, cut
) -> None:
    data = bytearray(seeds[ext])
    for at, value in edits:  # flip header bytes
        data[at] = value
    if field is not None:  # a 32-bit size, rate or count field set to an edge value
        data[field[0] : field[0] + 4] = struct.pack("<I", field[1])
    path = tmp_path / f"fuzz{ext}"
    path.write_bytes(bytes(data[:cut]))
    for read in (probe, lambda p: load_audio(p, sr=8000), read_tags):
        try:
            read(path)
        except AudioDecodeError as exc:
            assert exc.reason and not LEAK.search(exc.reason)


def test_index_run_over_fuzzed_files_finishes(
    seeds: dict[str, bytes], tmp_path: Path, toy_model
) -> None:
    rng = np.random.default_rng(7)
    music = tmp_path / "music"
    music.mkdir()
    for i in range(24):
        ext = (".wav", ".flac")[i % 2]
        data = bytearray(seeds[ext])
        for at in rng.integers(0, 64, size=3):
            data[at] = int(rng.integers(0, 256))
        (music / f"fuzz{i:02d}{ext}").write_bytes(bytes(data))
    good = {str(write_audio(music / f"good{i}.flac", tone_piece(i, 2.0))) for i in range(2)}
    report = Library(tmp_path / "db", model=toy_model).index(music)
    done = set(report.added) | set(dict(report.failed))
    assert good <= set(report.added)
    assert done == {str(p) for p in music.iterdir()}  # every file: indexed or reported
