"""A reply that names its shift reaches the caregiver's offer however many newer ones they
have (a reply reads only the caregiver's latest offers to resolve codes)."""

from __future__ import annotations

import trio

from shiftd.models import FanoutStatus, Outcome, ShiftState
from shiftd.testing.engine import Harness, phone, shift


async def test_a_decline_naming_an_old_shift_reaches_it_behind_25_newer_offers(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    newer = [shift(f"later-{i:02d}", start_in_h=40 + 10 * i) for i in range(25)]
    await harness.engine.import_roster([], newer)
    assert (await harness.engine.fanout("shift-1")).status is FanoutStatus.STARTED
    await harness.settle()
    for s in newer:
        await trio.sleep(1)  # each offer newer than the last
        assert (await harness.engine.fanout(s.id)).status is FanoutStatus.STARTED
    await harness.settle()

    result = await harness.engine.inbound(phone(2), "no", shift_id="shift-1")

    assert (result.outcome, result.shift_id) == (Outcome.DECLINED, "shift-1")
    assert (await harness.engine.shift("later-00")).state is ShiftState.OFFERING
