"""The reply-loop guard: at most `replies.max_per_hour` automatic answers that change nothing
per caregiver per hour; answers that come with a change always go.

First the guard on its own (plain timestamps), then as caregivers meet it through the engine
(the harness roster: RN cg-1..cg-5, LPN cg-6..cg-7, one open RN shift `shift-1`).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import trio
from structlog.testing import capture_logs

from shiftd.inbound.replyguard import ReplyGuard
from shiftd.inbound.router import InboundResult
from shiftd.models import FanoutStatus, Outcome, Purpose
from shiftd.testing.engine import EPOCH, Harness, phone

MINUTE = timedelta(minutes=1)


def silenced(logs: list[dict[str, object]]) -> list[dict[str, object]]:
    return [e for e in logs if e["event"] == "reply.silenced"]


# ---- the guard on its own --------------------------------------------------------------------


def test_allows_max_per_hour_then_silences_and_logs_it() -> None:
    guard = ReplyGuard(5)

    with capture_logs() as logs:
        answers = [guard.allow("cg-1", EPOCH + n * MINUTE) for n in range(6)]

    assert answers == [True] * 5 + [False]
    [event] = silenced(logs)
    assert event["caregiver_id"] == "cg-1"


def test_answers_resume_once_the_oldest_leaves_the_hour() -> None:
    guard = ReplyGuard(2)
    assert guard.allow("cg-1", EPOCH)
    assert guard.allow("cg-1", EPOCH + 30 * MINUTE)
    assert not guard.allow("cg-1", EPOCH + 59 * MINUTE)

    assert guard.allow("cg-1", EPOCH + 60 * MINUTE)  # the first answer left the window
    assert not guard.allow("cg-1", EPOCH + 61 * MINUTE)  # the second is still in it


def test_silenced_attempts_do_not_count() -> None:
    guard = ReplyGuard(1)
    assert guard.allow("cg-1", EPOCH)
    for n in range(1, 60):
        assert not guard.allow("cg-1", EPOCH + n * MINUTE)

    assert guard.allow("cg-1", EPOCH + 60 * MINUTE)


def test_each_caregiver_has_a_budget_of_their_own() -> None:
    guard = ReplyGuard(1)

    assert guard.allow("cg-1", EPOCH)
    assert guard.allow("cg-2", EPOCH)
    assert not guard.allow("cg-1", EPOCH)


def test_zero_per_hour_never_answers() -> None:
    guard = ReplyGuard(0)

    with capture_logs() as logs:
        assert not guard.allow("cg-1", EPOCH)

    assert len(silenced(logs)) == 1


def test_silenced_log_never_holds_the_whole_phone() -> None:
    guard = ReplyGuard(0)

    with capture_logs() as logs:
        guard.allow("cg-1", EPOCH, phone="+15550001234", reason="help")

    [event] = silenced(logs)
    assert "+15550001234" not in repr(event) and "5550001234" not in repr(event)
    assert event["phone_tail"] == "…34"


def test_the_number_of_tracked_caregivers_is_bounded() -> None:
    guard = ReplyGuard(5, max_keys=3)

    for n in range(10):
        assert guard.allow(f"cg-{n}", EPOCH + n * MINUTE)

    assert len(guard) <= 3
    assert guard.answered("cg-9", EPOCH + 9 * MINUTE) == 1  # the latest is kept


def test_caregivers_quiet_for_an_hour_are_forgotten_first() -> None:
    guard = ReplyGuard(5, max_keys=2)
    guard.allow("quiet", EPOCH)
    guard.allow("busy", EPOCH + 90 * MINUTE)
    guard.allow("busy", EPOCH + 91 * MINUTE)

    guard.allow("new", EPOCH + 92 * MINUTE)

    assert guard.answered("busy", EPOCH + 92 * MINUTE) == 2
    assert len(guard) == 2


def test_a_negative_limit_is_refused() -> None:
    with pytest.raises(ValueError):
        ReplyGuard(-1)


# ---- through the engine ------------------------------------------------------------------


async def fanout(h: Harness) -> None:
    assert (await h.engine.fanout("shift-1")).status is FanoutStatus.STARTED
    await h.settle()


async def text(h: Harness, n: int, body: str) -> InboundResult:
    with trio.fail_after(60):
        result = await h.engine.inbound(phone(n), body)
    await h.settle()
    return result


def how_to_answers(h: Harness, caregiver_id: str) -> int:
    return len(h.provider.to(caregiver_id, Purpose.HELP))


async def exhaust(h: Harness, n: int) -> None:
    """Five unclear texts from caregiver `n`: the default budget of answers for the hour."""
    for _ in range(5):
        assert (await text(h, n, "maybe?")).reply is not None


async def test_six_unclear_texts_in_an_hour_get_five_answers_then_silence(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)
    results = []

    with capture_logs() as logs:
        for _ in range(6):
            results.append(await text(harness, 1, "maybe?"))
            await trio.sleep(60)

    assert how_to_answers(harness, "cg-1") == 5
    assert [r.outcome for r in results] == [Outcome.UNKNOWN_INTENT] * 6
    assert [r.reply is not None for r in results] == [True] * 5 + [False]
    [event] = silenced(logs)
    assert event["caregiver_id"] == "cg-1"
    assert phone(1) not in repr(event)
    # The silenced text is still recorded, with its outcome.
    rows = harness.engine.store._read(  # type: ignore[attr-defined]
        "SELECT outcome, reply FROM inbound WHERE caregiver_id = 'cg-1' ORDER BY id"
    )
    assert [tuple(r) for r in rows][-1] == ("unknown_intent", None)
    assert len(rows) == 6


async def test_answers_resume_after_an_hour(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)
    await exhaust(harness, 1)
    assert (await text(harness, 1, "maybe?")).reply is None

    await trio.sleep(60 * 60)
    result = await text(harness, 1, "maybe?")

    assert result.reply is not None
    assert how_to_answers(harness, "cg-1") == 6


async def test_no_open_offer_and_help_answers_share_the_budget(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    for _ in range(3):
        await text(harness, 6, "hello")  # cg-6 has no offer
    for _ in range(2):
        await text(harness, 6, "HELP")

    result = await text(harness, 6, "HELP")

    assert (result.outcome, result.reply) == (Outcome.HELP, None)
    assert len(harness.provider.to("cg-6")) == 5


async def test_start_from_someone_not_opted_out_counts_against_the_guard(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    for _ in range(5):
        assert (await text(harness, 6, "START")).reply is not None

    result = await text(harness, 6, "START")

    assert (result.outcome, result.reply) == (Outcome.OPTED_IN, None)
    assert len(harness.provider.to("cg-6", Purpose.OPT_IN)) == 5


async def test_a_claim_is_confirmed_even_past_the_limit(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)
    await exhaust(harness, 1)

    result = await text(harness, 1, "yes")

    assert result.outcome is Outcome.CLAIMED
    assert len(harness.provider.to("cg-1", Purpose.CONFIRM)) == 1


async def test_a_first_decline_is_acknowledged_even_past_the_limit(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)
    await exhaust(harness, 1)

    result = await text(harness, 1, "no")

    assert result.outcome is Outcome.DECLINED
    assert len(harness.provider.to("cg-1", Purpose.DECLINED)) == 1


async def test_a_first_stop_and_start_are_confirmed_even_past_the_limit(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)
    await exhaust(harness, 1)

    await text(harness, 1, "STOP")
    await text(harness, 1, "START")

    assert len(harness.provider.to("cg-1", Purpose.OPT_OUT)) == 1
    assert len(harness.provider.to("cg-1", Purpose.OPT_IN)) == 1


async def test_a_release_is_confirmed_even_past_the_limit(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout(harness)
    await text(harness, 1, "yes")
    for _ in range(5):
        await text(harness, 1, "hello")  # no open offer any more: answered, until the limit

    result = await text(harness, 1, "CANCEL")

    assert result.outcome is Outcome.RELEASED
    assert len(harness.provider.to("cg-1", Purpose.RELEASED)) == 1
