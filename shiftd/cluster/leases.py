"""The lease manager: holds this instance's share of the partitions and renews it.

Every `ttl / 3` one transaction renews our leases and heartbeat, then acquires free or
expired partitions up to our fair share (ceil(P / live instances)). When an instance joins,
the others find their share smaller and give back their extras gracefully: the partition's
actors stop first (each finishes the message in hand), then the lease is released, so the
newcomer takes it at its next round. A graceful stop releases everything, so a restart or a
rolling deploy hands over at once instead of after the TTL.

Validity is judged locally on Trio's clock as well as in the database: a lease counts as
held until `start of the last successful renewal + ttl - margin`. If no renewal has
succeeded by then (the database is unreachable, the process was paused), the partitions'
actors are cancelled at once (`PartitionHost.lost`) and `cluster.lease_lost` is logged —
and `holds()` says False from that instant on, even before the watchdog task has run.
Writes carry the lease's epoch (`shiftd.cluster.fencing`), so whatever a stale instance
still tries is refused by the database.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import psycopg
import trio

from ..clock import Clock
from ..logs import get_logger
from ..store.base import StoreError
from ..store.url import redacted
from . import tables
from .fencing import Fence
from .ownership import Member, NotHeld, PartitionHost
from .partitions import DEFAULT_PARTITIONS

log = get_logger(__name__)
T = TypeVar("T")


def instance_id_for(name: str | None) -> str:
    """An id unique to this process start: the configured name (default: the host name)
    and a random suffix."""
    return f"{name or socket.gethostname()}-{secrets.token_hex(3)}"


class LeaseManager(Member):
    """Implements `Ownership` for a cluster. Start with `await nursery.start(manager.run)`
    once the store has created its schema; `attach` the host (the supervisor) first."""

    def __init__(
        self,
        url: str,
        *,
        name: str | None = None,
        partitions: int = DEFAULT_PARTITIONS,
        ttl: timedelta = timedelta(seconds=15),
        margin: timedelta | None = None,
        clock: Clock | None = None,
        host: PartitionHost | None = None,
    ) -> None:
        self.url = url
        self.name = name or socket.gethostname()
        super().__init__(instance_id_for(self.name), partitions)
        self.ttl = ttl
        self._ttl = ttl.total_seconds()
        self._margin = (margin if margin is not None else ttl / 5).total_seconds()
        self._interval = self._ttl / 3
        self._clock = clock
        self._host = host
        self._conn: psycopg.Connection[Any] | None = None
        self._limiter = trio.CapacityLimiter(1)
        self._held: dict[int, int] = {}  # partition → epoch
        self._giving: set[int] = set()
        self._valid_until = -float("inf")
        self._changed = trio.Event()
        self._stopping = trio.Event()
        self._stopped = trio.Event()
        self.renewals = 0
        self.renewal_failures = 0
        self.losses = 0

    def attach(self, host: PartitionHost) -> None:
        """Drive `host` (the supervisor): take, give back and lose partitions."""
        self._host = host

    # ---- Ownership -----------------------------------------------------------------------

    def _valid(self) -> bool:
        return trio.current_time() < self._valid_until

    def holds(self, partition: int) -> bool:
        return partition in self._held and self._valid()

    def held(self) -> frozenset[int]:
        return frozenset(self._held) if self._valid() else frozenset()

    def fence(self, partition: int) -> Fence:
        epoch = self._held.get(partition)
        if epoch is None or not self._valid():
            raise NotHeld(f"partition {partition} is not held by {self._instance_id}")
        return Fence(self._instance_id, partition, epoch, self._checker(partition, epoch))

    def _checker(self, partition: int, epoch: int) -> Callable[[], bool]:
        return lambda: self._held.get(partition) == epoch and self._valid()

    def changed(self) -> trio.Event:
        return self._changed

    def fenced(self, fence: Fence) -> None:
        """A write under `fence` was refused: stop counting its partition as held (its
        actors are cancelled); the next round may acquire it again with a new epoch."""
        if self._held.get(fence.partition) == fence.epoch:
            self._lose(frozenset({fence.partition}), "a write was refused as fenced")

    # ---- running -------------------------------------------------------------------------

    async def run(
        self, *, task_status: trio.TaskStatus[LeaseManager] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Register, take a first share, report started, then renew every `ttl / 3` until
        `stop()` or cancellation; either way give back every partition (actors stopped
        first) and release the leases before returning.

        Raises StoreError if the database cannot be reached at start or was set up with
        another number of partitions. Later failures to renew are logged and retried; the
        leases lapse locally as described in the module."""
        try:
            await trio.to_thread.run_sync(self._open, limiter=self._limiter)
            log.info(
                "cluster.joined",
                instance=self._instance_id,
                partitions=self._partitions,
                ttl_s=self._ttl,
            )
            async with trio.open_nursery() as nursery:
                await self._round(nursery)
                nursery.start_soon(self._watchdog)
                task_status.started(self)
                while not self._stopping.is_set():
                    with trio.move_on_after(self._interval):
                        await self._stopping.wait()
                    if not self._stopping.is_set():
                        await self._round(nursery)
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await self._leave()
            self._stopped.set()

    async def stop(self) -> None:
        """Give back every partition and release the leases; returns once done (or at
        once if `run` is not running)."""
        self._stopping.set()
        if self._conn is not None:
            await self._stopped.wait()

    def _open(self) -> None:
        try:
            conn = psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=max(1, int(self._ttl)),
                # A renewal that cannot finish within its interval is a failed renewal.
                options=f"-c statement_timeout={max(1, int(self._interval * 1000))}"
                f" -c lock_timeout={max(1, int(self._interval * 500))}",
                application_name=f"shiftd leases {self._instance_id}",
            )
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to {redacted(self.url)}: {exc}") from exc
        try:
            tables.set_up(conn, self._partitions)
            self._register(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _register(self, conn: psycopg.Connection[Any]) -> None:
        tables.register(conn, self._instance_id, self.name, socket.gethostname(), os.getpid())

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(connection, *args)` on the lease connection's thread (one at a time); a
        broken connection is replaced first."""

        def call() -> T:
            if self._conn is not None and (self._conn.broken or self._conn.closed):
                self._conn.close()
                self._conn = None
            if self._conn is None:
                self._open()
            assert self._conn is not None
            return fn(self._conn, *args)

        return await trio.to_thread.run_sync(call, limiter=self._limiter)

    async def _round(self, nursery: trio.Nursery) -> None:
        """Renew, acquire, and start giving back extras; on failure keep what is held
        until it lapses locally."""
        started = trio.current_time()
        at = self._clock.now() if self._clock is not None else datetime.now(UTC)
        try:
            found = await self._call(
                tables.renew_and_acquire,
                self._instance_id,
                dict(self._held),
                self.ttl,
                -1,
                self._partitions,
                at,
            )
        except tables.Unregistered:
            # Silent for so long that the others forgot this instance (its leases lapsed
            # long ago): join again; the next round takes a share.
            self.renewal_failures += 1
            try:
                await self._call(self._register)
            except (psycopg.Error, StoreError) as exc:
                log.warning("cluster.renewal_failed", error=str(exc).splitlines()[0][:200])
                return
            log.warning("cluster.rejoined", instance=self._instance_id)
            return
        except (psycopg.Error, StoreError) as exc:
            self.renewal_failures += 1
            log.warning("cluster.renewal_failed", error=str(exc).splitlines()[0][:200])
            return
        self.renewals += 1
        # What the database did not renew is someone else's now (or expired there).
        gone = frozenset(self._held) - frozenset(found.renewed)
        if gone:
            self._lose(gone, "not renewed: another instance holds it or it expired")
        self._valid_until = started + self._ttl - self._margin
        if found.abandoned:
            log.warning("sender.abandoned_in_flight", count=found.abandoned)
        if found.acquired:
            self._held.update(found.acquired)
            log.info(
                "cluster.acquired",
                partitions=sorted(found.acquired),
                held=len(self._held),
                live=found.live,
            )
            if self._host is not None:
                try:
                    await self._host.take(frozenset(found.acquired))
                except Exception as exc:
                    # Its shifts could not be read (or the host is stopping): not ours to
                    # run yet. The next round takes the partitions again (a new epoch).
                    log.warning("cluster.take_failed", error=str(exc).splitlines()[0][:200])
                    self._lose(frozenset(found.acquired), "its shifts could not be recovered")
                    return
            self._signal()
        share = -(-self._partitions // max(1, found.live))
        keeping = [p for p in sorted(self._held) if p not in self._giving]
        extras = frozenset(keeping[share:])
        if extras:
            self._giving |= extras
            nursery.start_soon(self._give_back, extras)

    async def _give_back(self, partitions: frozenset[int]) -> None:
        """Stop the partitions' actors, then release their leases."""
        log.info("cluster.giving_back", partitions=sorted(partitions))
        try:
            if self._host is not None:
                await self._host.give_back(partitions)
            mine = frozenset(p for p in partitions if p in self._held)
            for p in mine:
                del self._held[p]
            self._signal()
            await self._call(tables.release, self._instance_id, mine)
        except (psycopg.Error, StoreError) as exc:
            # The leases lapse by themselves within the TTL.
            log.warning("cluster.release_failed", error=str(exc).splitlines()[0][:200])
        finally:
            self._giving -= partitions

    async def _watchdog(self) -> None:
        """Cancel the held partitions' work the moment their leases lapse locally."""
        while True:
            if self._held:
                await trio.sleep_until(self._valid_until)
                if self._held and not self._valid():
                    self._lose(frozenset(self._held), "not renewed in time")
            else:
                await trio.sleep(self._interval)

    def _lose(self, partitions: frozenset[int], why: str) -> None:
        for p in partitions:
            self._held.pop(p, None)
        self.losses += 1
        log.warning(
            "cluster.lease_lost",
            instance=self._instance_id,
            partitions=sorted(partitions),
            reason=why,
        )
        if self._host is not None:
            self._host.lost(partitions)
        self._signal()

    def _signal(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _leave(self) -> None:
        """Give back every partition held (actors first, bounded by the TTL), then release
        every lease and forget this instance."""
        held = frozenset(self._held)
        if held and self._host is not None:
            # No renewals from here on: what has not stopped while the leases are valid
            # is cancelled.
            with trio.move_on_at(self._valid_until):
                await self._host.give_back(held)
            if not self._valid():
                self._host.lost(held)
        self._held.clear()
        self._signal()
        if self._conn is None:
            return
        try:
            with trio.move_on_after(self._ttl):
                await self._call(tables.leave, self._instance_id)
            log.info("cluster.left", instance=self._instance_id)
        except (psycopg.Error, StoreError) as exc:
            log.warning("cluster.leave_failed", error=str(exc).splitlines()[0][:200])
        finally:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

    async def overview(self) -> dict[str, Any]:
        """The cluster as the database sees it (`tables.overview`), with this instance's
        id: what `shiftctl status` shows."""
        found = await self._call(tables.overview)
        return {"instance": self._instance_id, "ttl_s": self._ttl, **found}
