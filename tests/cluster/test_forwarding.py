"""A request that reaches an instance not owning the shift is decided by the owner's actor.

Two engines ("a" and "b") on one fresh PostgreSQL database, with a fixed ownership: "a"
holds every partition, "b" none, so every request that reaches "b" is forwarded to "a".
Both send through one fake provider (what the caregivers received, whoever sent it).
The harness roster: RN cg-1..cg-5, LPN cg-6..cg-7, one open RN shift `shift-1`.

Clock: autojump, jumping only after 0.25 s of real idleness (the engines wait for the
server on worker threads, which Trio counts as idle); outcomes are awaited with `arrived`
under a virtual-time bound well before the escalation (10 minutes).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import trio
import trio.testing
from store_backends import Backend

from shiftd.clock import Clock
from shiftd.cluster.forward import OwnerUnavailable
from shiftd.commands import COMMANDS, ShiftRequestArgs
from shiftd.config import Config
from shiftd.engine import Engine
from shiftd.models import CancelStatus, Channel, FanoutStatus, Outcome, Purpose, ShiftState
from shiftd.testing.engine import EPOCH, FakeProvider, caregiver, make_config, phone, shift
from shiftd.testing.ownership import FixedOwnership


@pytest.fixture
def database(backend: Backend) -> str:
    """A fresh PostgreSQL database of the test's own; its URL."""
    assert backend.url is not None
    return backend.url


pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)


@dataclass
class Instance:
    engine: Engine
    done: trio.Event

    async def stop(self) -> None:
        """Stop the engine as a signal would; return once it has stopped."""
        self.engine.stop()
        await self.done.wait()


@dataclass
class Cluster:
    config: Config
    provider: FakeProvider
    nursery: trio.Nursery
    clock: Clock

    async def start(self, name: str, *, holds_all: bool) -> Instance:
        ownership = FixedOwnership.everything(name) if holds_all else FixedOwnership(name)
        engine = Engine(self.config, clock=self.clock, notifier=self.provider, ownership=ownership)
        done = trio.Event()

        async def run(task_status: trio.TaskStatus[None]) -> None:
            try:
                await engine.run(task_status=task_status)
            finally:
                done.set()

        await self.nursery.start(run)
        return Instance(engine, done)


@asynccontextmanager
async def cluster(database: str, tmp_path: Path) -> AsyncIterator[Cluster]:
    config = make_config(tmp_path, store={"url": database})
    async with trio.open_nursery() as nursery:
        yield Cluster(config, FakeProvider(), nursery, Clock(EPOCH))
        nursery.cancel_scope.cancel()


@pytest.fixture
async def started(
    database: str, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> AsyncIterator[tuple[Cluster, Instance, Instance]]:
    """The cluster, "a" (the owner of every shift) and "b" (of none), the roster imported,
    `shift-1` fanned out through "a" and its five offers texted."""
    async with cluster(database, tmp_path) as c:
        a = await c.start("a", holds_all=True)
        b = await c.start("b", holds_all=False)
        roster = [caregiver(n) for n in range(1, 6)] + [caregiver(n, "LPN") for n in (6, 7)]
        await a.engine.import_roster(roster, [shift()])
        await a.engine.fanout("shift-1")
        await arrived(lambda: len(c.provider.of(Purpose.OFFER, Channel.SMS)) == 5)
        yield c, a, b


async def arrived(condition: Callable[[], bool]) -> None:
    """Return once `condition()` holds; TooSlowError if not within 60 virtual seconds."""
    with trio.fail_after(60):
        while True:
            if condition():
                return
            await trio.sleep(0.5)


def inbox(database: str) -> list[tuple[str, str | None, str | None]]:
    """Each forwarded request: (sender, claimed by, outcome answered)."""
    with psycopg.connect(database) as conn:
        rows = conn.execute(
            "SELECT sender, claimed_by, answer -> 'ok' ->> 'outcome' FROM shiftd_inbox ORDER BY id"
        ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


async def test_an_accept_that_reaches_b_is_decided_by_the_owners_actor(
    started: tuple[Cluster, Instance, Instance],
    database: str,
    autojump_clock: trio.testing.MockClock,
) -> None:
    c, _a, b = started

    result = await b.engine.inbound(phone(2), "yes", provider_id="SM-accept")

    assert result.outcome is Outcome.CLAIMED
    assert inbox(database) == [("b", "a", "claimed")]
    row = await b.engine.store.shift("shift-1")
    assert row is not None
    assert (row.state, row.claimed_by) == (ShiftState.FILLED, "cg-2")
    await arrived(lambda: bool(c.provider.of(Purpose.CONFIRM)))
    assert [m.caregiver_id for m in c.provider.of(Purpose.CONFIRM)] == ["cg-2"]


async def test_a_decline_that_reaches_b_is_forwarded(
    started: tuple[Cluster, Instance, Instance],
    database: str,
    autojump_clock: trio.testing.MockClock,
) -> None:
    _c, _a, b = started

    result = await b.engine.inbound(phone(3), "no", provider_id="SM-decline")

    assert result.outcome is Outcome.DECLINED
    assert inbox(database) == [("b", "a", "declined")]
    [offer] = [
        o for o in await b.engine.store.offers_for_shift("shift-1") if o.caregiver_id == "cg-3"
    ]
    assert offer.declined_at is not None


async def test_of_accepts_spread_over_both_instances_exactly_one_claims(
    started: tuple[Cluster, Instance, Instance],
    database: str,
    autojump_clock: trio.testing.MockClock,
) -> None:
    c, a, b = started

    outcomes: list[Outcome] = []

    async def accept(n: int) -> None:
        instance = a if n % 2 else b
        result = await instance.engine.inbound(phone(n), "yes", provider_id=f"SM-{n}")
        outcomes.append(result.outcome)

    async with trio.open_nursery() as nursery:
        for n in range(1, 6):
            nursery.start_soon(accept, n)

    assert sorted(outcomes) == sorted([Outcome.CLAIMED] + [Outcome.ALREADY_FILLED] * 4)
    await arrived(lambda: bool(c.provider.of(Purpose.CONFIRM)))
    assert len(c.provider.of(Purpose.CONFIRM)) == 1


async def test_b_answers_unavailable_while_the_owner_is_gone_and_the_owner_handles_it_once_back(
    started: tuple[Cluster, Instance, Instance],
    database: str,
    autojump_clock: trio.testing.MockClock,
) -> None:
    c, a, b = started

    await a.stop()

    with pytest.raises(OwnerUnavailable):
        await b.engine.inbound(phone(2), "yes", provider_id="SM-late")
    row = await b.engine.store.shift("shift-1")
    assert row is not None and row.claimed_by is None

    await c.start("a-again", holds_all=True)
    await arrived(lambda: bool(c.provider.of(Purpose.CONFIRM)))
    again = await b.engine.inbound(phone(2), "yes", provider_id="SM-late")

    assert (again.outcome, again.replayed) == (Outcome.CLAIMED, True)
    assert inbox(database) == [("b", "a-again", "claimed")]
    row = await b.engine.store.shift("shift-1")
    assert row is not None and row.claimed_by == "cg-2"
    assert [m.caregiver_id for m in c.provider.of(Purpose.CONFIRM)] == ["cg-2"]


async def test_a_fanout_and_a_cancel_through_b_are_the_owners(
    database: str, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with cluster(database, tmp_path) as c:
        a = await c.start("a", holds_all=True)
        b = await c.start("b", holds_all=False)
        await b.engine.import_roster([caregiver(n) for n in range(1, 4)], [shift()])

        fanout = await b.engine.fanout("shift-1")
        cancelled = await b.engine.cancel("shift-1")

        assert (fanout.status, fanout.offered) == (FanoutStatus.STARTED, 3)
        assert cancelled is CancelStatus.CANCELLED
        assert [r[:2] for r in inbox(database)] == [("b", "a"), ("b", "a")]
        row = await a.engine.store.shift("shift-1")
        assert row is not None and row.state is ShiftState.CANCELLED


@pytest.mark.parametrize("through", ["b", "a"], ids=["forwarded", "on_the_owner"])
async def test_an_unassign_retried_with_its_request_id_gets_the_first_answer(
    started: tuple[Cluster, Instance, Instance],
    autojump_clock: trio.testing.MockClock,
    through: str,
) -> None:
    c, a, b = started
    coordinator = {"a": a, "b": b}[through].engine
    await a.engine.inbound(phone(2), "yes", provider_id="SM-2")
    unassign = ShiftRequestArgs(shift_id="shift-1", request_id="coordinator-7")

    first = await COMMANDS["unassign"].run(coordinator, unassign)
    taken = await a.engine.inbound(phone(3), "yes", provider_id="SM-3")
    retried = await COMMANDS["unassign"].run(coordinator, unassign)  # the client's retry

    assert first["status"] == "released"
    assert taken.outcome is Outcome.CLAIMED
    assert retried == first
    row = await a.engine.store.shift("shift-1")
    assert row is not None and (row.state, row.claimed_by) == (ShiftState.FILLED, "cg-3")
    assert [m.caregiver_id for m in c.provider.of(Purpose.RELEASED)] == ["cg-2"]


async def test_an_unassign_through_b_with_a_new_request_id_is_applied_again(
    started: tuple[Cluster, Instance, Instance],
    autojump_clock: trio.testing.MockClock,
) -> None:
    _c, a, b = started
    await a.engine.inbound(phone(2), "yes", provider_id="SM-2")
    await COMMANDS["unassign"].run(
        b.engine, ShiftRequestArgs(shift_id="shift-1", request_id="first")
    )
    await a.engine.inbound(phone(3), "yes", provider_id="SM-3")

    second = await COMMANDS["unassign"].run(
        b.engine, ShiftRequestArgs(shift_id="shift-1", request_id="second")
    )

    assert second["status"] == "released"
    row = await a.engine.store.shift("shift-1")
    assert row is not None and row.claimed_by is None
