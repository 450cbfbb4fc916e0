"""Leases on one PostgreSQL database: two lease managers in one process, each driving a
host that records what it was told. Time is virtual; the database's expiry is made to pass
by moving `expires_at` back, never by waiting."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
import trio
import trio.testing
from prometheus_client.parser import text_string_to_metric_families
from store_backends import Backend

from shiftd.cluster import tables
from shiftd.cluster.leases import LeaseManager
from shiftd.cluster.ownership import NotHeld
from shiftd.cluster.tables import PartitionsMismatch
from shiftd.metrics import Metrics

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)

P = 8
TTL = timedelta(seconds=30)


class Host:
    """Records what the lease manager asked of it."""

    def __init__(self) -> None:
        self.taken: set[int] = set()
        self.given: set[int] = set()
        self.lost_now: set[int] = set()
        self.lost_event = trio.Event()

    async def take(self, partitions: frozenset[int]) -> None:
        self.taken |= partitions

    async def give_back(self, partitions: frozenset[int]) -> None:
        self.given |= partitions

    def lost(self, partitions: frozenset[int]) -> None:
        self.lost_now |= partitions
        self.lost_event.set()


@pytest.fixture
async def schema(backend: Backend) -> Backend:
    """The store's schema (the outbox), as a store creates it at start."""
    async with backend.running():
        pass
    return backend


@asynccontextmanager
async def manager(
    backend: Backend, host: Host | None = None, partitions: int = P
) -> AsyncIterator[LeaseManager]:
    assert backend.url is not None
    leases = LeaseManager(backend.url, name="test", partitions=partitions, ttl=TTL, host=host)
    async with trio.open_nursery() as nursery:
        await nursery.start(leases.run)
        yield leases
        await leases.stop()


async def until(condition: Callable[[], bool], *watched: LeaseManager) -> None:
    """Wait until `condition` holds, looking again whenever a watched manager's held
    partitions change."""
    with trio.fail_after(10 * TTL.total_seconds()):
        while not condition():
            async with trio.open_nursery() as nursery:
                for leases in watched:
                    nursery.start_soon(_changed_then_cancel, leases, nursery.cancel_scope)


async def _changed_then_cancel(leases: LeaseManager, scope: trio.CancelScope) -> None:
    await leases.changed().wait()
    scope.cancel()


async def test_a_lone_instance_acquires_every_partition_at_start(
    schema: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    host = Host()
    async with manager(schema, host) as a:
        assert a.held() == frozenset(range(P))
        assert host.taken == set(range(P))
        assert {f.epoch for f in map(a.fence, range(P))} == {1}
        owned = schema.sql("SELECT count(*) FROM cluster_leases WHERE owner = ?", (a.instance_id,))
        assert owned == [(P,)]


async def test_an_instance_that_joins_gets_its_fair_share_from_the_one_that_gives_back(
    schema: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    first, second = Host(), Host()
    async with manager(schema, first) as a, manager(schema, second) as b:
        await until(lambda: len(b.held()) == P // 2 and len(a.held()) == P // 2, a, b)
        assert a.held() | b.held() == frozenset(range(P))
        assert first.given == set(b.held())  # stopped before they were released
        assert second.taken == set(b.held())
        assert all(b.fence(p).epoch == 2 for p in b.held())


async def test_a_graceful_stop_hands_every_partition_over_at_once(
    schema: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    host = Host()
    async with manager(schema) as a:
        async with manager(schema, host) as b:
            await until(lambda: len(a.held()) == P // 2 and len(b.held()) == P // 2, a, b)
            theirs = b.held()
        assert host.given == theirs  # their actors stopped before the leases went
        assert not host.lost_now
        # No lease was left to expire: the other instance takes them at its next round.
        await until(lambda: a.held() == frozenset(range(P)), a)
        assert schema.sql("SELECT count(*) FROM cluster_instances") == [(1,)]


async def test_a_lease_expired_in_the_database_goes_to_another_instance_with_a_new_epoch(
    schema: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    old_host = Host()
    async with manager(schema, old_host) as a:
        fence = a.fence(3)
        async with manager(schema) as b:
            # a's renewals stopped reaching the database: its leases expire there.
            schema.sql(
                "UPDATE cluster_leases SET expires_at = now() - interval '1 second'"
                " WHERE partition = 3"
            )
            await until(lambda: b.holds(3), b)
            assert b.fence(3).epoch == fence.epoch + 1
            await until(lambda: 3 in old_host.lost_now, a)
            assert not a.holds(3)
            assert not fence.valid()
            with pytest.raises(NotHeld):
                a.fence(3)


async def test_an_instance_that_cannot_renew_stops_its_partitions_when_its_lease_lapses_locally(
    schema: Backend, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = Host()
    async with manager(schema, host) as a:
        fence = a.fence(0)
        renewed_at = trio.current_time()

        def unreachable(*args: object) -> tables.Round:
            raise tables.StoreError("connection refused")

        monkeypatch.setattr(tables, "renew_and_acquire", unreachable)
        with trio.fail_after(TTL.total_seconds()):
            await host.lost_event.wait()
        assert host.lost_now == set(range(P))
        lapsed = trio.current_time() - renewed_at
        assert lapsed <= (TTL - TTL / 5).total_seconds()
        assert a.held() == frozenset()
        assert not fence.valid()
        assert a.renewal_failures >= 2


async def test_an_instance_refuses_another_number_of_partitions_than_the_database_has(
    schema: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    async with manager(schema):
        pass
    assert schema.url is not None
    other = LeaseManager(schema.url, partitions=P * 2, ttl=TTL)
    with pytest.raises(PartitionsMismatch, match="cannot change"):
        await other.run()
    assert schema.sql("SELECT count(*) FROM cluster_instances") == [(0,)]


async def test_an_instance_exposes_the_partitions_it_holds_and_its_renewals_as_metrics(
    schema: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    metrics = Metrics(process=False)
    async with manager(schema) as a:
        metrics.bind(leases=a)
        text = await metrics.text()
    samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples["shiftd_cluster_partitions_held"] == P
    assert samples["shiftd_cluster_lease_renewals_total"] >= 1
    assert samples["shiftd_cluster_lease_renewal_failures_total"] == 0


async def test_an_instance_the_others_forgot_joins_again_and_keeps_its_share(
    schema: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    async with manager(schema) as a:
        schema.sql("DELETE FROM cluster_instances WHERE id = ?", (a.instance_id,))
        await trio.sleep(TTL.total_seconds())  # a few renewal rounds
        assert schema.sql("SELECT id FROM cluster_instances") == [(a.instance_id,)]
        assert a.held() == frozenset(range(P))
