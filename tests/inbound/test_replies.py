"""Caregivers' replies, told as scenarios: fanout → texts → a reply → what each phone gets.

The harness roster: RN cg-1..cg-5, LPN cg-6..cg-7, one open RN shift `shift-1`.
"""

from __future__ import annotations

import re

import trio

from shiftd.inbound.router import InboundResult
from shiftd.models import Channel, FanoutStatus, Outcome, Purpose, ShiftState
from shiftd.testing.engine import Harness, caregiver, phone, shift

RNS = {f"cg-{n}" for n in range(1, 6)}


async def fanout(h: Harness, *shift_ids: str) -> None:
    for shift_id in shift_ids or ("shift-1",):
        assert (await h.engine.fanout(shift_id)).status is FanoutStatus.STARTED
    await h.settle()


def code_in(body: str) -> int:
    match = re.search(r"YES (\d+)", body)
    assert match, body
    return int(match.group(1))


def offer_code(h: Harness, caregiver_id: str, shift_id: str) -> int:
    [text] = [
        m
        for m in h.provider.to(caregiver_id, Purpose.OFFER)
        if m.shift_id == shift_id and m.channel is Channel.SMS
    ]
    return code_in(text.body)


async def reply(h: Harness, n: int, body: str, **kwargs: object) -> InboundResult:
    result = await h.engine.inbound(phone(n), body, **kwargs)  # type: ignore[arg-type]
    await h.settle()
    return result


# ---- accept ----------------------------------------------------------------------------


async def test_yes_claims_the_shift_confirms_and_tells_the_others_it_is_filled(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)

    result = await reply(harness, 3, "yes")

    assert result.outcome is Outcome.CLAIMED
    assert (result.shift_id, result.caregiver_id) == ("shift-1", "cg-3")
    [confirm] = harness.provider.of(Purpose.CONFIRM)
    assert confirm.caregiver_id == "cg-3"
    assert "confirmed" in confirm.body and "Wed Jul 2, 04:00-12:00" in confirm.body
    assert result.reply == confirm.body
    filled = harness.provider.of(Purpose.FILLED)
    assert sorted(m.caregiver_id for m in filled) == sorted(RNS - {"cg-3"})
    assert all("has been filled" in m.body for m in filled)
    row = await harness.engine.shift("shift-1")
    assert (row.state, row.claimed_by) == (ShiftState.FILLED, "cg-3")


async def test_filled_text_skips_caregivers_who_declined(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)
    await reply(harness, 2, "no")

    await reply(harness, 1, "yes")

    assert sorted(m.caregiver_id for m in harness.provider.of(Purpose.FILLED)) == [
        "cg-3",
        "cg-4",
        "cg-5",
    ]


async def test_voice_keypad_1_claims_the_shift(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)
    await trio.sleep(10 * 60)

    result = await reply(harness, 5, "1", channel=Channel.VOICE)

    assert result.outcome is Outcome.CLAIMED
    assert (await harness.engine.shift("shift-1")).claimed_by == "cg-5"


async def test_hundred_simultaneous_yeses_make_exactly_one_winner(
    start_engine, autojump_clock: trio.testing.MockClock
) -> None:
    h: Harness = await start_engine()
    await h.engine.import_roster([caregiver(n) for n in range(1, 101)], [shift()])
    await fanout(h)
    results: list[InboundResult] = []

    async def say_yes(n: int) -> None:
        results.append(await h.engine.inbound(phone(n), "YES"))

    async with trio.open_nursery() as nursery:
        for n in range(1, 101):
            nursery.start_soon(say_yes, n)
    await h.settle()

    outcomes = [r.outcome for r in results]
    assert outcomes.count(Outcome.CLAIMED) == 1
    assert outcomes.count(Outcome.ALREADY_FILLED) == 99
    [winner] = [r.caregiver_id for r in results if r.outcome is Outcome.CLAIMED]
    assert [m.caregiver_id for m in h.provider.of(Purpose.CONFIRM)] == [winner]
    row = await h.engine.shift("shift-1")
    assert (row.state, row.claimed_by) == (ShiftState.FILLED, winner)
    # Every loser is told once that the shift is taken: the "filled" notice, not also an
    # "already filled" answer to a YES sent in the same instant.
    losers = {f"cg-{n}" for n in range(1, 101)} - {winner}
    told = [m.caregiver_id for m in h.provider.sent if m.purpose is not Purpose.OFFER]
    assert sorted(told) == sorted([*losers, winner])
    assert h.provider.of(Purpose.ALREADY_FILLED) == []


async def test_yes_moments_after_the_claim_gets_no_second_taken_text(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)
    await reply(harness, 1, "yes")
    await trio.sleep(30)

    result = await reply(harness, 2, "yes")

    assert result.outcome is Outcome.ALREADY_FILLED
    assert len(harness.provider.to("cg-2", Purpose.FILLED)) == 1
    assert harness.provider.to("cg-2", Purpose.ALREADY_FILLED) == []


async def test_late_yes_is_told_already_filled_once(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)
    await reply(harness, 1, "yes")
    await trio.sleep(15 * 60)  # long after the "filled" notice

    first = await reply(harness, 2, "yes")
    second = await reply(harness, 2, "Yes!")

    assert first.outcome is Outcome.ALREADY_FILLED
    assert second.outcome is Outcome.ALREADY_FILLED
    [late] = harness.provider.to("cg-2", Purpose.ALREADY_FILLED)
    assert "already filled" in late.body
    assert (await harness.engine.shift("shift-1")).claimed_by == "cg-1"


async def test_winner_saying_yes_again_is_confirmed_without_a_second_text(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)
    await reply(harness, 1, "yes")

    again = await reply(harness, 1, "yes")

    assert again.outcome is Outcome.CLAIMED
    assert len(harness.provider.of(Purpose.CONFIRM)) == 1
    assert harness.provider.to("cg-1", Purpose.ALREADY_FILLED) == []


# ---- decline and unclear answers -------------------------------------------------------


async def test_no_records_the_decline_and_thanks_the_caregiver(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)

    result = await reply(harness, 2, " no thanks")

    assert result.outcome is Outcome.DECLINED
    [thanks] = harness.provider.to("cg-2", Purpose.DECLINED)
    assert "won't call you" in thanks.body
    detail = await harness.engine.store.shift_detail("shift-1")
    assert detail is not None
    assert [d["caregiver_id"] for d in detail["declines"]] == ["cg-2"]
    assert (await harness.engine.shift("shift-1")).state is ShiftState.OFFERING


async def test_decliner_is_not_called_at_escalation(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)
    await reply(harness, 2, "decline")

    await trio.sleep(10 * 60)
    await harness.settle()

    called = {m.caregiver_id for m in harness.provider.of(Purpose.OFFER, Channel.VOICE)}
    assert called == RNS - {"cg-2"}


async def test_second_no_sends_no_second_thanks(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)
    await reply(harness, 2, "no")

    again = await reply(harness, 2, "N")

    assert again.outcome is Outcome.DECLINED
    assert len(harness.provider.to("cg-2", Purpose.DECLINED)) == 1


async def test_decliner_can_still_change_their_mind_and_take_the_shift(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)
    await reply(harness, 2, "no")

    result = await reply(harness, 2, "yes")

    assert result.outcome is Outcome.CLAIMED
    assert (await harness.engine.shift("shift-1")).claimed_by == "cg-2"


async def test_unclear_answer_gets_a_one_line_how_to_answer(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)
    code = offer_code(harness, "cg-1", "shift-1")

    result = await reply(harness, 1, "maybe?")

    assert result.outcome is Outcome.UNKNOWN_INTENT
    [help_text] = harness.provider.to("cg-1", Purpose.HELP)
    assert f"YES {code}" in help_text.body and f"NO {code}" in help_text.body
    assert "\n" not in help_text.body
    assert result.reply == help_text.body
    assert (await harness.engine.shift("shift-1")).state is ShiftState.OFFERING


# ---- which offer? -----------------------------------------------------------------------


async def several_offers(h: Harness) -> None:
    await h.engine.add_shift(shift("shift-2", start_in_h=42))
    await h.engine.add_shift(shift("shift-3", start_in_h=66))
    await fanout(h, "shift-1", "shift-2", "shift-3")


async def test_each_open_offer_of_a_caregiver_has_its_own_code(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await several_offers(harness)

    for n in range(1, 6):
        codes = [offer_code(harness, f"cg-{n}", s) for s in ("shift-1", "shift-2", "shift-3")]
        assert len(set(codes)) == 3, (n, codes)


async def test_yes_with_a_code_takes_that_offer(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await several_offers(harness)
    code = offer_code(harness, "cg-1", "shift-2")

    result = await reply(harness, 1, f"YES {code}")

    assert (result.outcome, result.shift_id) == (Outcome.CLAIMED, "shift-2")
    assert (await harness.engine.shift("shift-2")).claimed_by == "cg-1"
    assert (await harness.engine.shift("shift-1")).state is ShiftState.OFFERING
    assert (await harness.engine.shift("shift-3")).state is ShiftState.OFFERING


async def test_no_with_a_code_declines_only_that_offer(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await several_offers(harness)
    code = offer_code(harness, "cg-1", "shift-3")

    result = await reply(harness, 1, f"no {code}")

    assert (result.outcome, result.shift_id) == (Outcome.DECLINED, "shift-3")
    for shift_id, declined in (("shift-1", []), ("shift-3", ["cg-1"])):
        detail = await harness.engine.store.shift_detail(shift_id)
        assert detail is not None
        assert [d["caregiver_id"] for d in detail["declines"]] == declined


async def test_bare_yes_with_several_open_offers_asks_which_one(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await several_offers(harness)

    result = await reply(harness, 1, "yes")

    assert result.outcome is Outcome.AMBIGUOUS
    [question] = harness.provider.to("cg-1", Purpose.CHOOSE)
    for shift_id in ("shift-1", "shift-2", "shift-3"):
        assert f"{offer_code(harness, 'cg-1', shift_id)}: RN" in question.body
    assert re.search(r"Reply YES \d+ to take offer \d+", question.body)
    for shift_id in ("shift-1", "shift-2", "shift-3"):
        assert (await harness.engine.shift(shift_id)).claimed_by is None


async def test_yes_with_a_wrong_code_names_it_and_asks_which_one(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await several_offers(harness)
    codes = {offer_code(harness, "cg-1", s) for s in ("shift-1", "shift-2", "shift-3")}
    wrong = next(c for c in range(1, 100) if c not in codes)

    result = await reply(harness, 1, f"YES {wrong}")

    assert result.outcome is Outcome.UNKNOWN_CODE
    assert len(harness.provider.to("cg-1", Purpose.CHOOSE)) == 1
    assert harness.provider.of(Purpose.CONFIRM) == []


async def test_other_offers_stay_open_and_answerable_after_one_is_filled(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await harness.engine.add_shift(shift("shift-2", start_in_h=42))
    await fanout(harness, "shift-1", "shift-2")
    await reply(harness, 2, f"yes {offer_code(harness, 'cg-2', 'shift-1')}")

    result = await reply(harness, 1, "yes")  # one open offer left: no code needed

    assert (result.outcome, result.shift_id) == (Outcome.CLAIMED, "shift-2")


async def test_an_old_open_offer_stays_answerable_behind_many_newer_closed_ones(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)  # shift-1: cg-1's oldest offer, still open
    code = offer_code(harness, "cg-1", "shift-1")
    for n in range(2, 27):  # 25 newer offers, each filled by cg-2 at once
        await trio.sleep(60)
        await harness.engine.add_shift(shift(f"shift-{n}", start_in_h=18 + 10 * n))
        await fanout(harness, f"shift-{n}")
        await reply(harness, 2, f"yes {offer_code(harness, 'cg-2', f'shift-{n}')}")

    result = await reply(harness, 1, f"yes {code}")

    assert (result.outcome, result.shift_id) == (Outcome.CLAIMED, "shift-1")


# ---- who is writing? ---------------------------------------------------------------------


async def test_unknown_phone_is_unknown_sender_and_gets_no_text(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)
    before = len(harness.provider.sent)

    result = await harness.engine.inbound("+15559999999", "yes")
    await harness.settle()

    assert result.outcome is Outcome.UNKNOWN_SENDER
    assert result.caregiver_id is None
    assert len(harness.provider.sent) == before
    assert (await harness.engine.shift("shift-1")).claimed_by is None


async def test_garbage_phone_is_unknown_sender(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    result = await harness.engine.inbound("not a phone", "yes")

    assert result.outcome is Outcome.UNKNOWN_SENDER


async def test_caregiver_without_offers_is_told_there_is_no_open_offer(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)

    result = await reply(harness, 6, "yes")  # an LPN: never offered the RN shift

    assert result.outcome is Outcome.NO_OPEN_OFFER
    assert result.caregiver_id == "cg-6"
    [text] = harness.provider.to("cg-6")
    assert "no open shift offers" in text.body


async def test_phone_written_as_a_local_number_finds_the_caregiver(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)
    assert phone(1) == "+15550000001"

    result = await harness.engine.inbound("(555) 000-0001", "yes")

    assert (result.outcome, result.caregiver_id) == (Outcome.CLAIMED, "cg-1")


async def test_short_roster_phone_matches_as_written(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    # The reference roster has numbers such as +15550001 that are not valid NANP numbers.
    await harness.engine.import_roster([caregiver(9).model_copy(update={"phone": "+15550001"})], [])
    await fanout(harness)

    result = await harness.engine.inbound("+1 555 0001", "yes")

    assert (result.outcome, result.caregiver_id) == (Outcome.CLAIMED, "cg-9")


# ---- replays -------------------------------------------------------------------------------


async def test_replayed_provider_message_is_processed_once(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)

    first = await reply(harness, 1, "maybe?", provider_id="SM-1")
    second = await reply(harness, 1, "maybe?", provider_id="SM-1")

    assert (first.outcome, first.replayed) == (Outcome.UNKNOWN_INTENT, False)
    assert (second.outcome, second.replayed) == (Outcome.UNKNOWN_INTENT, True)
    assert second.reply == first.reply
    assert len(harness.provider.to("cg-1", Purpose.HELP)) == 1


async def test_replayed_yes_returns_the_claim_again(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)

    first = await reply(harness, 4, "yes", provider_id="SM-7")
    second = await reply(harness, 4, "yes", provider_id="SM-7")

    assert first == InboundResult(Outcome.CLAIMED, "shift-1", "cg-4", first.reply, replayed=False)
    assert second == InboundResult(Outcome.CLAIMED, "shift-1", "cg-4", first.reply, replayed=True)
    assert len(harness.provider.of(Purpose.CONFIRM)) == 1


async def test_replay_arriving_concurrently_is_processed_once(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)
    results: list[InboundResult] = []

    async def deliver() -> None:
        results.append(await harness.engine.inbound(phone(1), "maybe?", provider_id="SM-2"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(deliver)
        nursery.start_soon(deliver)
    await harness.settle()

    assert sorted(r.replayed for r in results) == [False, True]
    assert {r.outcome for r in results} == {Outcome.UNKNOWN_INTENT}
    assert len(harness.provider.to("cg-1", Purpose.HELP)) == 1


async def test_distinct_provider_ids_are_each_processed(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)

    await reply(harness, 1, "maybe?", provider_id="SM-3")
    again = await reply(harness, 1, "maybe?", provider_id="SM-4")

    assert again.replayed is False
    assert len(harness.provider.to("cg-1", Purpose.HELP)) == 2
