"""In a cluster the supervisor runs only the partitions this instance holds: taking one
recovers its shifts in progress, giving one back stops its actors, losing one cancels
them at once, and an actor whose write is refused as fenced stops for good. (One engine
on SQLite with an ownership the test sets.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
import trio.testing
from structlog.testing import capture_logs

from shiftd.clock import Clock
from shiftd.cluster.fencing import Fence, Fenced
from shiftd.cluster.partitions import partition_of
from shiftd.config import Config
from shiftd.engine import Engine
from shiftd.models import Channel
from shiftd.shifts.mailbox import Cancel
from shiftd.shifts.supervisor import NotHere
from shiftd.testing.engine import EPOCH, FakeProvider, caregiver, make_config, shift
from shiftd.testing.ownership import FixedOwnership

P = partition_of("shift-1")


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path)


async def _engine(
    nursery: trio.Nursery, config: Config, ownership: FixedOwnership, provider: FakeProvider
) -> Engine:
    engine = Engine(config, clock=Clock(EPOCH), notifier=provider, ownership=ownership)
    await nursery.start(engine.run)
    return engine


@pytest.fixture
async def fanned_out(
    config: Config, autojump_clock: trio.testing.MockClock
) -> AsyncIterator[tuple[Engine, FixedOwnership]]:
    """An engine holding every partition, with shift-1 in mid-fanout."""
    ownership = FixedOwnership.everything("a")
    async with trio.open_nursery() as nursery:
        engine = await _engine(nursery, config, ownership, FakeProvider())
        await engine.import_roster([caregiver(n) for n in range(1, 4)], [shift()])
        await engine.fanout("shift-1")
        yield engine, ownership
        nursery.cancel_scope.cancel()


async def test_a_partition_given_back_stops_its_actors_and_runs_nothing_more_here(
    fanned_out: tuple[Engine, FixedOwnership], autojump_clock: trio.testing.MockClock
) -> None:
    engine, ownership = fanned_out
    assert engine.supervisor.actors == 1
    ownership.hold(p for p in range(ownership.partitions) if p != P)
    with trio.fail_after(5):
        await engine.supervisor.give_back(frozenset({P}))
    assert engine.supervisor.actors == 0
    with pytest.raises(NotHere):
        await engine.supervisor.ask_here("shift-1", Cancel())


async def test_a_lost_partition_s_actors_are_cancelled_at_once(
    fanned_out: tuple[Engine, FixedOwnership], autojump_clock: trio.testing.MockClock
) -> None:
    engine, ownership = fanned_out
    ownership.hold(())
    engine.supervisor.lost(frozenset({P}))
    await trio.testing.wait_all_tasks_blocked()
    assert engine.supervisor.actors == 0


async def test_a_partition_lost_and_taken_again_before_its_actors_stopped_runs_again(
    fanned_out: tuple[Engine, FixedOwnership], autojump_clock: trio.testing.MockClock
) -> None:
    engine, _ = fanned_out
    engine.supervisor.lost(frozenset({P}))  # cancelled, not unwound yet
    with trio.fail_after(5):
        await engine.supervisor.take(frozenset({P}))
    assert engine.supervisor.actors == 1
    await engine.supervisor.ask_here("shift-1", Cancel())  # decided here, not NotHere


async def test_taking_a_partition_recovers_its_shifts_and_escalates_at_the_stored_instant(
    config: Config, autojump_clock: trio.testing.MockClock
) -> None:
    async with trio.open_nursery() as nursery:
        first = await _engine(nursery, config, FixedOwnership.everything("a"), FakeProvider())
        await first.import_roster([caregiver(n) for n in range(1, 4)], [shift()])
        await first.fanout("shift-1")
        deadline = (await first.shift("shift-1")).escalate_at
        first.stop()
    assert deadline is not None
    provider = FakeProvider()
    ownership = FixedOwnership("b")
    async with trio.open_nursery() as nursery:
        engine = await _engine(nursery, config, ownership, provider)
        assert engine.supervisor.actors == 0  # not ours yet
        ownership.hold({P})
        await engine.supervisor.take(frozenset({P}))
        assert engine.supervisor.actors == 1
        await trio.sleep_until(engine.clock.deadline(deadline) + 1)
        await trio.testing.wait_all_tasks_blocked()
        calls = [m for m in provider.sent if m.channel is Channel.VOICE]
        assert calls and min(m.at for m in calls) >= deadline
        nursery.cancel_scope.cancel()


async def test_an_actor_whose_write_is_refused_as_fenced_stops_for_good_and_says_so(
    fanned_out: tuple[Engine, FixedOwnership],
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine, _ = fanned_out

    async def taken_over(*args: object, **kwargs: object) -> None:
        raise Fenced(Fence("a", P, 1))

    monkeypatch.setattr(engine.store, "persist", taken_over)
    with capture_logs() as logs, pytest.raises(NotHere, match="no longer leased"):
        await engine.cancel("shift-1")
    await trio.testing.wait_all_tasks_blocked()
    assert engine.supervisor.actors == 0  # not restarted: the new owner carries on
    assert engine.supervisor.restarts == 0
    assert [e["partition"] for e in logs if e["event"] == "cluster.fenced"] == [P]
