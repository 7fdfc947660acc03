"""`melodex index --ray ADDRESS` joins a cluster started separately (`ray start --head`), and an
address nothing answers at fails fast with a clear message instead of retrying for minutes."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from melodex.library.store import Store
from tests.music_fixtures import tone_piece, write_audio

pytest.importorskip("ray")
pytestmark = pytest.mark.heavy
RAY = shutil.which("ray", path=os.path.dirname(sys.executable)) or shutil.which("ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(
    *args: str, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = env or {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "melodex", *args],
        capture_output=True, text=True, timeout=timeout, env=env,
    )  # fmt: skip


def test_unreachable_cluster_fails_fast(tmp_path: Path) -> None:
    write_audio(tmp_path / "music" / "a.flac", tone_piece(1, seconds=3.0))
    port = _free_port()  # nothing listens here
    t0 = time.time()
    res = _cli("index", str(tmp_path / "music"), "--db", str(tmp_path / "db"),
               "--ray", f"127.0.0.1:{port}")  # fmt: skip
    assert res.returncode == 1
    assert f"cannot reach the Ray cluster at '127.0.0.1:{port}'" in res.stderr
    assert time.time() - t0 < 60


@pytest.mark.skipif(RAY is None, reason="the ray command is not installed")
def test_index_joins_a_running_cluster_by_address(tmp_path: Path) -> None:
    music = tmp_path / "music"
    for i in range(4):
        write_audio(music / f"t{i}.flac", tone_piece(200 + i, seconds=4.0))
    port = _free_port()
    # the cluster's own token, so no other Ray run on this machine can interfere
    token = secrets.token_hex(16)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    temp = tempfile.mkdtemp(prefix="mxray", dir="/tmp")  # short: Ray puts sockets in it
    head = [RAY, "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
            "--disable-usage-stats", f"--temp-dir={temp}"]  # fmt: skip
    subprocess.run(  # in a session of its own, so its daemons can be killed as one group
        head, check=True, capture_output=True, env=env, timeout=120, start_new_session=True
    )
    try:
        db = tmp_path / "db"
        res = _cli(
            "index", str(music), "--db", str(db), "--ray", f"127.0.0.1:{port}", "--json", env=env
        )
        assert res.returncode == 0, res.stderr
        summary = json.loads(res.stdout)
        assert len(summary["added"]) == 4 and summary["failed"] == []
        assert len(Store(db)) == 4
    finally:  # stop this cluster only (`ray stop` would stop every Ray on the machine)
        _kill_cluster(token)
        shutil.rmtree(temp, ignore_errors=True)


def _kill_cluster(token: str) -> None:
    """Kill the process groups of the cluster started with ``token`` (its daemons inherited
    the token; some helpers of theirs did not, but share their process group)."""
    groups = set()
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if proc.environ().get("RAY_AUTH_TOKEN") == token:
                groups.add(os.getpgid(proc.pid))
    for group in groups - {os.getpgrp()}:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
