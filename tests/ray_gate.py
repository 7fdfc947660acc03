"""A gate in front of every decode in Ray's worker processes, for tests that must catch a worker
mid-task: while the hold file exists, tasks wait before decoding, so a killer cannot miss them
however fast the machine is (a wall-clock race failed on a fast 2-core Xeon).

Installed by Ray's ``worker_process_setup_hook`` in each worker the cluster fixture starts; with no
hold file every task runs as usual.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

HOLD_ENV = "MELODEX_TEST_RAY_HOLD"
MAX_WAIT_S = 120.0


def install() -> None:
    """Wrap ``melodex.library.distributed._decode`` in this worker with the hold-file wait."""
    hold = os.environ.get(HOLD_ENV)
    if not hold:
        return
    from melodex.library import distributed

    decode = distributed._decode

    def held_decode(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        deadline = time.monotonic() + MAX_WAIT_S
        while Path(hold).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return decode(*args, **kwargs)

    distributed._decode = held_decode
