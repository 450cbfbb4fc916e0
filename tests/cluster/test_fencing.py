"""Fencing in the PostgreSQL store: a write made under a lease this instance no longer
holds (another epoch, another owner, expired) is refused in its own transaction, and a
write under a valid lease holds the lease row until it commits."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
import trio
import trio.testing
from store_backends import Backend

from shiftd.cluster import tables
from shiftd.cluster.fencing import Fence, Fenced, fenced

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


async def test_a_takeover_waits_for_a_fenced_write_to_commit(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    assert backend.url is not None
    url = backend.url
    blocked: list[str] = []

    def write_then_try_a_takeover(conn: Any) -> None:
        insert(backend, "held")(conn)
        with psycopg.connect(url, autocommit=True) as other:
            other.execute("SET lock_timeout = '100ms'")
            try:
                other.execute("UPDATE cluster_leases SET epoch = epoch + 1 WHERE partition = 0")
            except psycopg.errors.LockNotAvailable:
                blocked.append("takeover waited")

    async with backend.running() as store:
        leased(backend)
        with fenced(Fence(ME, 0, 1)):
            await store._write(write_then_try_a_takeover)
    assert blocked == ["takeover waited"]
    assert written(backend, "held") == 1
