"""The engine end to end on each store backend: a fanout, an accept, its confirmation.

The harness roster: RN cg-1..cg-5, LPN cg-6..cg-7, one open RN shift `shift-1`.

Clock: `autojump_clock`, which the `backend` fixture makes jump only after 0.25 s of real
idleness on PostgreSQL (the store waits for the server on worker threads, which Trio counts
as idle). `Harness.settle` cannot tell a task waiting on a thread from an idle one, so the
tests wait for each outcome with `arrived`, under a `trio.fail_after` bound in virtual time
that stays well before the escalation deadline (10 minutes).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trio.testing
from store_backends import Backend

from shiftd.config import Config
from shiftd.models import Channel, FanoutStatus, Outcome, Purpose, ShiftState
from shiftd.shifts.actor import LINGER
from shiftd.testing.engine import Harness, make_config, phone

RNS = {f"cg-{n}" for n in range(1, 6)}


@pytest.fixture
def config(backend: Backend, tmp_path: Path) -> Config:
    """The harness's configuration, its store on this test's backend."""
    if backend.name == "sqlite":
        return make_config(tmp_path)
    return make_config(tmp_path, store={"url": backend.url})


async def arrived(condition: Callable[[], bool]) -> None:
    """Return once `condition()` holds; TooSlowError if it does not within 60 virtual
    seconds (a few real seconds)."""
    with trio.fail_after(60):
        while True:
            if condition():
                return
            await trio.sleep(0.5)


async def test_a_fanout_an_accept_and_its_confirmation(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    provider = harness.provider
    result = await harness.engine.fanout("shift-1")
    assert (result.status, result.offered) == (FanoutStatus.STARTED, 5)
    await arrived(lambda: len(provider.of(Purpose.OFFER, Channel.SMS)) == 5)
    assert {m.caregiver_id for m in provider.of(Purpose.OFFER)} == RNS

    answer = await harness.engine.inbound(phone(4), "yes")

    assert answer.outcome is Outcome.CLAIMED
    await arrived(lambda: bool(provider.of(Purpose.CONFIRM)))
    await arrived(lambda: len(provider.of(Purpose.FILLED)) == 4)
    assert [m.caregiver_id for m in provider.of(Purpose.CONFIRM)] == ["cg-4"]
    assert {m.caregiver_id for m in provider.of(Purpose.FILLED)} == RNS - {"cg-4"}
    row = await harness.engine.store.shift("shift-1")
    assert row is not None
    assert (row.state, row.claimed_by) == (ShiftState.FILLED, "cg-4")


async def test_of_two_accepts_at_once_exactly_one_claims(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await harness.engine.fanout("shift-1")
    await arrived(lambda: len(harness.provider.of(Purpose.OFFER, Channel.SMS)) == 5)
    outcomes: list[Outcome] = []

    async def accept(n: int) -> None:
        outcomes.append((await harness.engine.inbound(phone(n), "yes")).outcome)

    async with trio.open_nursery() as nursery:
        for n in (2, 3):
            nursery.start_soon(accept, n)

    assert sorted(outcomes) == sorted([Outcome.CLAIMED, Outcome.ALREADY_FILLED])
    await arrived(lambda: bool(harness.provider.of(Purpose.CONFIRM)))
    assert len(harness.provider.of(Purpose.CONFIRM)) == 1


async def test_a_late_yes_to_a_filled_shift_is_told_so(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    """The filled shift's actor has retired: a fresh one answers from her offer alone."""
    await harness.engine.fanout("shift-1")
    await arrived(lambda: len(harness.provider.of(Purpose.OFFER, Channel.SMS)) == 5)
    assert (await harness.engine.inbound(phone(2), "yes")).outcome is Outcome.CLAIMED
    await trio.sleep(LINGER)  # past the moment a "filled" notice would answer for it
    await arrived(lambda: harness.engine.supervisor.actors == 0)

    late = await harness.engine.inbound(phone(3), "yes")

    assert late.outcome is Outcome.ALREADY_FILLED and late.reply is not None
