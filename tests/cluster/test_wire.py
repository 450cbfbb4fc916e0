"""Every request an actor takes, and every answer it gives, survives its JSON form."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import trio.testing

from shiftd.cluster.wire import (
    UnreadableRequest,
    decode_request,
    encode_request,
    encode_result,
    encode_unavailable,
    settle,
)
from shiftd.inbound.intent import Intent
from shiftd.models import CancelStatus, Channel, FanoutStatus, Outcome, Purpose, ReleaseStatus
from shiftd.shifts.machine import AnswerResult, FanoutResult, ReleaseResult
from shiftd.shifts.mailbox import ActorUnavailable, Answer, Cancel, Message, Release, StartFanout
from shiftd.store.base import CaregiverRow, InboundLog, InboundRecord, NewMessage

CAREGIVER = CaregiverRow("cg-1", "Ann", "RN", "+15550000001", ("night",), True, "es")
TEXT = InboundLog(
    datetime(2025, 7, 1, 14, 0, tzinfo=UTC),
    "SM-1",
    "+15550000001",
    Channel.SMS,
    "yes 12",
    InboundRecord("", "shift-1", "cg-1", None),
    NewMessage("reply:1", "cg-1", Channel.SMS, Purpose.HELP, "Reply YES 12", "shift-1"),
)


def fields(message: Message) -> dict[str, object]:
    return {k: getattr(message, k) for k in message.__slots__ if k != "reply"}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "message",
    [
        StartFanout(),
        Cancel(),
        Release(None),
        Release("cg-1", TEXT),
        Answer(CAREGIVER, Intent.ACCEPT, Channel.SMS, TEXT, withheld=True),
        Answer(CAREGIVER, Intent.DECLINE, Channel.VOICE),
    ],
    ids=["fanout", "cancel", "unassign", "release", "accept", "decline"],
)
def test_a_request_decodes_to_the_message_it_was(message: Message) -> None:
    decoded = decode_request(encode_request(message))

    assert type(decoded) is type(message)
    assert fields(decoded) == fields(message)


@pytest.mark.parametrize(
    ("message", "result"),
    [
        (StartFanout(), FanoutResult(FanoutStatus.STARTED, 5, "2025-07-01T14:10:00Z")),
        (Cancel(), CancelStatus.CANCELLED),
        (Release(None), ReleaseResult(ReleaseStatus.RELEASED, "You released it")),
        (
            Answer(CAREGIVER, Intent.ACCEPT, Channel.SMS),
            AnswerResult(Outcome.ALREADY_FILLED, "Already filled", None),
        ),
    ],
    ids=["fanout", "cancel", "release", "answer"],
)
async def test_an_answer_settles_the_reply_with_the_owners_result(
    message: Message, result: object, autojump_clock: trio.testing.MockClock
) -> None:
    settle(message, encode_result(message, result))

    assert await message.reply.wait() == result


async def test_an_unavailable_answer_fails_the_reply_with_its_reason(
    autojump_clock: trio.testing.MockClock,
) -> None:
    message = Cancel()

    settle(message, encode_unavailable("shift shift-1: internal error"))

    with pytest.raises(ActorUnavailable, match=r"^shift shift-1: internal error$"):
        await message.reply.wait()


def test_a_request_it_cannot_read_is_refused() -> None:
    with pytest.raises(UnreadableRequest):
        decode_request('{"kind": "teleport"}')
