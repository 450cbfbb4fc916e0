"""Fanout, escalation, cancel and recovery, told as scenarios.

Each test reads like a smoke test: start a fanout → expect texts to these caregivers →
advance the clock → expect (or do not expect) calls. The harness roster: RN cg-1..cg-5,
LPN cg-6..cg-7, one open RN shift `shift-1` starting 18 hours after EPOCH.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import trio

from shiftd.clock import Clock
from shiftd.config import Config
from shiftd.engine import Engine, NotFound
from shiftd.models import CancelStatus, Channel, FanoutStatus, Outcome, Purpose, ShiftState
from shiftd.testing.engine import EPOCH, FakeProvider, Harness, caregiver, make_config, phone, shift

RNS = {f"cg-{n}" for n in range(1, 6)}
LPNS = {"cg-6", "cg-7"}
MINUTE = 60


def offer_texts(h: Harness) -> list:
    return h.provider.of(Purpose.OFFER, Channel.SMS)


def calls(h: Harness) -> list:
    return h.provider.of(Purpose.OFFER, Channel.VOICE)


async def fanout(h: Harness, shift_id: str = "shift-1") -> None:
    result = await h.engine.fanout(shift_id)
    assert result.status is FanoutStatus.STARTED
    await h.settle()


# ---- who is texted, and what they read ---------------------------------------------------


async def test_fanout_texts_every_caregiver_with_the_role_and_nobody_else(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    result = await harness.engine.fanout("shift-1")
    await harness.settle()

    assert result.status is FanoutStatus.STARTED
    assert result.offered == 5
    texted = [m.caregiver_id for m in offer_texts(harness)]
    assert sorted(texted) == sorted(RNS)  # each RN exactly once
    assert not LPNS & set(texted)
    assert [m.to for m in harness.provider.to("cg-3")] == [phone(3)]


async def test_offer_text_says_role_window_and_how_to_answer_with_the_code(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)

    [text] = harness.provider.to("cg-1", Purpose.OFFER)
    [offer] = [
        o
        for o in await harness.engine.store.offers_for_shift("shift-1")
        if o.caregiver_id == "cg-1"
    ]
    # 08:00-16:00 UTC on Jul 2 is 04:00-12:00 in the agency's zone (America/New_York, EDT).
    assert text.body.startswith("Sunrise Care: ")
    assert "RN shift" in text.body
    assert "Wed Jul 2, 04:00-12:00" in text.body
    assert f"Reply YES {offer.code} " in text.body
    assert f"NO {offer.code} " in text.body
    assert "\n" not in text.body


async def test_fanout_stamps_the_escalation_deadline_ten_minutes_out(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    result = await harness.engine.fanout("shift-1")

    row = await harness.engine.shift("shift-1")
    assert row.state is ShiftState.OFFERING
    assert row.fanout_started_at == EPOCH
    assert row.escalate_at == EPOCH + timedelta(minutes=10)
    assert result.escalate_at == "2025-07-01T14:10:00.000000Z"


# ---- escalation to calls -------------------------------------------------------------


async def test_no_call_before_the_escalation_deadline(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)

    await trio.sleep(9 * MINUTE + 59)
    await harness.settle()

    assert calls(harness) == []
    assert (await harness.engine.shift("shift-1")).state is ShiftState.OFFERING


async def test_calls_go_out_at_the_escalation_deadline(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)

    await trio.sleep(10 * MINUTE)
    await harness.settle()

    assert sorted(m.caregiver_id for m in calls(harness)) == sorted(RNS)
    assert all(m.at == EPOCH + timedelta(minutes=10) for m in calls(harness))
    assert all("RN shift" in m.body and "Press 1" in m.body for m in calls(harness))
    assert (await harness.engine.shift("shift-1")).state is ShiftState.ESCALATED


@pytest.mark.parametrize(
    ("role", "spoken"), [("RN", "An RN shift"), ("LPN", "An LPN shift"), ("CNA", "A CNA shift")]
)
async def test_call_script_names_the_role_with_the_right_article(
    start_engine, role: str, spoken: str, autojump_clock: trio.testing.MockClock
) -> None:
    h: Harness = await start_engine()
    await h.engine.import_roster([caregiver(1, role)], [shift(role=role)])
    await fanout(h)

    await trio.sleep(10 * MINUTE)
    await h.settle()

    [call] = calls(h)
    assert f"Hello, this is Sunrise Care. {spoken} is open on Wed Jul 2, 04:00-12:00." in call.body


async def test_escalation_delay_comes_from_config(
    start_engine, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    h: Harness = await start_engine(make_config(tmp_path, escalation={"delay": "3m"}))
    await h.engine.import_roster([caregiver(1), caregiver(2)], [shift()])
    await fanout(h)

    await trio.sleep(3 * MINUTE - 1)
    await h.settle()
    assert calls(h) == []

    await trio.sleep(1)
    await h.settle()
    assert {m.caregiver_id for m in calls(h)} == {"cg-1", "cg-2"}


async def test_calls_skip_caregivers_who_declined(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)
    await trio.sleep(1 * MINUTE)
    assert (await harness.engine.inbound(phone(2), "no")).outcome is Outcome.DECLINED

    await trio.sleep(9 * MINUTE)
    await harness.settle()

    assert sorted(m.caregiver_id for m in calls(harness)) == sorted(RNS - {"cg-2"})


async def test_no_call_at_all_once_the_shift_is_claimed(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)
    await trio.sleep(5 * MINUTE)
    assert (await harness.engine.inbound(phone(4), "yes")).outcome is Outcome.CLAIMED

    await trio.sleep(25 * MINUTE)
    await harness.settle()

    assert calls(harness) == []
    assert harness.provider.of(Purpose.CONFIRM)[0].caregiver_id == "cg-4"


async def test_escalation_happens_once(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)

    await trio.sleep(60 * MINUTE)
    await harness.settle()

    assert sorted(m.caregiver_id for m in calls(harness)) == sorted(RNS)


# ---- repeated and refused fanouts -----------------------------------------------------


async def test_fifty_concurrent_fanouts_start_one_and_text_each_caregiver_once(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    statuses: list[FanoutStatus] = []

    async def one() -> None:
        statuses.append((await harness.engine.fanout("shift-1")).status)

    async with trio.open_nursery() as nursery:
        for _ in range(50):
            nursery.start_soon(one)
    await harness.settle()

    assert statuses.count(FanoutStatus.STARTED) == 1
    assert statuses.count(FanoutStatus.ALREADY_RUNNING) == 49
    assert sorted(m.caregiver_id for m in offer_texts(harness)) == sorted(RNS)


async def test_fanout_of_a_filled_shift_is_already_filled(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)
    await harness.engine.inbound(phone(1), "yes")
    await harness.settle()
    sent = len(harness.provider.sent)

    result = await harness.engine.fanout("shift-1")
    await harness.settle()

    assert result.status is FanoutStatus.ALREADY_FILLED
    assert len(harness.provider.sent) == sent  # nobody is texted again


async def test_fanout_of_a_cancelled_shift_is_cancelled(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    assert await harness.engine.cancel("shift-1") is CancelStatus.CANCELLED

    result = await harness.engine.fanout("shift-1")
    await harness.settle()

    assert result.status is FanoutStatus.CANCELLED
    assert harness.provider.sent == []


async def test_fanout_of_an_unknown_shift_raises_not_found(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    with pytest.raises(NotFound):
        await harness.engine.fanout("no-such-shift")
    with pytest.raises(NotFound):
        await harness.engine.cancel("no-such-shift")


async def test_fanout_with_nobody_in_the_role_leaves_the_shift_open(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await harness.engine.add_shift(shift("shift-cna", "CNA"))

    result = await harness.engine.fanout("shift-cna")
    await harness.settle()

    assert result.status is FanoutStatus.NO_CANDIDATES
    assert result.offered == 0
    assert (await harness.engine.shift("shift-cna")).state is ShiftState.OPEN
    assert harness.provider.sent == []


async def test_shift_left_open_can_be_fanned_out_once_someone_has_the_role(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await harness.engine.add_shift(shift("shift-cna", "CNA"))
    assert (await harness.engine.fanout("shift-cna")).status is FanoutStatus.NO_CANDIDATES

    await harness.engine.import_roster([caregiver(8, "CNA")], [])
    await fanout(harness, "shift-cna")

    assert [m.caregiver_id for m in offer_texts(harness)] == ["cg-8"]


async def test_fanout_uses_the_shift_times_as_they_are_when_it_starts(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    # The actor of a shift left open (nobody had the role) must not text stale times after
    # the shift was edited by a roster import.
    await harness.engine.add_shift(shift("shift-cna", "CNA"))
    assert (await harness.engine.fanout("shift-cna")).status is FanoutStatus.NO_CANDIDATES

    await harness.engine.import_roster(
        [caregiver(8, "CNA")], [shift("shift-cna", "CNA", start_in_h=20)]
    )
    await fanout(harness, "shift-cna")

    [text] = offer_texts(harness)
    assert "Wed Jul 2, 06:00-14:00" in text.body


# ---- cancel ----------------------------------------------------------------------------


async def test_cancel_stops_everything_including_the_pending_escalation(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)
    await trio.sleep(2 * MINUTE)

    assert await harness.engine.cancel("shift-1") is CancelStatus.CANCELLED
    await harness.settle()
    sent = len(harness.provider.sent)
    await trio.sleep(60 * MINUTE)
    await harness.settle()

    assert len(harness.provider.sent) == sent
    assert calls(harness) == []
    assert (await harness.engine.shift("shift-1")).state is ShiftState.CANCELLED


async def test_cancel_twice_is_already_cancelled(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)

    assert await harness.engine.cancel("shift-1") is CancelStatus.CANCELLED
    assert await harness.engine.cancel("shift-1") is CancelStatus.ALREADY_CANCELLED


async def test_cancelling_a_filled_shift_tells_its_holder(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)
    await harness.engine.inbound(phone(1), "yes")
    await harness.settle()

    assert await harness.engine.cancel("shift-1") is CancelStatus.CANCELLED
    await harness.settle()

    assert (await harness.engine.shift("shift-1")).state is ShiftState.CANCELLED
    [told] = harness.provider.to("cg-1", Purpose.SHIFT_CANCELLED)
    assert "cancel" in told.body.lower()
    assert not harness.provider.of(Purpose.SHIFT_CANCELLED, Channel.SMS)[1:]


async def test_yes_after_cancel_is_told_the_shift_is_no_longer_available(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)
    await harness.engine.cancel("shift-1")

    result = await harness.engine.inbound(phone(1), "yes")
    await harness.settle()

    assert result.outcome is Outcome.NO_OPEN_OFFER
    [text] = harness.provider.to("cg-1", Purpose.CANCELLED)
    assert "no longer available" in text.body
    assert (await harness.engine.shift("shift-1")).claimed_by is None


async def test_cancel_withdraws_offers_still_waiting_for_a_retry(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    harness.provider.fail_next = 2  # two offers are refused (503) and wait for a retry
    await fanout(harness)
    texted = {m.caregiver_id for m in offer_texts(harness)}
    assert len(texted) == 3

    await harness.engine.cancel("shift-1")
    await trio.sleep(60 * MINUTE)
    await harness.settle()

    assert {m.caregiver_id for m in harness.provider.sent} == texted


async def test_claim_withdraws_offers_still_waiting_for_a_retry(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    harness.provider.fail_next = 2
    await fanout(harness)
    texted = sorted(m.caregiver_id for m in offer_texts(harness))
    winner = int(texted[0].removeprefix("cg-"))

    assert (await harness.engine.inbound(phone(winner), "yes")).outcome is Outcome.CLAIMED
    await trio.sleep(60 * MINUTE)
    await harness.settle()

    # Those whose offer never went out hear nothing: no late offer, no "filled", no call.
    assert {m.caregiver_id for m in harness.provider.sent} == set(texted)
    assert sorted(m.caregiver_id for m in offer_texts(harness)) == texted


async def test_an_offer_refused_while_its_caregiver_declined_is_never_retried(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    harness.provider.latency = 2.0
    harness.provider.fail_next = 1_000  # every offer is refused (503), 2 s after the call
    assert (await harness.engine.fanout("shift-1")).status is FanoutStatus.STARTED
    await trio.sleep(1)  # the offers are with the provider, `sending`

    declined = await harness.engine.inbound(phone(1), "no")
    await trio.sleep(1.5)  # refused: each offer waits for a retry
    harness.provider.latency, harness.provider.fail_next = 0.0, 0
    await trio.sleep(60 * MINUTE)
    await harness.settle()

    assert declined.outcome is Outcome.DECLINED
    assert harness.provider.to("cg-1", Purpose.OFFER) == []
    assert {m.caregiver_id for m in offer_texts(harness)} == {f"cg-{n}" for n in range(2, 6)}


# ---- restart and recovery ------------------------------------------------------------


async def test_restart_keeps_the_original_escalation_deadline(
    config: Config, provider: FakeProvider, autojump_clock: trio.testing.MockClock
) -> None:
    clock = Clock(EPOCH)  # one wall clock across both engine lifetimes

    async with trio.open_nursery() as nursery:
        first = await nursery.start(Engine(config, clock=clock, notifier=provider).run)
        await first.import_roster([caregiver(n) for n in range(1, 4)], [shift()])
        assert (await first.fanout("shift-1")).status is FanoutStatus.STARTED
        await trio.sleep(4 * MINUTE)
        first.stop()  # the nursery waits for the ordered stop to finish

    assert provider.of(Purpose.OFFER, Channel.VOICE) == []
    async with trio.open_nursery() as nursery:
        second = await nursery.start(Engine(config, clock=clock, notifier=provider).run)
        again = await second.fanout("shift-1")
        assert again.status is FanoutStatus.ALREADY_RUNNING

        await trio.sleep(6 * MINUTE - 1)  # 9m59s after the fanout
        await trio.testing.wait_all_tasks_blocked()
        assert provider.of(Purpose.OFFER, Channel.VOICE) == []

        await trio.sleep(1)
        await trio.testing.wait_all_tasks_blocked()
        voice = provider.of(Purpose.OFFER, Channel.VOICE)
        assert sorted(m.caregiver_id for m in voice) == ["cg-1", "cg-2", "cg-3"]
        assert {m.at - EPOCH for m in voice} == {timedelta(minutes=10)}
        second.stop()

    # The restart did not text anybody a second time.
    assert sorted(m.caregiver_id for m in provider.of(Purpose.OFFER, Channel.SMS)) == [
        "cg-1",
        "cg-2",
        "cg-3",
    ]


async def test_restart_after_the_deadline_passed_escalates_at_once(
    config: Config, provider: FakeProvider, autojump_clock: trio.testing.MockClock
) -> None:
    clock = Clock(EPOCH)
    async with trio.open_nursery() as nursery:
        first = await nursery.start(Engine(config, clock=clock, notifier=provider).run)
        await first.import_roster([caregiver(1)], [shift()])
        await first.fanout("shift-1")
        await trio.sleep(1 * MINUTE)
        first.stop()

    await trio.sleep(30 * MINUTE)  # the daemon was down through the deadline

    async with trio.open_nursery() as nursery:
        second = await nursery.start(Engine(config, clock=clock, notifier=provider).run)
        await trio.testing.wait_all_tasks_blocked()
        [call] = provider.of(Purpose.OFFER, Channel.VOICE)
        assert call.at == EPOCH + timedelta(minutes=31)
        second.stop()


async def test_claim_survives_a_restart(
    config: Config, provider: FakeProvider, autojump_clock: trio.testing.MockClock
) -> None:
    clock = Clock(EPOCH)
    async with trio.open_nursery() as nursery:
        first = await nursery.start(Engine(config, clock=clock, notifier=provider).run)
        await first.import_roster([caregiver(1), caregiver(2)], [shift()])
        await first.fanout("shift-1")
        await trio.testing.wait_all_tasks_blocked()
        assert (await first.inbound(phone(2), "yes")).outcome is Outcome.CLAIMED
        first.stop()

    async with trio.open_nursery() as nursery:
        second = await nursery.start(Engine(config, clock=clock, notifier=provider).run)
        assert (await second.fanout("shift-1")).status is FanoutStatus.ALREADY_FILLED
        late = await second.inbound(phone(1), "yes")
        assert late.outcome is Outcome.ALREADY_FILLED
        assert (await second.shift("shift-1")).claimed_by == "cg-2"
        await trio.sleep(30 * MINUTE)
        await trio.testing.wait_all_tasks_blocked()
        second.stop()

    assert provider.of(Purpose.OFFER, Channel.VOICE) == []
    assert [m.caregiver_id for m in provider.of(Purpose.CONFIRM)] == ["cg-2"]


async def test_engine_cancelled_from_outside_recovers_the_same(
    config: Config, provider: FakeProvider, autojump_clock: trio.testing.MockClock
) -> None:
    clock = Clock(EPOCH)
    async with trio.open_nursery() as nursery:
        first = await nursery.start(Engine(config, clock=clock, notifier=provider).run)
        await first.import_roster([caregiver(1), caregiver(2)], [shift()])
        await first.fanout("shift-1")
        await trio.sleep(4 * MINUTE)
        nursery.cancel_scope.cancel()  # e.g. the daemon's nursery torn down

    async with trio.open_nursery() as nursery:
        second = await nursery.start(Engine(config, clock=clock, notifier=provider).run)
        assert (await second.fanout("shift-1")).status is FanoutStatus.ALREADY_RUNNING
        await trio.sleep(6 * MINUTE)
        await trio.testing.wait_all_tasks_blocked()
        second.stop()

    voice = provider.of(Purpose.OFFER, Channel.VOICE)
    assert sorted(m.caregiver_id for m in voice) == ["cg-1", "cg-2"]
    assert {m.at for m in voice} == {EPOCH + timedelta(minutes=10)}
    assert len(provider.of(Purpose.OFFER, Channel.SMS)) == 2
