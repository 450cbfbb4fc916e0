"""Compliance keywords and releases by text, told as scenarios: a caregiver texts STOP,
START, HELP, CANCEL… → what is stored → what each phone receives afterwards.

The harness roster: RN cg-1..cg-5, LPN cg-6..cg-7, one open RN shift `shift-1` starting 18
hours after EPOCH (a second RN shift, when a test needs one, starts 24 hours later).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import trio

from shiftd.clock import Clock
from shiftd.engine import Engine
from shiftd.inbound.router import InboundResult
from shiftd.models import Channel, FanoutStatus, Outcome, Purpose, ShiftState
from shiftd.store.base import NewMessage
from shiftd.testing.engine import EPOCH, FakeProvider, Harness, caregiver, make_config, phone, shift

RNS = {f"cg-{n}" for n in range(1, 6)}
HELP_TEXT = "Sunrise Care shift texts. Questions? Call 555-0100. Reply STOP to opt out."


async def fanout(h: Harness, *shift_ids: str) -> None:
    for shift_id in shift_ids or ("shift-1",):
        assert (await h.engine.fanout(shift_id)).status is FanoutStatus.STARTED
    await h.settle()


async def text(h: Harness, n: int, body: str) -> InboundResult:
    """Caregiver `n` texts `body`; returns once everything it caused has been sent."""
    with trio.fail_after(60):  # a message nobody answers fails the test, never hangs it
        result = await h.engine.inbound(phone(n), body)
    await h.settle()
    return result


def offer_texts(h: Harness) -> list[str]:
    """Who received an offer text (one entry per text)."""
    return [m.caregiver_id for m in h.provider.of(Purpose.OFFER, Channel.SMS)]


def offer_code(h: Harness, caregiver_id: str, shift_id: str) -> int:
    [offer] = [
        m
        for m in h.provider.to(caregiver_id, Purpose.OFFER)
        if m.shift_id == shift_id and m.channel is Channel.SMS
    ]
    match = re.search(r"YES (\d+)", offer.body)
    assert match, offer.body
    return int(match.group(1))


async def opted_out(h: Harness, n: int) -> bool:
    return await h.engine.store.is_opted_out(phone(n))


async def queue_quietly(h: Harness, caregiver_id: str, key: str) -> None:
    """Queue a text without waking the sender: it stays pending until something does."""
    message = NewMessage(key, caregiver_id, Channel.SMS, Purpose.FILLED, "a text", "shift-1")
    assert await h.engine.store.queue([message], at=h.engine.clock.now()) == 1


def outbox_state(h: Harness, key: str) -> str:
    [row] = h.engine.store._read("SELECT state FROM outbox WHERE key = ?", (key,))  # type: ignore[attr-defined]
    return str(row[0])


# ---- STOP and START ----------------------------------------------------------------------


async def test_stop_is_confirmed_and_the_next_fanout_texts_everyone_else(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    result = await text(harness, 2, "STOP")

    assert (result.outcome, result.caregiver_id) == (Outcome.OPTED_OUT, "cg-2")
    [confirmation] = harness.provider.to("cg-2")
    assert confirmation.purpose is Purpose.OPT_OUT
    assert "START" in confirmation.body and result.reply == confirmation.body
    assert await opted_out(harness, 2)

    await fanout(harness)

    assert sorted(offer_texts(harness)) == sorted(RNS - {"cg-2"})
    assert harness.provider.to("cg-2") == [confirmation]


async def test_start_after_stop_is_confirmed_and_the_next_fanout_reaches_the_phone(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await text(harness, 2, "STOP")

    result = await text(harness, 2, "START")

    assert result.outcome is Outcome.OPTED_IN
    [confirmation] = harness.provider.to("cg-2", Purpose.OPT_IN)
    assert "STOP" in confirmation.body and result.reply == confirmation.body
    assert not await opted_out(harness, 2)

    await fanout(harness)

    assert sorted(offer_texts(harness)) == sorted(RNS)


async def test_unstop_opts_back_in_too(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await text(harness, 2, "stop")

    result = await text(harness, 2, "Unstop")

    assert result.outcome is Outcome.OPTED_IN
    assert not await opted_out(harness, 2)


async def test_a_text_still_pending_for_the_phone_when_it_stops_is_never_sent(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await queue_quietly(harness, "cg-2", "pending-for-cg-2")
    await queue_quietly(harness, "cg-3", "pending-for-cg-3")

    await text(harness, 2, "STOP")

    # The text belongs to its shift, which STOP does not touch: the sender suppresses it.
    assert outbox_state(harness, "pending-for-cg-2") == "suppressed"
    assert [m.purpose for m in harness.provider.to("cg-2")] == [Purpose.OPT_OUT]
    # Another phone's pending text is not touched (and goes out with the next wake-up).
    assert outbox_state(harness, "pending-for-cg-3") == "sent"


async def test_a_text_queued_for_an_opted_out_phone_is_suppressed_never_sent(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await text(harness, 2, "STOP")

    await queue_quietly(harness, "cg-2", "after-stop")
    harness.engine.sender.wake()
    await harness.settle()

    assert outbox_state(harness, "after-stop") == "suppressed"
    assert [m.purpose for m in harness.provider.to("cg-2")] == [Purpose.OPT_OUT]
    counts = await harness.engine.store.counts()
    assert counts["outbox"]["suppressed"] == 1


async def test_stop_is_confirmed_once_and_a_second_stop_gets_no_text(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    first = await text(harness, 2, "STOP")

    second = await text(harness, 2, "STOP")

    assert first.outcome is second.outcome is Outcome.OPTED_OUT
    assert first.reply is not None and second.reply is None
    assert len(harness.provider.to("cg-2")) == 1


@pytest.mark.parametrize(
    "body", ["STOPALL", "unsubscribe", "End", "QUIT", "stop.", "Stop", "  STOP  ", "stop!"]
)
async def test_each_opt_out_keyword_opts_the_phone_out(
    harness: Harness, autojump_clock: trio.testing.MockClock, body: str
) -> None:
    result = await text(harness, 2, body)

    assert result.outcome is Outcome.OPTED_OUT
    assert await opted_out(harness, 2)


async def test_a_sentence_starting_with_stop_is_not_a_keyword(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)

    result = await text(harness, 2, "stop calling me")

    assert result.outcome is Outcome.UNKNOWN_INTENT  # read as a reply, as any other text
    assert not await opted_out(harness, 2)
    assert len(harness.provider.to("cg-2", Purpose.HELP)) == 1  # the how-to-answer line


async def test_stop_from_a_number_not_on_the_roster_is_recorded_without_an_answer(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(60):
        result = await harness.engine.inbound("+1 555 999 9999", "STOP")
    await harness.settle()

    assert (result.outcome, result.caregiver_id, result.reply) == (Outcome.OPTED_OUT, None, None)
    assert await harness.engine.store.is_opted_out("+15559999999")
    assert harness.provider.sent == []


async def test_opt_outs_survive_a_restart(
    tmp_path: Path, provider: FakeProvider, autojump_clock: trio.testing.MockClock
) -> None:
    config = make_config(tmp_path)
    clock = Clock(EPOCH)
    async with trio.open_nursery() as nursery:
        first = await nursery.start(Engine(config, clock=clock, notifier=provider).run)
        await first.import_roster([caregiver(n) for n in (1, 2, 3)], [shift()])
        assert (await first.inbound(phone(2), "STOP")).outcome is Outcome.OPTED_OUT
        await trio.testing.wait_all_tasks_blocked()
        first.stop()

    async with trio.open_nursery() as nursery:
        second = await nursery.start(Engine(config, clock=clock, notifier=provider).run)
        assert await second.store.is_opted_out(phone(2))
        assert (await second.fanout("shift-1")).status is FanoutStatus.STARTED
        await trio.testing.wait_all_tasks_blocked()
        second.stop()

    assert sorted(m.caregiver_id for m in provider.of(Purpose.OFFER, Channel.SMS)) == [
        "cg-1",
        "cg-3",
    ]


# ---- HELP ------------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["HELP", "info", "Help?"])
async def test_help_and_info_answer_with_the_configured_help_text(
    start_engine, tmp_path: Path, autojump_clock: trio.testing.MockClock, body: str
) -> None:
    config = make_config(tmp_path, organizations={"default": {"help_text": HELP_TEXT}})
    h: Harness = await start_engine(config)
    await h.engine.import_roster([caregiver(1)], [])

    result = await text(h, 1, body)

    assert (result.outcome, result.reply) == (Outcome.HELP, HELP_TEXT)
    assert [(m.purpose, m.body) for m in h.provider.to("cg-1")] == [(Purpose.HELP, HELP_TEXT)]


async def test_help_is_answered_after_stop_and_does_not_opt_back_in(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await text(harness, 2, "STOP")

    result = await text(harness, 2, "HELP")

    assert result.outcome is Outcome.HELP
    assert [m.purpose for m in harness.provider.to("cg-2")] == [Purpose.OPT_OUT, Purpose.HELP]
    assert await opted_out(harness, 2)


# ---- YES is an accept, never an opt-in ---------------------------------------------------


async def test_yes_from_an_opted_out_caregiver_claims_and_does_not_opt_in(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)
    await text(harness, 2, "STOP")

    result = await text(harness, 2, "YES")

    assert (result.outcome, result.shift_id) == (Outcome.CLAIMED, "shift-1")
    assert (await harness.engine.shift("shift-1")).claimed_by == "cg-2"
    assert await opted_out(harness, 2)
    # The confirmation is not sent (the phone opted out), nor any opt-in text.
    assert [m.purpose for m in harness.provider.to("cg-2")] == [Purpose.OFFER, Purpose.OPT_OUT]


# ---- CANCEL, RELEASE, DROP ---------------------------------------------------------------


async def claim(h: Harness, n: int, shift_id: str) -> None:
    result = await text(h, n, f"YES {offer_code(h, f'cg-{n}', shift_id)}")
    assert (result.outcome, result.shift_id) == (Outcome.CLAIMED, shift_id)


async def test_cancel_from_the_holder_of_an_upcoming_shift_releases_it(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)
    await claim(harness, 3, "shift-1")

    result = await text(harness, 3, "Cancel")

    assert (result.outcome, result.shift_id) == (Outcome.RELEASED, "shift-1")
    assert not await opted_out(harness, 3)
    row = await harness.engine.shift("shift-1")
    assert row.claimed_by is None and row.state is not ShiftState.FILLED
    [released] = harness.provider.to("cg-3", Purpose.RELEASED)
    assert result.reply == released.body


async def test_release_and_drop_with_a_code_release_that_held_shift(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await harness.engine.add_shift(shift("shift-2", start_in_h=42))
    await fanout(harness, "shift-1", "shift-2")
    await claim(harness, 1, "shift-1")
    await claim(harness, 1, "shift-2")

    result = await text(harness, 1, f"DROP {offer_code(harness, 'cg-1', 'shift-2')}")

    assert (result.outcome, result.shift_id) == (Outcome.RELEASED, "shift-2")
    assert (await harness.engine.shift("shift-1")).claimed_by == "cg-1"
    assert (await harness.engine.shift("shift-2")).claimed_by is None


async def test_bare_cancel_from_the_holder_of_several_shifts_asks_which(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await harness.engine.add_shift(shift("shift-2", start_in_h=42))
    await fanout(harness, "shift-1", "shift-2")
    await claim(harness, 1, "shift-1")
    await claim(harness, 1, "shift-2")

    result = await text(harness, 1, "CANCEL")

    assert result.outcome is Outcome.AMBIGUOUS
    [question] = harness.provider.to("cg-1", Purpose.CHOOSE)
    for shift_id in ("shift-1", "shift-2"):
        assert f"{offer_code(harness, 'cg-1', shift_id)}: RN" in question.body
        assert (await harness.engine.shift(shift_id)).claimed_by == "cg-1"
    assert re.search(r"Reply CANCEL \d+ to release shift \d+", question.body)
    assert not await opted_out(harness, 1)


async def test_cancel_from_someone_holding_no_shift_opts_out(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)
    await claim(harness, 3, "shift-1")

    result = await text(harness, 2, "CANCEL")  # cg-2 holds nothing

    assert result.outcome is Outcome.OPTED_OUT
    assert await opted_out(harness, 2)
    assert (await harness.engine.shift("shift-1")).claimed_by == "cg-3"


@pytest.mark.parametrize("body", ["RELEASE", "drop", "release 12"])
async def test_release_from_someone_holding_no_shift_is_told_so_and_not_opted_out(
    harness: Harness, autojump_clock: trio.testing.MockClock, body: str
) -> None:
    result = await text(harness, 6, body)

    assert result.outcome is Outcome.NO_OPEN_OFFER
    [answer] = harness.provider.to("cg-6")
    assert answer.purpose is Purpose.HELP and "no open shift" in answer.body
    assert not await opted_out(harness, 6)


async def test_help_answers_with_the_help_text_of_the_organization_that_last_offered_a_shift(
    start_engine: Any, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    cfg = make_config(
        tmp_path,
        organizations={
            "default": {"help_text": "Sunrise Care: call 555-0100."},
            "org-1": {"help_text": "Sunrise North: call 555-0111."},
        },
    )
    h: Harness = await start_engine(cfg)
    await h.engine.import_roster([caregiver(1), caregiver(2)], [shift()])
    await h.engine.fanout("shift-1")
    await h.engine.import_roster([caregiver(3)], [])  # never offered anything

    offered = await h.engine.inbound(phone(1), "HELP")
    stranger = await h.engine.inbound(phone(3), "HELP")

    assert offered.reply == "Sunrise North: call 555-0111."
    assert stranger.reply == "Sunrise Care: call 555-0100."
