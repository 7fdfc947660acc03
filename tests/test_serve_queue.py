"""The server's admission gate: a bounded queue before 503 (serve/queue.py)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from melodex.serve.errors import ApiError
from melodex.serve.queue import Gate


def hold(gate: Gate, seconds: float) -> None:
    with gate():
        time.sleep(seconds)


def test_a_full_queue_answers_503_with_retry_after() -> None:
    gate = Gate(1, "query", queue=1, wait_seconds=5.0)
    release = threading.Event()
    started = threading.Event()

    def runner() -> None:
        with gate():
            started.set()
            release.wait(5)

    threads = [threading.Thread(target=runner)]
    threads[0].start()
    started.wait(5)
    threads.append(threading.Thread(target=hold, args=(gate, 0.0)))  # waits in the queue
    threads[1].start()
    deadline = time.monotonic() + 5
    while gate.waiting < 1 and time.monotonic() < deadline:
        time.sleep(0.005)
    with pytest.raises(ApiError) as info, gate():
        pass
    assert info.value.status == 503
    assert info.value.headers["Retry-After"] == "1"
    release.set()
    for t in threads:
        t.join(5)
    assert gate.waiting == 0
    with gate():  # free again
        pass


def test_a_wait_that_runs_out_answers_503() -> None:
    gate = Gate(1, "query", queue=4, wait_seconds=0.05)
    with gate(), pytest.raises(ApiError, match="waited"), gate():
        pass


def test_a_burst_of_48_waits_instead_of_failing() -> None:
    gate = Gate(2, "query", queue=64, wait_seconds=10.0)
    with ThreadPoolExecutor(48) as pool:
        results = list(pool.map(lambda _: hold(gate, 0.002), range(48)))
    assert results == [None] * 48


def test_no_slots_refuses_at_once() -> None:
    with pytest.raises(ApiError, match="none allowed"), Gate(0, "heavy", queue=8)():
        pass
