"""One call at a time per person: when several of a caregiver's offers escalate together,
she gets one call per shift, `escalation.call_gap` (default 2 minutes) apart."""

from __future__ import annotations

from pathlib import Path

import trio

from shiftd.models import Channel, Purpose
from shiftd.testing.engine import Harness, StartEngine, caregiver, make_config, shift

SHIFTS = ("shift-1", "shift-2", "shift-3")


async def three_offers_escalating_together(h: Harness) -> None:
    await h.engine.import_roster(
        [caregiver(1)], [shift(s, start_in_h=18 + 9 * n) for n, s in enumerate(SHIFTS)]
    )
    for shift_id in SHIFTS:
        await h.engine.fanout(shift_id)
    await h.settle()
    await trio.sleep(10 * 60)  # the escalation delay: all three are due now
    await h.settle()


def calls(h: Harness) -> list[str | None]:
    return [m.shift_id for m in h.provider.to("cg-1") if m.channel is Channel.VOICE]


async def test_offers_escalating_together_ring_her_phone_two_minutes_apart(
    start_engine: StartEngine, autojump_clock: trio.testing.MockClock
) -> None:
    h: Harness = await start_engine()

    await three_offers_escalating_together(h)
    at_once = len(calls(h))
    await trio.sleep(119)
    await h.settle()
    before_the_gap = len(calls(h))
    await trio.sleep(1)
    await h.settle()
    after_one_gap = len(calls(h))
    await trio.sleep(120)
    await h.settle()

    assert (at_once, before_the_gap, after_one_gap) == (1, 1, 2)
    assert sorted(calls(h)) == list(SHIFTS)  # one call per shift, none twice


async def test_a_held_call_for_a_shift_filled_meanwhile_never_rings(
    start_engine: StartEngine, autojump_clock: trio.testing.MockClock
) -> None:
    h: Harness = await start_engine()
    await three_offers_escalating_together(h)
    held = [s for s in SHIFTS if s not in calls(h)]

    for shift_id in held:
        await h.engine.cancel(shift_id)
    await trio.sleep(10 * 60)
    await h.settle()

    assert len(calls(h)) == 1
    assert not any(
        m.purpose is Purpose.OFFER and m.shift_id in held
        for m in h.provider.of(Purpose.OFFER, Channel.VOICE)
    )


async def test_a_zero_gap_calls_for_every_shift_at_once(
    start_engine: StartEngine, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    h: Harness = await start_engine(make_config(tmp_path, escalation={"call_gap": "0s"}))

    await three_offers_escalating_together(h)

    assert len(calls(h)) == 3
