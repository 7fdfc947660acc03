"""The Ray indexer on a real local Ray cluster: the same rows as the single-process indexer,
the same incremental rules, and a worker killed mid-run costs nothing.

What "the same rows" means (docs/faults.md, "Same vectors"): with the toy model, whose numpy
arithmetic does not depend on thread counts, Ray rows equal single-process rows bit for bit;
with the real default model, whose torch kernels may round differently with 1 or 2 threads
(Ray workers run with 1), every value agrees to 1e-6 and rankings are identical."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from melodex.cli import optional_ray_address
from melodex.errors import ParameterError
from melodex.library.backends import open_store
from melodex.library.distributed import index_folder_ray
from melodex.library.indexer import index_folder
from melodex.library.store import Store
from tests import ray_gate
from tests.music_fixtures import tone_piece, write_audio
from tests.test_store_contract import _chroma_url, chroma_server  # noqa: F401 (a fixture)

ray = pytest.importorskip("ray")  # the extra is in dev; CI installs it
pytestmark = pytest.mark.heavy

KINDS = ("plucked", "organ", "clicks")
FORMATS = (".flac", ".ogg", ".mp3", ".wav")


@pytest.fixture(scope="module")
def hold_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """While this file exists, Ray tasks wait before decoding (tests/ray_gate.py)."""
    return tmp_path_factory.mktemp("ray-gate") / "hold"


@pytest.fixture(scope="module")
def cluster(hold_file: Path):
    """One local cluster with two worker CPUs for the whole module (start-up costs seconds)."""
    ray.cloudpickle.register_pickle_by_value(ray_gate)  # workers need not import tests/
    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
        runtime_env={"env_vars": {ray_gate.HOLD_ENV: str(hold_file)},
                     "worker_process_setup_hook": ray_gate.install},
    )  # fmt: skip
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def music(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ray-music")
    for i in range(10):
        ext = FORMATS[i % len(FORMATS)]
        y = tone_piece(100 + i, seconds=6.0 + i % 3, kind=KINDS[i % 3])
        write_audio(folder / f"album{i % 2}" / f"track{i:02d}{ext}", y, tags={"title": f"T{i}"})
    return folder


def snapshot(db: Path | str) -> dict[str, tuple]:
    """Everything a run decides about each track (not when it was written)."""
    cols = ["path", "content_hash", "size", "duration", "title", "vector", "window_vectors",
            "window_starts", "tag_scores"]  # fmt: skip
    out = {}
    for r in open_store(db).rows(columns=cols):
        arrays = tuple(
            np.asarray(r[c], np.float32).tobytes()
            for c in ("vector", "window_vectors", "window_starts", "tag_scores")
        )
        out[r["path"]] = (r["content_hash"], r["size"], r["duration"], r["title"], *arrays)
    return out


@pytest.fixture(scope="module")
def reference(toy_model, music: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    db = tmp_path_factory.mktemp("single") / "db"
    report = index_folder(Store(db, create=True), toy_model, music)
    assert len(report.added) == 10 and not report.failed
    return snapshot(db)


def test_single_process_runs_are_bit_identical(toy_model, music, reference, tmp_path) -> None:
    db = tmp_path / "again"
    index_folder(Store(db, create=True), toy_model, music, model_threads=2)
    assert snapshot(db) == reference


def test_real_model_rows_agree_to_the_stated_tolerance(
    cluster, base_model, music, tmp_path
) -> None:
    """The default model through Ray (1 torch thread per worker) and in this process with 1 and
    2 threads: every vector, window vector and tag score within 1e-6, the same rankings."""
    runs = {}
    for name, run in (
        ("threads=1", lambda db: index_folder(db, base_model, music, model_threads=1)),
        ("threads=2", lambda db: index_folder(db, base_model, music, model_threads=2)),
        ("ray", lambda db: index_folder_ray(db, base_model, music, batch_size=4)),
    ):
        db = tmp_path / name
        run(Store(db, create=True))
        runs[name] = {r["path"]: r for r in Store(db).rows()}
    first = runs["threads=1"]
    queries = base_model.encode_text(["organ", "plucked guitar", "noise", "calm piano"])
    for other in ("threads=2", "ray"):
        assert set(runs[other]) == set(first)
        for path, row in runs[other].items():
            for col in ("vector", "window_vectors", "tag_scores", "window_starts"):
                a = np.asarray(first[path][col], np.float64)
                b = np.asarray(row[col], np.float64)
                assert np.max(np.abs(a - b), initial=0.0) <= 1e-6, (other, path, col)
        paths = sorted(first)
        ranks = [
            np.argsort(-(queries @ np.stack([rs[p]["vector"] for p in paths]).T), kind="stable")
            for rs in (first, runs[other])
        ]
        np.testing.assert_array_equal(ranks[0], ranks[1])


def test_ray_writes_the_same_rows_as_the_single_process_path(
    cluster, toy_model, music, reference, tmp_path
) -> None:
    db = tmp_path / "db"
    seen: list[int] = []
    report = index_folder_ray(
        Store(db, create=True), toy_model, music, batch_size=3,
        progress=lambda done, total, path: seen.append(done),
    )  # fmt: skip
    assert sorted(report.added) == sorted(reference) and not report.failed
    assert seen == list(range(1, 11))
    assert snapshot(db) == reference
    # nothing to do the second time
    again = index_folder_ray(Store(db), toy_model, music)
    assert again.skipped == 10 and not (again.added or again.updated or again.failed)


def test_ray_full_coverage_writes_the_single_process_rows(cluster, toy_model, tmp_path) -> None:
    """Sampled first, then --coverage full: Ray re-embeds the same tracks, with every window."""
    folder = tmp_path / "music"
    for i, seconds in enumerate((14.0, 5.0, 11.0)):
        write_audio(folder / f"t{i}.flac", tone_piece(40 + i, seconds=seconds, kind=KINDS[i]))
    runs = {}
    for name, index in (("ray", index_folder_ray), ("single", index_folder)):
        db = tmp_path / name
        index(Store(db, create=True), toy_model, folder)
        report = index(Store(db), toy_model, folder, coverage="full")
        runs[name] = (sorted(report.updated), report.skipped, snapshot(db))
    assert runs["ray"] == runs["single"]
    assert runs["ray"][:2] == ([str(folder / "t0.flac"), str(folder / "t2.flac")], 1)


def test_ray_follows_the_incremental_rules(cluster, toy_model, music, tmp_path) -> None:
    folder = tmp_path / "music"
    shutil.copytree(music, folder)
    db = tmp_path / "db"
    index_folder_ray(Store(db, create=True), toy_model, folder)
    # one new file, one moved, one deleted, one changed, and two broken ones
    write_audio(folder / "new.flac", tone_piece(999, seconds=5.0))
    (folder / "album0" / "track00.flac").rename(folder / "moved.flac")
    (folder / "album1" / "track01.ogg").unlink()
    write_audio(folder / "album0" / "track02.mp3", tone_piece(555, seconds=5.0))
    (folder / "notes.mp3").write_text("not audio at all")
    (folder / "empty.wav").write_bytes(b"")
    report = index_folder_ray(Store(db), toy_model, folder, batch_size=2)
    assert report.added == [str(folder / "new.flac")]
    assert report.moved == [str(folder / "moved.flac")]
    assert report.removed == [str(folder / "album1" / "track01.ogg")]
    assert report.updated == [str(folder / "album0" / "track02.mp3")]
    failed = dict(report.failed)
    assert set(failed) == {str(folder / "notes.mp3"), str(folder / "empty.wav")}
    assert all(reason for reason in failed.values())
    store = Store(db)
    assert len(store) == 10 and len(set(store.ids())) == 10  # no duplicates
    # the same folder indexed from scratch by the single-process path gives the same rows
    clean = tmp_path / "clean"
    index_folder(Store(clean, create=True), toy_model, folder)
    assert snapshot(db) == snapshot(clean)


def _task_processes() -> list[psutil.Process]:
    """Ray worker processes currently running an embedding task (Ray names them after it)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if cmdline.startswith("ray::embed_batch"):
            found.append(proc)
    return found


def test_a_killed_worker_costs_nothing(
    cluster, toy_model, music, reference, hold_file, tmp_path
) -> None:
    """Two workers are killed while they hold a task (the gate keeps every task waiting until
    both kills are done), and the run still writes exactly the reference rows."""
    db = tmp_path / "db"
    killed: list[int] = []
    errors: list[str] = []
    handled: list[int] = []
    handled_at_kills: list[int] = []

    def killer() -> None:
        try:
            deadline = time.time() + 60
            while time.time() < deadline and len(killed) < 2:
                fresh = [p for p in _task_processes() if p.pid not in killed]
                if fresh:
                    os.kill(fresh[0].pid, signal.SIGKILL)
                    killed.append(fresh[0].pid)
                    handled_at_kills.append(len(handled))
                time.sleep(0.05)
        except Exception as exc:  # noqa: BLE001 - reported by the test below
            errors.append(repr(exc))
        finally:
            hold_file.unlink(missing_ok=True)  # let every task go on

    hold_file.touch()
    thread = threading.Thread(target=killer)
    thread.start()
    try:
        report = index_folder_ray(
            Store(db, create=True), toy_model, music, batch_size=2,
            progress=lambda done, total, path: handled.append(done),
        )  # fmt: skip
    finally:
        hold_file.unlink(missing_ok=True)
        thread.join()
    assert not errors, errors
    assert len(killed) == 2, f"only {len(killed)} worker(s) seen running a task"
    assert handled_at_kills == [0, 0]  # the gate held: both kills hit tasks mid-run
    assert not report.failed, report.failed
    assert snapshot(db) == reference


def test_an_interrupted_ray_run_resumes(cluster, toy_model, music, reference, tmp_path) -> None:
    db = tmp_path / "db"

    def interrupt(done: int, total: int, path: str) -> None:
        if done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        index_folder_ray(
            Store(db, create=True), toy_model, music, batch_size=1, commit_every=2,
            progress=interrupt,
        )  # fmt: skip
    partial = len(Store(db))
    assert 2 <= partial < 10
    report = index_folder_ray(Store(db), toy_model, music)
    assert report.skipped == partial and len(report.added) == 10 - partial
    assert snapshot(db) == reference


def test_ray_flag_takes_an_optional_address() -> None:
    assert optional_ray_address(["index", "/music", "--ray"]) == [
        "index",
        "/music",
        "--ray",
        "local",
    ]
    assert optional_ray_address(["index", "--ray", "/music"]) == [
        "index",
        "--ray",
        "local",
        "/music",
    ]
    for address in ("auto", "10.0.0.5:6379", "ray://head:10001", "local"):
        assert optional_ray_address(["index", "--ray", address, "d"])[2] == address
    assert optional_ray_address(["index", "--ray=auto", "d"]) == ["index", "--ray=auto", "d"]


def test_a_pretrained_family_model_indexes_on_ray(cluster, tmp_path) -> None:
    """A ``clap-hf:FOLDER`` model (random weights in the transformers format) is no melodex
    folder: it travels to the workers as its spec, they load the same weights (the identity
    check), and the rows agree with this process's within the stated 1e-6 (rel. to unit norm)."""
    from melodex.models import load_model
    from tests.clap_fixtures import make_clap_folder

    spec = f"clap-hf:{make_clap_folder(tmp_path / 'tiny-clap')}"
    model = load_model(spec)
    music = tmp_path / "music"
    for i, kind in enumerate(("plucked", "organ", "clicks")):
        write_audio(music / f"t{i}.flac", tone_piece(i, 4.0, kind=kind))
    report = index_folder_ray(Store(tmp_path / "ray", create=True), model, music, batch_size=2)
    assert len(report.added) == 3 and not report.failed, report.failed
    index_folder(Store(tmp_path / "local", create=True), model, music, model_threads=1)
    ray_rows = {r["path"]: r for r in Store(tmp_path / "ray").rows()}
    local_rows = {r["path"]: r for r in Store(tmp_path / "local").rows()}
    assert set(ray_rows) == set(local_rows)
    for path, row in ray_rows.items():
        a = np.asarray(local_rows[path]["vector"], np.float64)
        assert np.max(np.abs(a - np.asarray(row["vector"], np.float64))) <= 1e-6, path


def test_a_file_that_keeps_killing_its_worker_is_reported(
    cluster, toy_model, music, tmp_path
) -> None:
    """Every worker that opens the poison file dies (as with a decoder crash); its batch-mates
    are indexed anyway and the file is reported as failed, with the reason. One rerun per task
    (the default is 3): each death costs a new worker process, and 2 + 2 show the mechanism."""
    folder = tmp_path / "music"
    shutil.copytree(music / "album0", folder)
    poison = write_audio(folder / "poison.wav", tone_piece(7, seconds=240.0))  # open ~0.5 s
    kills = 0
    stop = threading.Event()

    def killer() -> None:
        nonlocal kills
        while not stop.is_set():
            for proc in _task_processes():
                try:
                    if any(f.path == str(poison) for f in proc.open_files()):
                        proc.kill()
                        kills += 1
                except psutil.Error:
                    pass
            time.sleep(0.005)

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        report = index_folder_ray(Store(tmp_path / "db", create=True), toy_model, folder,
                                  batch_size=3, retries=1)  # fmt: skip
    finally:
        stop.set()
        thread.join()
    assert kills >= 2
    failed = dict(report.failed)
    assert list(failed) == [str(poison)]
    assert "worker failed on this file (2 tries)" in failed[str(poison)]
    assert len(report.added) == 5 and str(poison) not in report.added


def test_ray_indexes_into_a_networked_store(
    cluster,
    toy_model,
    music,
    reference,
    chroma_server,  # noqa: F811 (the fixture)
) -> None:
    """The Ray driver writes through the store interface, so a Chroma server works too."""
    url = _chroma_url(chroma_server, "ray")
    report = index_folder_ray(open_store(url, create=True), toy_model, music, batch_size=3)
    assert len(report.added) == 10 and not report.failed
    assert snapshot(url) == reference
    again = index_folder_ray(open_store(url), toy_model, music)
    assert again.skipped == 10 and not (again.added or again.failed)


def test_negative_retries_are_refused_before_any_work(toy_model, tmp_path) -> None:
    with pytest.raises(ParameterError, match="retries must be 0 or more, not -1"):
        index_folder_ray(Store(tmp_path / "db", create=True), toy_model, tmp_path, retries=-1)
