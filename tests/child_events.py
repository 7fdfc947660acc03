"""A CLI child whose ``--events`` stream (JSON lines on stderr) holds it back: it cannot run ahead.

Tests that interrupt ``melodex index`` at a point read from its events must not depend on how
fast the machine is: on a loaded machine the test process may be descheduled for a second
while the child indexes everything and exits, and the signal then lands in no run at all. So
the child's stderr is a pipe of one page (4 KiB) that the test reads without a buffer of its
own: once the test stops reading, the child blocks on its next event after at most a page of
output (some 25 file events), so the run is still live when the signal comes.

The child also gets SIGINT's default action back: when the suite itself runs as a background
job of a non-interactive shell (``make test &``), SIGINT is ignored for it and every child
inherits that, so Python installs no KeyboardInterrupt handler and the child runs on through a
Ctrl-C (as it rightly does for a user's own background job). Seen: the SIGINT test failed so.
"""

from __future__ import annotations

import fcntl
import json
import signal
import subprocess
from collections.abc import Iterator

PIPE_BYTES = 4096  # the smallest pipe Linux makes: one page


def start(cmd: list[str], **popen: object) -> subprocess.Popen[bytes]:
    """Start ``cmd`` with its stderr on a one-page pipe that the caller reads unbuffered."""
    proc = subprocess.Popen(  # type: ignore[call-overload]
        cmd, stderr=subprocess.PIPE, bufsize=0, preexec_fn=_default_sigint, **popen
    )
    assert proc.stderr is not None
    fcntl.fcntl(proc.stderr.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    return proc


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def events(proc: subprocess.Popen[bytes]) -> Iterator[dict]:
    """The child's events as they come; reads byte-wise, so nothing is read ahead of them."""
    assert proc.stderr is not None
    for raw in iter(proc.stderr.readline, b""):
        if raw.startswith(b'{"event"'):
            yield json.loads(raw)


def parse(text: str | bytes) -> list[dict]:
    """The events in a captured stderr."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return [json.loads(x) for x in text.splitlines() if x.startswith('{"event"')]
