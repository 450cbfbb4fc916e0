"""Which offer a reply means: every open offer is reachable by its code and by its shift id,
however many a caregiver has; a wrong code or a shift she was not offered is said so."""

from __future__ import annotations

import re
from pathlib import Path

import trio

from shiftd.config import Config
from shiftd.messages.sms import segments
from shiftd.models import Channel, FanoutStatus, Outcome, Purpose
from shiftd.testing.engine import (
    Harness,
    StartEngine,
    caregiver,
    make_config,
    offer_code,
    phone,
    shift,
)

MANY = 100


async def many_offers(start_engine: StartEngine, config: Config | None = None) -> Harness:
    """cg-1 (the only RN) holds MANY open offers; shift-0 is the oldest."""
    h: Harness = await start_engine(config)
    shifts = [shift(f"shift-{i}", start_in_h=18 + 9 * i) for i in range(MANY)]
    await h.engine.import_roster([caregiver(1)], shifts)
    for s in shifts:
        assert (await h.engine.fanout(s.id)).status is FanoutStatus.STARTED
    await h.settle()
    return h


def code_of(h: Harness, shift_id: str) -> int:
    return offer_code(h, "cg-1", shift_id)


async def test_the_oldest_of_100_open_offers_is_declined_by_its_code_and_never_called(
    start_engine: StartEngine, autojump_clock: trio.testing.MockClock
) -> None:
    h = await many_offers(start_engine)

    result = await h.engine.inbound(phone(1), f"NO {code_of(h, 'shift-0')}")
    await trio.sleep(4 * 60 * 60)  # every escalation, her calls two minutes apart
    await h.settle()

    assert (result.outcome, result.shift_id) == (Outcome.DECLINED, "shift-0")
    called = [m.shift_id for m in h.provider.of(Purpose.OFFER, Channel.VOICE)]
    assert sorted(called) == sorted(f"shift-{i}" for i in range(1, MANY))


async def test_the_oldest_of_100_open_offers_is_taken_by_its_shift_id(
    start_engine: StartEngine, autojump_clock: trio.testing.MockClock
) -> None:
    h = await many_offers(start_engine)

    result = await h.engine.inbound(phone(1), "yes", shift_id="shift-0")

    assert (result.outcome, result.shift_id) == (Outcome.CLAIMED, "shift-0")


async def test_the_oldest_of_100_open_offers_is_taken_by_its_code(
    start_engine: StartEngine, autojump_clock: trio.testing.MockClock
) -> None:
    h = await many_offers(start_engine)

    result = await h.engine.inbound(phone(1), f"YES {code_of(h, 'shift-0')}")

    assert (result.outcome, result.shift_id) == (Outcome.CLAIMED, "shift-0")


async def test_a_wrong_code_is_named_and_the_open_codes_are_listed(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await harness.engine.add_shift(shift("shift-2", start_in_h=42))
    for shift_id in ("shift-1", "shift-2"):
        await harness.engine.fanout(shift_id)
    await harness.settle()
    codes = [code_of(harness, s) for s in ("shift-1", "shift-2")]
    wrong = next(c for c in range(99, 0, -1) if c not in codes)

    result = await harness.engine.inbound(phone(1), f"YES {wrong}")

    assert result.outcome is Outcome.UNKNOWN_CODE
    assert result.reply is not None
    assert f"{wrong} is not one of your open offers" in result.reply
    assert all(f"{c}: RN" in result.reply for c in codes)
    assert (await harness.engine.shift("shift-1")).claimed_by is None


async def test_an_answer_naming_a_shift_she_was_not_offered_says_so_not_no_offers(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await harness.engine.add_shift(shift("lpn-1", role="LPN", start_in_h=42))
    await harness.engine.fanout("shift-1")
    await harness.settle()

    result = await harness.engine.inbound(phone(1), "no", shift_id="lpn-1")

    assert (result.outcome, result.shift_id) == (Outcome.NOT_OFFERED, "lpn-1")
    assert result.reply is not None and "was not offered to you" in result.reply
    assert "no open shift offers" not in result.reply
    assert f"{code_of(harness, 'shift-1')}: RN" in result.reply


async def test_an_answer_naming_a_shift_that_does_not_exist_is_not_offered(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    result = await harness.engine.inbound(phone(1), "yes", shift_id="no-such-shift")

    assert (result.outcome, result.shift_id) == (Outcome.NOT_OFFERED, None)


async def test_every_one_of_100_open_offers_is_listed_page_by_page(
    start_engine: StartEngine, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    # Every page is an automatic answer: the reply-loop guard may not stop her reading.
    config = make_config(tmp_path, replies={"max_per_hour": 100})
    h = await many_offers(start_engine, config)
    first = await h.engine.inbound(phone(1), "LIST")
    assert first.outcome is Outcome.LISTED and first.reply is not None
    match = re.search(r"\(1/(\d+)\)", first.reply)
    assert match, first.reply
    pages = int(match.group(1))

    listed = [first.reply]
    for page in range(2, pages + 1):
        result = await h.engine.inbound(phone(1), f"list {page}")
        assert result.reply is not None and f"({page}/{pages})" in result.reply
        listed.append(result.reply)

    codes = [int(c) for text in listed for c in re.findall(r"(\d+): RN", text)]
    assert sorted(codes) == sorted(code_of(h, f"shift-{i}") for i in range(MANY))
    assert all(segments(text).count == 1 for text in listed)


async def test_a_wrong_code_among_many_offers_says_how_to_see_them_all(
    start_engine: StartEngine, autojump_clock: trio.testing.MockClock
) -> None:
    h = await many_offers(start_engine)

    result = await h.engine.inbound(phone(1), "YES 9999")

    assert result.outcome is Outcome.UNKNOWN_CODE and result.reply is not None
    assert "more, reply LIST" in result.reply and segments(result.reply).count == 1
