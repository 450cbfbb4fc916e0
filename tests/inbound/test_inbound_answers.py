"""What an inbound answer reports: `reply` is a text that goes out because of it, or None."""

from __future__ import annotations

import trio

from shiftd.models import Outcome, Purpose
from shiftd.testing.engine import Harness, phone


async def test_a_second_no_reports_no_reply(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await harness.engine.fanout("shift-1")
    first = await harness.engine.inbound(phone(2), "no")

    again = await harness.engine.inbound(phone(2), "no")
    await harness.settle()

    assert (first.reply is not None, first.sent) == (True, True)
    assert (again.outcome, again.reply, again.sent) == (Outcome.DECLINED, None, False)
    assert len(harness.provider.to("cg-2", Purpose.DECLINED)) == 1


async def test_the_winner_saying_yes_again_reports_no_reply(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await harness.engine.fanout("shift-1")
    await harness.engine.inbound(phone(1), "yes")

    again = await harness.engine.inbound(phone(1), "yes")

    assert (again.outcome, again.reply) == (Outcome.CLAIMED, None)


async def test_a_second_late_yes_reports_no_reply_as_its_text_went_once(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await harness.engine.fanout("shift-1")
    await harness.engine.inbound(phone(2), "no")  # so she is not told "filled"
    await harness.engine.inbound(phone(1), "yes")
    first = await harness.engine.inbound(phone(2), "yes")

    again = await harness.engine.inbound(phone(2), "yes")
    await harness.settle()

    assert (first.outcome, first.sent) == (Outcome.ALREADY_FILLED, True)
    assert (again.outcome, again.reply) == (Outcome.ALREADY_FILLED, None)
    assert len(harness.provider.to("cg-2", Purpose.ALREADY_FILLED)) == 1


async def test_a_replay_repeats_the_first_reply_and_sends_nothing(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await harness.engine.fanout("shift-1")
    first = await harness.engine.inbound(phone(1), "maybe?", provider_id="SM-1")

    second = await harness.engine.inbound(phone(1), "maybe?", provider_id="SM-1")

    assert first.sent and not second.sent
    assert second.as_dict()["sent"] is False and second.reply == first.reply
