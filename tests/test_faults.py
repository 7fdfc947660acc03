"""The fault suite: bad files, killed processes, a full disk, readers during writes.

Everything here is real: files written by soundfile/ffmpeg and then damaged, a FIFO, a
character device, /proc/self/mem (reading it fails with EIO), symlink loops, non-UTF-8 and
over-long names, `melodex index` subprocesses killed with SIGKILL, a tmpfs mounted small
enough to fill up, and a search running while another process commits batches.
"""

from __future__ import annotations

import json
import os
import random
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from melodex.audio import frame_windows, load_audio, probe, select_windows
from melodex.cli import app
from melodex.encoders.musicnn import MUSICNN_SR
from melodex.errors import AudioDecodeError, StoreError
from melodex.library.indexer import _decode, embed_item, file_hash, window_count
from melodex.library.library import Library
from melodex.library.store import Store, decode_path, encode_path
from tests import child_events
from tests.music_fixtures import tone_piece, write_audio

PATH_MAX = os.pathconf("/", "PC_PATH_MAX")  # 4096 on Linux
NAME_MAX = os.pathconf("/", "PC_NAME_MAX")  # 255


def _cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the real `melodex` command line in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "melodex", *args],
        capture_output=True,
        text=True,
        errors="surrogateescape",
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def _shown(path: str) -> str:
    """How the CLI prints a path: non-UTF-8 bytes as \\xNN."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


# --------------------------------------------------------------------------- a folder of faults


@dataclass
class FaultFolder:
    """Good files that must be indexed and bad ones that must fail with a matching reason."""

    root: Path
    good: set[str] = field(default_factory=set)
    bad: dict[str, str] = field(default_factory=dict)  # path -> regex on the reason
    raw_name: bytes = b""  # the non-UTF-8 file's full path, as bytes


def _good(folder: FaultFolder, path: Path | str, seed: int) -> None:
    write_audio(Path(path), tone_piece(seed, 4.0, kind=("plucked", "organ", "clicks")[seed % 3]))
    folder.good.add(str(path))


def _make_deep_chain(top: Path, depth: int, name: str) -> Path:
    """``top/name/name/...`` ``depth`` levels deep, made one level at a time."""
    top.mkdir()
    path = top
    for _ in range(depth):
        path = path / name
        path.mkdir()
    return path


def _over_long_chain(top: Path) -> tuple[str, Path]:
    """Folders of 255-byte names nested past PATH_MAX, built through directory fds (paths that
    long cannot be passed to mkdir); returns the first folder whose path is too long, and the
    folder that holds the chain."""
    holder = top / "too-long"
    holder.mkdir()
    name = "n" * NAME_MAX
    fd = os.open(holder, os.O_RDONLY | os.O_DIRECTORY)
    path, first_too_long = str(holder), ""
    try:
        while len(os.fsencode(path)) < PATH_MAX + 2 * NAME_MAX:
            os.mkdir(name, dir_fd=fd)
            nxt = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nxt
            path = f"{path}/{name}"
            if not first_too_long and len(os.fsencode(path)) >= PATH_MAX:
                first_too_long = path
        audio = os.open("lost.wav", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(audio, b"RIFF")
        os.close(audio)
    finally:
        os.close(fd)
    return first_too_long, holder


def _remove_tree(top: Path) -> None:
    """Delete a tree of any depth without recursion (rmtree recurses and fails on these)."""
    if not top.exists():
        return
    stack = [os.open(top, os.O_RDONLY | os.O_DIRECTORY)]
    names: list[str] = []
    while stack:
        fd = stack[-1]
        sub = None
        for entry in os.scandir(fd):
            if entry.is_dir(follow_symlinks=False):
                sub = entry.name
                break
            os.unlink(entry.name, dir_fd=fd)
        if sub is None:
            os.close(stack.pop())
            if names:
                os.rmdir(names.pop(), dir_fd=stack[-1])
            continue
        stack.append(os.open(sub, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd))
        names.append(sub)
    os.rmdir(top)


def build_fault_folder(root: Path) -> FaultFolder:
    """Good files of several kinds beside every per-file fault melodex must survive."""
    root.mkdir(parents=True)
    folder = FaultFolder(root)
    _good(folder, root / "good.flac", 0)
    _good(folder, root / "good.mp3", 1)
    _good(folder, root / "good.wav", 2)
    _good(folder, root / "song [live].wav", 3)  # rich markup in a name
    _good(folder, root / ("x" * (NAME_MAX - 4) + ".ogg"), 4)  # a 255-byte name
    _good(folder, root / "dir.wav" / "inside.flac", 5)  # a folder named like a file
    deep = _make_deep_chain(root / "deep", 1200, "d")  # deeper than Python's recursion limit
    assert len(os.fsencode(str(deep))) < PATH_MAX - 64
    _good(folder, root / "deep.wav", 6)  # libsndfile cannot write to a path over 1 KB: move it
    os.rename(root / "deep.wav", deep / "deep.wav")
    folder.good.remove(str(root / "deep.wav"))
    folder.good.add(str(deep / "deep.wav"))
    # a non-UTF-8 name (Latin-1 "café"): indexed, stored and searchable
    folder.raw_name = os.fsencode(str(root)) + b"/caf\xe9.wav"
    shutil.copyfile(root / "good.wav", folder.raw_name)
    folder.good.add(os.fsdecode(folder.raw_name))
    (root / "sub").mkdir()
    (root / "sub" / "up").symlink_to("..")  # a folder loop: walked once, no duplicates

    def bad(name: str, reason: str) -> Path:
        folder.bad[str(root / name)] = reason
        return root / name

    flac = (root / "good.flac").read_bytes()
    rng = random.Random(7)
    damaged = bytearray(flac)
    for i in range(len(flac) // 3, len(flac)):
        damaged[i] = rng.randrange(256)
    bad("corrupt.flac", r"corrupt").write_bytes(bytes(damaged))
    bad("truncated.flac", r"corrupt or truncated").write_bytes(flac[: int(len(flac) * 0.4)])
    bad("zero.wav", r"empty file \(zero bytes\)").write_bytes(b"")
    bad("text.mp3", r"not an audio file").write_text("a shopping list, not an mp3\n" * 40)
    (root / "bad [").mkdir()  # the path holds "[/x]", a closing tag to rich (crashed the CLI)
    bad("bad [/x].mp3", r"not an audio file").write_text("not an mp3 either")
    header = bytearray((root / "good.wav").read_bytes())
    assert header[12:16] == b"fmt "
    struct.pack_into("<I", header, 24, 2_000_000_000)  # a 2 GHz sample rate
    bad("huge-rate.wav", r"sample rate 2000000000 Hz").write_bytes(bytes(header))
    os.mkfifo(bad("fifo.wav", r"not a regular file \(a named pipe\)"))
    # links to files outside the folder are not followed by default (test_walk_roots.py
    # follows them: a character device, an I/O error)
    bad("dev-zero.wav", r"outside the folder").symlink_to("/dev/zero")
    bad("io-error.wav", r"outside the folder").symlink_to("/proc/self/mem")
    bad("broken.wav", r"broken symbolic link").symlink_to(root / "nowhere.wav")
    bad("loop-a.wav", r"symbolic link loop").symlink_to(root / "loop-b.wav")
    bad("loop-b.wav", r"symbolic link loop").symlink_to(root / "loop-a.wav")
    too_long, _ = _over_long_chain(root)
    folder.bad[too_long] = r"cannot read folder: File name too long"
    return folder


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultFolder]:
    base = tmp_path_factory.mktemp("faults")
    try:
        yield build_fault_folder(base / "music")
    finally:
        _remove_tree(base / "music")  # pytest's own cleanup recurses and cannot remove it


def _check_report(report_failed: list[tuple[str, str]], faults: FaultFolder) -> None:
    failed = dict(report_failed)
    assert len(failed) == len(report_failed), "a path failed twice"
    assert set(failed) == set(faults.bad), set(failed) ^ set(faults.bad)
    for path, pattern in faults.bad.items():
        assert re.search(pattern, failed[path]), (path, failed[path])


def _check_rows(store: Store, good: set[str]) -> None:
    rows = store.rows(columns=["path", "vector", "window_vectors", "duration", "content_hash"])
    paths = [r["path"] for r in rows]
    assert sorted(paths) == sorted(good)  # every good file once, nothing else
    for r in rows:
        v = np.asarray(r["vector"], np.float32)
        assert np.isfinite(v).all() and abs(float(np.linalg.norm(v)) - 1) < 1e-4
        assert len(r["window_vectors"]) >= 1 and r["duration"] > 3.5
        assert r["content_hash"] == file_hash(r["path"])


def test_bad_files_fail_with_reasons_and_good_ones_index(
    faults: FaultFolder, tmp_path: Path, toy_model
) -> None:
    lib = Library(tmp_path / "db", model=toy_model)
    report = lib.index(faults.root)
    assert sorted(report.added) == sorted(faults.good)
    _check_report(report.failed, faults)
    _check_rows(Store(tmp_path / "db"), faults.good)

    # the non-UTF-8 name round-trips through the store and comes back from a search
    caf = os.fsdecode(faults.raw_name)
    hits = lib.search("a plucked guitar", k=len(faults.good))
    assert {h.path for h in hits} == faults.good
    assert os.fsencode(next(h.path for h in hits if h.path == caf)) == faults.raw_name
    near = lib.similar(caf, k=3)
    assert len(near) == 3 and caf not in {h.path for h in near}
    assert Store(tmp_path / "db").find_path(caf)["path"] == caf

    # running again changes nothing and reports the same failures
    again = Library(tmp_path / "db", model=toy_model).index(faults.root)
    assert (again.added, again.updated, again.removed, again.skipped) == (
        [],
        [],
        [],
        len(faults.good),
    )
    _check_report(again.failed, faults)
    _check_rows(Store(tmp_path / "db"), faults.good)


@pytest.mark.heavy
def test_cli_reports_each_bad_file_and_never_crashes(
    faults: FaultFolder, tmp_path: Path, toy_model_dir: Path
) -> None:
    """Text output then JSON output, with a strict UTF-8 stdout (a desktop terminal's locale)."""
    db = str(tmp_path / "db")
    strict = {"PYTHONIOENCODING": "utf-8:strict"}
    res = _cli("index", str(faults.root), "--db", db, "--model", str(toy_model_dir), env=strict)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    assert f"{len(faults.good)} indexed" in res.stdout
    lines = res.stdout.splitlines()
    for path, pattern in faults.bad.items():
        line = next((x for x in lines if x.startswith(f"  failed {_shown(path)}: ")), None)
        assert line is not None, path
        assert re.search(pattern, line.split(": ", 1)[1]), line

    # the rerun and the searches in-process: CliRunner's stdout is strict UTF-8 too
    runner = CliRunner()
    again = runner.invoke(app, ["index", str(faults.root), "--db", db, "--json"])
    assert again.exit_code == 0 and again.exception is None, again.output
    summary = json.loads(again.stdout)  # valid JSON although one name is not UTF-8
    assert (summary["added"], summary["skipped"]) == ([], len(faults.good))
    _check_report([(f["path"], f["reason"]) for f in summary["failed"]], faults)

    found = runner.invoke(app, ["search", "organ", "-k", "20", "--db", db, "--json"])
    assert found.exit_code == 0 and found.exception is None, found.output
    paths = {h["path"] for h in json.loads(found.stdout)}
    assert paths == faults.good
    assert faults.raw_name in {os.fsencode(p) for p in paths}
    table = runner.invoke(app, ["search", "organ", "-k", "20", "--db", db], env={"COLUMNS": "400"})
    assert table.exit_code == 0 and table.exception is None, table.output
    assert "song [live].wav" in table.stdout and "caf\\xe9.wav" in table.stdout
    # describe --json of the file whose name is not UTF-8 (it once failed to print)
    raw = os.fsdecode(faults.raw_name)
    described = runner.invoke(app, ["describe", raw, "--db", db, "--json", "-k", "3"])
    assert described.exit_code == 0 and described.exception is None, described.output
    about = json.loads(described.stdout)
    assert os.fsencode(about["path"]) == faults.raw_name
    assert len(about["similar"]) == 3 and raw not in {h["path"] for h in about["similar"]}


@pytest.mark.heavy
def test_unreadable_file_and_folder_are_reported(
    tmp_path: Path, toy_model, toy_model_dir: Path
) -> None:
    """chmod 000 on a file and on a folder. Root reads them anyway, so as root the indexer runs
    under setpriv without the capabilities that bypass file permissions (CAP_DAC_OVERRIDE,
    CAP_DAC_READ_SEARCH): the same kernel checks a normal user meets."""
    music = tmp_path / "music"
    write_audio(music / "ok.flac", tone_piece(0, 4.0))
    secret = write_audio(music / "secret.flac", tone_piece(1, 4.0))
    locked = music / "locked"
    write_audio(locked / "hidden.flac", tone_piece(2, 4.0))
    expected = {
        str(locked): "cannot read folder: Permission denied",
        str(secret): "cannot read file: Permission denied",
    }
    secret.chmod(0)
    locked.chmod(0)
    try:
        if os.geteuid() != 0:
            report = Library(tmp_path / "db", model=toy_model).index(music)
            added, failed = report.added, dict(report.failed)
        else:
            if shutil.which("setpriv") is None:
                pytest.skip("running as root, which ignores chmod 000, and setpriv is missing")
            cmd = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", sys.executable]
            cmd += ["-m", "melodex", "index", str(music), "--db", str(tmp_path / "db"), "--json"]
            cmd += ["--model", str(toy_model_dir)]
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            assert res.returncode == 0, res.stderr[-3000:]
            summary = json.loads(res.stdout)
            added = summary["added"]
            failed = {f["path"]: f["reason"] for f in summary["failed"]}
        assert added == [str(music / "ok.flac")]
        assert failed == expected
    finally:
        secret.chmod(0o644)
        locked.chmod(0o755)


def test_path_encoding_round_trips() -> None:
    plain = "/music/Ça va [live] 100%.flac"
    assert encode_path(plain) == plain
    raw = os.fsdecode(b"/music/caf\xe9 100%.wav")
    stored = encode_path(raw)
    stored.encode("utf-8")  # valid UTF-8, as Arrow requires
    assert stored == "\x00/music/caf%E9%20100%25.wav"
    assert decode_path(stored) == raw and decode_path(plain) == plain


def test_damaged_flac_is_refused_not_cut_short(tmp_path: Path) -> None:
    """libsndfile stops at the damage with an error; FFmpeg, the fallback, skips the damaged
    frames silently and returns the first third: that must not pass for the track."""
    good = write_audio(tmp_path / "good.flac", tone_piece(0, 4.0))
    data = bytearray(good.read_bytes())
    rng = random.Random(3)
    for i in range(len(data) // 3, len(data)):
        data[i] = rng.randrange(256)
    bad = tmp_path / "damaged.flac"
    bad.write_bytes(bytes(data))
    with pytest.raises(AudioDecodeError, match=r"corrupt .* decodes only 1\.\d s of the 4\.0 s"):
        load_audio(bad, sr=MUSICNN_SR)


def test_seek_into_missing_data_is_a_decode_error(tmp_path: Path) -> None:
    """A FLAC cut short keeps a header promising the full length; seeking past the cut used to
    escape load_audio as soundfile's own exception."""
    data = write_audio(tmp_path / "whole.flac", tone_piece(1, 60.0)).read_bytes()
    cut = tmp_path / "cut.flac"
    cut.write_bytes(data[: len(data) // 4])
    assert len(load_audio(cut, sr=MUSICNN_SR, offset=1.0, duration=3.0)) == 3 * MUSICNN_SR
    with pytest.raises(AudioDecodeError, match="past the end|corrupt or truncated"):
        load_audio(cut, sr=MUSICNN_SR, offset=50.0, duration=3.0)


def test_non_utf8_name_decodes_with_libsndfile(tmp_path: Path) -> None:
    raw = os.fsencode(str(tmp_path)) + b"/caf\xe9.flac"
    shutil.copyfile(write_audio(tmp_path / "ok.flac", tone_piece(2, 4.0)), raw)
    name = os.fsdecode(raw)
    np.testing.assert_array_equal(
        load_audio(name, sr=MUSICNN_SR), load_audio(tmp_path / "ok.flac", sr=MUSICNN_SR)
    )
    assert probe(name).format == "FLAC"  # read by libsndfile, not the FFmpeg fallback


# --------------------------------------------------------------------------- long files


def test_window_count_is_frame_windows_count() -> None:
    for window in (1, 2, 7, 100):
        for n in range(0, 5 * window + 3):
            assert window_count(n, window) == len(frame_windows(np.zeros(n), window=window))


def test_long_file_read_by_windows_equals_full_decode(tmp_path: Path, toy_model) -> None:
    """Below the decoder's limit, the seek path (forced by a low threshold) gives the same
    vectors as decoding the whole file; at the model's rate bit for bit, and after resampling
    up to the resampler's ripple at the window edges."""
    model = toy_model
    window, rate = model.window_samples, model.sample_rate
    signal_ = tone_piece(3, 75.0, kind="organ")
    for path, exact in (
        (write_audio(tmp_path / "native.wav", signal_, sr=rate), True),
        (write_audio(tmp_path / "resampled.flac", signal_, sr=44100), False),
    ):
        item = _decode(str(path), rate, long_seconds=30.0)
        assert item.samples is None and item.info is not None and item.error is None
        long_row = embed_item(model, item)
        full = model.embed_waveform(load_audio(path, sr=rate))
        n = len(frame_windows(load_audio(path, sr=rate), window=window))
        assert n > model.config.max_windows  # windows really were skipped
        expected_starts = select_windows(n, max_windows=8) * window / rate
        np.testing.assert_allclose(long_row.window_starts, expected_starts, rtol=1e-6)
        np.testing.assert_allclose(long_row.window_starts, full.window_starts)
        assert abs(long_row.duration - full.duration) < 1e-3
        if exact:
            np.testing.assert_array_equal(long_row.vector, full.vector)
            np.testing.assert_array_equal(long_row.window_vectors, full.window_vectors)
            np.testing.assert_array_equal(long_row.tag_scores, full.tag_scores)
        else:
            assert float(long_row.vector @ full.vector) > 0.999
            np.testing.assert_allclose(long_row.tag_scores, full.tag_scores, atol=0.02)


def _write_long_flac(path: Path, hours: float, sr: int = 2000) -> None:
    """A long mono FLAC written in 10-minute blocks: silence, and each minute a 2-s tone whose
    pitch names the hour (110 Hz * (hour + 1)). Low-rate and mostly silent: ~2 MB for 10 h."""
    block = 600 * sr
    t = np.arange(2 * sr) / sr
    with sf.SoundFile(path, "w", sr, 1, subtype="PCM_16", format="FLAC") as f:
        for k in range(round(hours * 6)):
            y = np.zeros(block, np.float32)
            tone = 0.3 * np.sin(2 * np.pi * 110.0 * (1 + k // 6) * t)
            for minute in range(10):
                y[minute * 60 * sr : minute * 60 * sr + len(t)] = tone
            f.write(y)


@pytest.mark.heavy  # trains, runs a real model, or decodes hours: not in the fast tier
def test_ten_hour_file_is_indexed(tmp_path: Path, toy_model) -> None:
    """A 10-hour file (over the decoder's 3-hour limit per call) is indexed from the windows the
    model uses, at their real times in the file; a cut copy fails with the reason."""
    music = tmp_path / "music"
    music.mkdir()
    path = music / "radio-archive.flac"
    _write_long_flac(path, 10.0)
    write_audio(music / "short.flac", tone_piece(0, 4.0))
    damaged = path.read_bytes()
    (music / "cut-archive.flac").write_bytes(damaged[: len(damaged) // 3])

    model = toy_model
    window, rate = model.window_samples, model.sample_rate
    lib = Library(tmp_path / "db", model=model)
    report = lib.index(music)
    assert sorted(report.added) == [str(path), str(music / "short.flac")]
    assert [p for p, _ in report.failed] == [str(music / "cut-archive.flac")]
    assert re.search(r"cannot decode the window at \d+\.\d s: ", report.failed[0][1])

    row = lib.store.find_path(str(path))
    assert row["duration"] == 36000.0
    n = window_count(36000 * rate, window)
    chosen = select_windows(n, max_windows=model.config.max_windows)
    starts = np.asarray(row["window_starts"])
    np.testing.assert_allclose(starts, chosen * window / rate, rtol=1e-6)
    assert starts[-1] > 9 * 3600  # the last window is in the last hour
    windows = np.asarray(row["window_vectors"], np.float32)
    for start, stored in zip(starts, windows, strict=True):
        direct = load_audio(
            path, sr=rate, offset=float(start), duration=model.config.window_seconds
        )
        vec = model.embed_waveform(direct).window_vectors[0]
        np.testing.assert_allclose(stored, vec, atol=1e-5)
    hit = next(h for h in lib.search("a slow sine tone", k=2) if h.path == str(path))
    assert hit.duration == 36000.0 and hit.segment_start in set(starts.tolist())


# --------------------------------------------------------------------------- killed processes


def _music(
    folder: Path,
    n: int,
    *,
    seconds: float,
    prefix: str = "t",
    exts: tuple[str, ...] = (".flac", ".wav", ".ogg", ".mp3"),
) -> list[Path]:
    """``n`` short real tracks (mp3 through ffmpeg), in two sub-folders."""
    kinds = ("plucked", "organ", "clicks")
    return [
        write_audio(
            folder / f"sub{i % 2}" / f"{prefix}{i:03d}{exts[i % len(exts)]}",
            tone_piece(i, seconds, kind=kinds[i % 3]),
            tags={"title": f"{prefix} {i}"},
        )
        for i in range(n)
    ]


COMPARED = ("path", "content_hash", "vector", "window_vectors", "tag_scores", "duration")


def _contents(db: Path) -> list[tuple]:
    """Everything indexing decides about each track (not when it was written), sorted."""
    rows = Store(db).rows(columns=list(COMPARED))

    def f32(x: object) -> bytes:
        return np.asarray(x, np.float32).tobytes()

    return sorted(
        (r["path"], r["content_hash"], f32(r["vector"]), f32(r["window_vectors"]),
         f32(r["tag_scores"]), r["duration"])
        for r in rows
    )  # fmt: skip


def _check_whole_batches(db: Path, total: int, *, base: int = 0, batch: int = 16) -> int:
    """The store opens, every row is complete, and it holds whole batches only: ``base`` rows
    from earlier runs plus a multiple of ``batch``, or all ``total``."""
    if not (db / "tracks.lance").exists():
        return 0
    rows = Store(db).rows(columns=["path", "vector", "window_vectors", "tag_scores"])
    n = len(rows)
    assert n == total or (n >= base and (n - base) % batch == 0), f"{n} rows: a partial batch"
    assert len({r["path"] for r in rows}) == n, "duplicate rows"
    for r in rows:
        v = np.asarray(r["vector"], np.float32)
        assert np.isfinite(v).all() and abs(float(np.linalg.norm(v)) - 1) < 1e-4
        assert len(r["window_vectors"]) >= 1 and len(r["tag_scores"]) > 0
    return n


def _index_cmd(music: Path, db: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "melodex", "index", str(music), "--db", str(db), *extra]


def _phase_of(events: list[dict]) -> str:
    """Where a run was when it died, from the last event it emitted."""
    if not events:
        return "startup"
    kind = events[-1]["event"]
    return {"planned": "embedding", "file": "embedding", "committed": "between batches"}.get(
        kind, kind
    )


BATCH = 2  # rows per atomic commit in the kill test: many commits, so many kill points


def _kill_round(cmd: list[str], target: tuple[str, int], rng: random.Random) -> list[dict]:
    """Run the indexer, kill it with SIGKILL at ``target`` (an event kind and its count; or
    ("startup", 0): after a short seeded delay), and return every event it emitted. Its events
    hold it back (tests/child_events.py), so the kill lands in a live run on any machine."""
    proc = child_events.start(
        [*cmd, "--events", "--commit-every", str(BATCH)], stdout=subprocess.DEVNULL
    )
    events: list[dict] = []
    kind, count = target
    try:
        if kind == "startup":
            time.sleep(rng.uniform(0.0, 0.3))
        else:
            for event in child_events.events(proc):
                events.append(event)
                if event["event"] == kind and sum(e["event"] == kind for e in events) == count:
                    break
        assert proc.poll() is None, f"the run ended before its kill at {target}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        rest = proc.communicate(timeout=60)[1] or b""
    assert proc.returncode == -signal.SIGKILL, f"kill at {target} did not land: {proc.returncode}"
    if kind == "startup":  # what it managed to emit before the kill
        events = child_events.parse(rest)
    return events


@pytest.mark.heavy
def test_sigkilled_indexer_resumes_to_the_same_store(tmp_path: Path, toy_model) -> None:
    """`melodex index` killed with SIGKILL 20 times, at points read from its own progress events
    (before its first event, while embedding, while a batch is being written, between batches,
    while compacting), each kill landing in a live run; then run to the end, it leaves
    exactly the store one clean run makes: same tracks, content hashes, vectors, window vectors,
    tag scores and durations, nothing lost or duplicated. After each kill the store holds whole
    batches only. Compaction happens once a run has embedded everything, so before each
    compacting kill two more files arrive (the clean run indexes the same final folder)."""
    music, late = tmp_path / "music", tmp_path / "late"
    _music(music, 128, seconds=1.0, exts=(".flac", ".wav"))
    _music(late, 8, seconds=1.0, prefix="late", exts=(".flac", ".wav"))
    late_files = sorted(late.rglob("*.*"))
    db = tmp_path / "killed"
    cmd = _index_cmd(music, db)
    # the library exists and records the toy model, so the child processes load it
    Store(db, create=True).bind_model(
        toy_model.identity, toy_model.config.name, toy_model.dim, source=toy_model.source
    )
    rng = random.Random(1729)
    plan = ["startup"] * 3 + ["embedding"] * 4 + ["committing"] * 4 + ["between batches"] * 5
    rng.shuffle(plan)
    plan += ["compacting"] * 4
    landed: dict[str, int] = {}
    for phase in plan:
        stored = len(Store(db)) if (db / "tracks.lance").exists() else 0
        present = len(list(music.rglob("*.*")))
        if phase == "compacting":
            for src in late_files[:2]:
                shutil.move(src, music / "sub0" / src.name)
            late_files = late_files[2:]
            present += 2
        assert present - stored >= (2 if phase == "compacting" else 8), "no work left to kill"
        if phase == "startup":
            target = ("startup", 0)
        elif phase == "embedding":  # a file event that does not fill a batch
            target = ("file", rng.choice([1, 3]))
        elif phase == "committing":  # a batch's atomic write has started
            target = ("committing", rng.randint(1, 2))
        elif phase == "between batches":
            target = ("committed", rng.randint(1, 2))
        else:
            target = ("compacting", 1)
        events = _kill_round(cmd, target, rng)
        seen = _phase_of(events)
        landed[seen] = landed.get(seen, 0) + 1
        n = _check_whole_batches(db, total=present, batch=BATCH)
        assert n >= stored, "a kill lost committed tracks"
    print(f"kills by phase: {landed}")
    assert sum(landed.values()) == 20
    assert set(landed) >= {"startup", "embedding", "committing", "between batches", "compacting"}

    done = Library(db).index(music)  # the same code the CLI runs, with the recorded model
    assert done.failed == []
    Library(tmp_path / "clean", model=toy_model).index(music)
    assert _contents(db) == _contents(tmp_path / "clean")
    assert len(Store(db)) == 136


# --------------------------------------------------------------------------- a full disk


def _mount_tmpfs(where: Path, size: str) -> bool:
    """Mount a tmpfs of ``size`` at ``where``; False when this machine does not allow it."""
    if os.environ.get("MELODEX_TEST_NO_MOUNT") or shutil.which("mount") is None:
        return False
    where.mkdir()
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        timeout=30,
    )
    return res.returncode == 0


def _fill(where: Path, leave: int) -> Path:
    """A file taking all the free space of ``where`` but ``leave`` bytes."""
    st = os.statvfs(where)
    filler = where / "filler"
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))
    return filler


def _limit_file_size(limit: int) -> Callable[[], None]:
    """A preexec_fn: the child may write files up to ``limit`` bytes."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.heavy
def test_full_disk_fails_clearly_and_keeps_committed_tracks(tmp_path: Path, toy_model) -> None:
    """The library on a 4 MB tmpfs, filled up but for ~60 KB (room for one commit of 16 tracks,
    about 36 KB), is indexed by `melodex index`: it stops with a clear error naming the library and
    "no space left on device" (exit code 1, no traceback); the store still opens and reads with
    the tracks of every committed batch, whole; with space again, indexing completes.

    tmpfs because it fills up for real (ENOSPC from the kernel, as on a full laptop disk); it
    needs root and CAP_SYS_ADMIN. Where mounting is not allowed, the same run happens under
    RLIMIT_FSIZE (setrlimit in the child): writes past the limit fail with EFBIG, which tests the
    same error path with a different cause ("file too large")."""
    first, more = tmp_path / "first", tmp_path / "more"
    _music(first, 5, seconds=3.0, prefix="a", exts=(".flac", ".wav"))
    _music(more, 48, seconds=3.0, prefix="b", exts=(".flac", ".wav"))
    small = tmp_path / "small"
    mounted = _mount_tmpfs(small, "4m")
    if not mounted:
        small.mkdir(exist_ok=True)
    db = small / "db"
    try:
        lib = Library(db, model=toy_model)
        lib.index(first)
        assert len(lib) == 5
        cmd = [sys.executable, "-m", "melodex", "index", str(more), "--db", str(db)]
        if mounted:
            filler = _fill(small, leave=60_000)
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            cause = "no space left on device"
        else:
            filler = None
            res = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=300,
                preexec_fn=_limit_file_size(20_000),
            )
            cause = "file too large"
        assert res.returncode == 1, (res.stdout, res.stderr[-3000:])
        assert "Traceback" not in res.stderr
        message = " ".join(res.stderr.split())  # rich may wrap the line
        assert f"error: {db}: cannot write 16 track(s): {cause}" in message, message

        n = _check_whole_batches(db, total=53, base=5)
        stored = {r["path"] for r in Store(db).rows(columns=["path"])}
        assert {str(p) for p in first.rglob("*.*")} <= stored  # the first run's tracks intact
        if mounted:
            assert 5 < n < 53  # some batches of the failing run committed, not all
            with pytest.raises(StoreError, match=f"{re.escape(str(db))}: .*{cause}"):
                Library(db, model=toy_model).index(more)
            assert _check_whole_batches(db, total=53, base=5) >= n
            filler.unlink()
        lib = Library(db, model=toy_model)
        report = lib.index(more)
        assert report.failed == [] and len(lib) == 53
        _check_whole_batches(db, total=53, base=5)
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(small)], check=False, timeout=30)


# --------------------------------------------------------------------------- readers during writes


@pytest.mark.heavy
def test_search_while_another_process_indexes(tmp_path: Path, toy_model) -> None:
    """A `melodex index` child commits 32 tracks in four batches while this process searches without
    pause: no search fails, every hit is a complete row whose score is the final one (a track is
    seen whole or not at all), the hit count never shrinks, and the last search sees them all."""
    music = tmp_path / "music"
    tracks = _music(music, 40, seconds=3.0, exts=(".flac", ".wav"))
    later = tmp_path / "later"
    for path in tracks[8:]:
        (later / path.name).parent.mkdir(parents=True, exist_ok=True)
        path.rename(later / path.name)
    db = tmp_path / "db"
    lib = Library(db, model=toy_model)
    lib.index(music)  # the library exists, with 8 tracks
    for path in tracks[8:]:
        (later / path.name).rename(path)
    query = "slow organ chords"
    assert len(lib.search(query, k=100)) == 8
    all_paths = {str(p) for p in tracks}

    reader = Library(db, model=toy_model)
    seen: list[tuple[int, float, str, int]] = []  # (id, score, path, round)
    counts: list[int] = []
    cmd = [*_index_cmd(music, db), "--commit-every", "8"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while proc.poll() is None:
            hits = reader.search(query, k=100)
            counts.append(len(hits))
            for h in hits:
                assert h.path in all_paths and h.duration > 2.5 and h.segment_start is not None
                seen.append((h.id, h.score, h.path, len(counts)))
    finally:
        if proc.poll() is None:
            proc.kill()
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr[-3000:]
    final = reader.search(query, k=100)
    assert {h.path for h in final} == all_paths
    assert counts == sorted(counts), "a search saw fewer tracks than an earlier one"
    assert len(counts) > 10 and len(set(counts)) >= 3, counts  # batches landed during searches
    score = {h.id: h.score for h in final}
    for tid, s, path, _ in seen:
        assert abs(s - score[tid]) < 1e-5, path  # the row searched was the finished row
