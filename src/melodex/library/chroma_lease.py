"""The writer lease of a Chroma-backed library: one writer at a time without a lock.

Chroma has no locks and no transactions; its one compare-and-set is ``add`` of an id that
exists (ignored: the first writer wins). A writer holds a lease record ``lease.N`` with an owner
and an expiry in the server's clock, renewed by a background thread; a second writer fails fast
while the lease is live, and a killed writer's lease expires after ``lease_seconds``. Writes
made under a lease first check that no newer lease exists, so a writer whose lease was taken
over stops; without a fencing token, a takeover between that check and the write lets that one
write through (it needs a writer stalled past its whole lease).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from melodex.errors import StoreError

LEASE_SECONDS = 30.0
SAFE_FRACTION = 0.9  # a writer stops this far into its lease if renewals fail (clock margin)
_ONE = [[1.0]]  # the dummy embedding of the store's own records


@dataclass
class Lease:
    """The writer lease this process holds (``lost`` says why it no longer does)."""

    gen: int
    owner: str
    expires: float  # on the server's clock
    deadline: float  # the same moment on this process's monotonic clock
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    lost: str | None = None


class WriterLeases:
    """The lease records in a library's own collection, and the thread that renews ours."""

    def __init__(
        self,
        collection: Any,
        *,
        call: Callable[..., Any],
        server_time: Callable[[], float],
        location: str,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self._own = collection
        self._call = call
        self._server_time = server_time
        self.location = location
        self.lease_seconds = float(lease_seconds)

    @contextlib.contextmanager
    def holding(self) -> Iterator[Lease]:
        """Take the lease for the block; release it after (or let it expire if that fails)."""
        lease = self._acquire()
        try:
            yield lease
        finally:
            lease.stop.set()
            if lease.thread is not None:
                lease.thread.join()
            # A lease that cannot be released expires after lease_seconds anyway.
            with contextlib.suppress(StoreError):
                self._put_lease(lease, expires=0.0)

    def _leases(self) -> dict[int, dict[str, Any]]:
        got = self._call(
            "read the writer leases", self._own.get, where={"kind": "lease"}, include=["metadatas"]
        )
        return {int(m["gen"]): m for m in got["metadatas"]}

    def _acquire(self) -> Lease:
        started = time.monotonic()
        now = self._server_time()
        leases = self._leases()
        top = max(leases, default=0)
        if top and leases[top]["expires"] > now:
            holder = leases[top]
            raise StoreError(
                f"{self.location}: another process is indexing into this library "
                f"(pid {holder.get('pid')} on {holder.get('host')}; its lease runs "
                f"{holder['expires'] - now:.0f} s more unless renewed)"
            )
        lease = Lease(
            gen=top + 1,
            owner=uuid.uuid4().hex,
            expires=now + self.lease_seconds,
            deadline=started + SAFE_FRACTION * self.lease_seconds,
        )
        record = self._lease_record(lease)
        self._call(
            "take the writer lease",
            self._own.add,
            ids=[f"lease.{lease.gen}"],
            embeddings=_ONE,
            metadatas=[record],
        )
        leases = self._leases()  # add keeps the first of two racing writers: did we win?
        if max(leases) != lease.gen or leases[lease.gen]["owner"] != lease.owner:
            raise StoreError(
                f"{self.location}: another process is indexing into this library "
                "(it took the writer lease at the same moment)"
            )
        stale = [f"lease.{g}" for g in leases if g < lease.gen]
        if stale:
            self._call("drop old leases", self._own.delete, ids=stale)
        lease.thread = threading.Thread(
            target=self._renew, args=(lease,), name="melodex-chroma-lease", daemon=True
        )
        lease.thread.start()
        return lease

    def _lease_record(self, lease: Lease) -> dict[str, Any]:
        return {
            "kind": "lease",
            "gen": lease.gen,
            "owner": lease.owner,
            "expires": lease.expires,
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }

    def _put_lease(self, lease: Lease, *, expires: float) -> None:
        lease.expires = expires
        self._call(
            "renew the writer lease",
            self._own.upsert,
            ids=[f"lease.{lease.gen}"],
            embeddings=_ONE,
            metadatas=[self._lease_record(lease)],
        )

    def _renew(self, lease: Lease) -> None:
        """Background thread: extend the lease every third of its length until released."""
        while not lease.stop.wait(self.lease_seconds / 3):
            try:
                self._check_not_taken(lease)
                started = time.monotonic()
                self._put_lease(lease, expires=self._server_time() + self.lease_seconds)
                lease.deadline = started + SAFE_FRACTION * self.lease_seconds
            except StoreError as exc:
                if lease.lost or time.monotonic() > lease.deadline:  # too late to retry
                    lease.lost = lease.lost or f"could not renew it in time: {exc}"
                    return

    def _check_not_taken(self, lease: Lease) -> None:
        """A newer lease means ours expired and another writer took over."""
        got = self._call("check the writer lease", self._own.get, ids=[f"lease.{lease.gen + 1}"])
        if got["ids"]:
            lease.lost = "another writer took over after this one's lease expired"
            raise StoreError(f"{self.location}: lost the writer lease: {lease.lost}")

    def check(self, lease: Lease) -> None:
        """Before a write under the lease: still the writer?"""
        if lease.lost is None and time.monotonic() > lease.deadline:
            lease.lost = "it expired before it could be renewed"
        if lease.lost:
            raise StoreError(f"{self.location}: lost the writer lease: {lease.lost}")
        self._check_not_taken(lease)
