"""The installed command leaves without the interpreter's teardown (melodex.quick.console), and
loses nothing by it: exit status, buffered output, atexit handlers, running threads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

SCRIPT = """
import atexit, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from melodex import quick

out = Path(sys.argv[1])
atexit.register(lambda: (out / "atexit").write_text("ran"))

def late():
    time.sleep(0.3)
    (out / "thread").write_text("done")

threading.Thread(target=late).start()
ThreadPoolExecutor(1).submit(lambda: None)  # an idle pool never shut down must not hang the exit
sys.stdout.write("buffered, never flushed by hand;")
sys.argv = ["melodex", "--help"]
quick.console()
"""


def _run(args: list[str], **kw) -> subprocess.CompletedProcess[str]:  # noqa: ANN003
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=90, check=False, **kw
    )


def test_console_runs_exit_handlers_joins_threads_and_flushes(tmp_path: Path) -> None:
    proc = _run(["-c", SCRIPT, str(tmp_path)])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("buffered, never flushed by hand;")
    assert "index" in proc.stdout  # the help text printed by the command itself
    assert (tmp_path / "atexit").read_text() == "ran"
    assert (tmp_path / "thread").read_text() == "done"


def test_console_keeps_the_commands_exit_status_and_message(tmp_path: Path) -> None:
    args = ["search", "calm piano", "--db", str(tmp_path / "nothing-here"), "--json"]
    ordinary = _run(["-c", "import sys; from melodex.quick import main; main(sys.argv[1:])", *args])
    fast = _run(["-m", "melodex", *args])
    assert ordinary.returncode != 0
    assert (fast.returncode, fast.stdout, fast.stderr) == (
        ordinary.returncode,
        ordinary.stdout,
        ordinary.stderr,
    )


@pytest.mark.parametrize(("code", "status", "stderr"), [("'boom'", 1, "boom\n"), ("None", 0, "")])
def test_leave_exits_as_sys_exit_would(code: str, status: int, stderr: str) -> None:
    proc = _run(["-c", f"from melodex.quick import leave; leave({code})"])
    assert (proc.returncode, proc.stderr) == (status, stderr)
