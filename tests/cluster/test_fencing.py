"""Fencing in the PostgreSQL store: a write made under a lease this instance no longer
holds (another epoch, another owner, expired) is refused in its own transaction, and a
write under a valid lease keeps a takeover off its partition until it commits, without
holding up the owner's renewal."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest
import trio
import trio.testing
from store_backends import Backend

from shiftd.cluster import tables
from shiftd.cluster.fencing import Fence, Fenced, fenced
from shiftd.testing.engine import EPOCH

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)

ME = "a-0001"


def leased(backend: Backend, owner: str = ME, epoch: int = 1, expires: str = "1 hour") -> None:
    """Partition 0 leased to `owner` at `epoch`, expiring `expires` from now."""
    assert backend.url is not None
    with psycopg.connect(backend.url, autocommit=True) as conn:
        tables.set_up(conn, 4)
    backend.sql(
        "UPDATE cluster_leases SET owner = ?, epoch = ?,"
        " expires_at = now() + CAST(? AS interval) WHERE partition = 0",
        (owner, epoch, expires),
    )


def insert(backend: Backend, kind: str) -> Any:
    return backend.write_fn(
        "INSERT INTO events (shift_id, ts, kind) VALUES ('s', '2025-07-01T14:00:00Z', ?)",
        (kind,),
    )


def written(backend: Backend, kind: str) -> int:
    return int(backend.sql("SELECT count(*) FROM events WHERE kind = ?", (kind,))[0][0])


async def test_a_write_under_the_current_lease_commits(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    async with backend.running() as store:
        leased(backend)
        with fenced(Fence(ME, 0, 1)):
            await store._write(insert(backend, "mine"))
    assert written(backend, "mine") == 1


async def test_a_write_with_a_stale_epoch_is_refused_and_writes_nothing(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    async with backend.running() as store:
        leased(backend, epoch=2)  # taken again since: epoch 1 is stale
        with fenced(Fence(ME, 0, 1)), pytest.raises(Fenced, match="partition 0"):
            await store._write(insert(backend, "stale"))
        await store._write(insert(backend, "unfenced"))  # its neighbours are not affected
    assert written(backend, "stale") == 0
    assert written(backend, "unfenced") == 1


async def test_a_write_under_a_lease_another_instance_took_is_refused(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    async with backend.running() as store:
        leased(backend, owner="b-0002", epoch=1)
        with fenced(Fence(ME, 0, 1)), pytest.raises(Fenced):
            await store._write(insert(backend, "theirs"))
    assert written(backend, "theirs") == 0


async def test_a_write_under_an_expired_lease_is_refused(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    async with backend.running() as store:
        leased(backend, expires="-1 second")
        with fenced(Fence(ME, 0, 1)), pytest.raises(Fenced):
            await store._write(insert(backend, "late"))
    assert written(backend, "late") == 0


async def test_a_takeover_skips_a_partition_while_a_fenced_write_is_in_flight(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    """The lease lapses while the write is in flight: another instance's takeover round
    leaves the partition alone until the write has committed."""
    assert backend.url is not None
    url = backend.url
    taken: list[dict[int, int]] = []

    def write_then_try_a_takeover(conn: Any) -> None:
        insert(backend, "held")(conn)
        with psycopg.connect(url, autocommit=True) as other:
            other.execute("UPDATE cluster_leases SET expires_at = now() WHERE partition = 0")
            taken.append(_round(other, "b-0001", want=4).acquired)

    async with backend.running() as store:
        leased(backend)
        with fenced(Fence(ME, 0, 1)):
            await store._write(write_then_try_a_takeover)
    assert taken == [{1: 1, 2: 1, 3: 1}]  # the free ones, not partition 0
    assert written(backend, "held") == 1
    with psycopg.connect(url, autocommit=True) as conn:
        assert _round(conn, "c-0001", want=1).acquired == {0: 2}  # committed: taken now


async def test_a_renewal_does_not_wait_for_a_fenced_write(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    assert backend.url is not None
    url = backend.url
    renewed: list[object] = []

    def write_then_renew(conn: Any) -> None:
        insert(backend, "held")(conn)
        with psycopg.connect(url, autocommit=True) as other:
            other.execute("SET lock_timeout = '2s'")
            try:
                renewed.append(_round(other, ME, held={0: 1}, want=1).renewed)
            except psycopg.errors.LockNotAvailable:
                renewed.append("the renewal waited for the write")

    async with backend.running() as store:
        leased(backend)
        with fenced(Fence(ME, 0, 1)):
            await store._write(write_then_renew)
    assert renewed == [{0: 1}]
    assert written(backend, "held") == 1


def _round(
    conn: psycopg.Connection[Any],
    instance_id: str,
    *,
    want: int,
    held: dict[int, int] | None = None,
) -> tables.Round:
    """One lease round of `instance_id` (registered now) over the 4 partitions."""
    tables.register(conn, instance_id, instance_id, "host", 1)
    return tables.renew_and_acquire(
        conn, instance_id, held or {}, timedelta(seconds=15), want, 4, EPOCH
    )
