"""The JSON forms of what one instance asks another's shift actor, and of its answers.

One place for both directions, so the forms cannot drift: `encode_request` /
`decode_request` turn an actor message (`shiftd.shifts.mailbox.Message`) into a JSON text and
back, `encode_result` / `encode_unavailable` / `settle` do the same for its answer. The
forms are pydantic round-trips of the messages' own dataclasses (the roster row, the
inbound text as received, the machine's results), never hand-written field lists.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter, ValidationError

from ..inbound.intent import Intent
from ..models import CancelStatus, Channel
from ..shifts.machine import AnswerResult, FanoutResult, ReleaseResult
from ..shifts.mailbox import ActorUnavailable, Answer, Cancel, Message, Release, StartFanout
from ..store.base import CaregiverRow, InboundLog


class _Form(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Fanout(_Form):
    kind: Literal["fanout"] = "fanout"


class _Cancel(_Form):
    kind: Literal["cancel"] = "cancel"


class _Release(_Form):
    kind: Literal["release"] = "release"
    caregiver_id: str | None
    inbound: InboundLog | None


class _Answer(_Form):
    kind: Literal["answer"] = "answer"
    caregiver: CaregiverRow
    intent: Intent
    channel: Channel
    inbound: InboundLog | None
    withheld: bool


_Request = Annotated[_Fanout | _Cancel | _Release | _Answer, Field(discriminator="kind")]
# pydantic takes any type form here (PEP 747's TypeForm). mypy 1.20 accepts it on a cold run
# but, from its cache, reads the Annotated union as a value: hence both codes.
_REQUESTS: TypeAdapter[_Request] = TypeAdapter(_Request)  # type: ignore[arg-type, unused-ignore]

# What each kind of message is answered with, as the owner's actor sets it on its reply.
_RESULTS: dict[type, TypeAdapter[Any]] = {
    StartFanout: TypeAdapter(FanoutResult),
    Cancel: TypeAdapter(CancelStatus),
    Release: TypeAdapter(ReleaseResult),
    Answer: TypeAdapter(AnswerResult),
}


class _Outcome(_Form):
    """An answer: the result (`ok`), or why the owner could not handle it (`unavailable`)."""

    ok: JsonValue = None
    unavailable: str | None = None


_OUTCOMES: TypeAdapter[_Outcome] = TypeAdapter(_Outcome)


class UnreadableRequest(ValueError):
    """A request text this version cannot read (written by another version, or damaged)."""


def encode_request(message: Message) -> str:
    """`message` as JSON (its reply channel stays behind: the answer comes back apart)."""
    form: _Request
    match message:
        case StartFanout():
            form = _Fanout()
        case Cancel():
            form = _Cancel()
        case Release(caregiver_id=caregiver_id, inbound=inbound):
            form = _Release(caregiver_id=caregiver_id, inbound=inbound)
        case Answer():
            form = _Answer(
                caregiver=message.caregiver,
                intent=message.intent,
                channel=message.channel,
                inbound=message.inbound,
                withheld=message.withheld,
            )
    return _REQUESTS.dump_json(form).decode()


def decode_request(text: str) -> Message:
    """The message `text` encodes, with a fresh reply. Raises UnreadableRequest."""
    try:
        form = _REQUESTS.validate_json(text)
    except ValidationError as exc:
        raise UnreadableRequest(f"cannot read a forwarded request: {exc}") from None
    match form:
        case _Fanout():
            return StartFanout()
        case _Cancel():
            return Cancel()
        case _Release():
            return Release(form.caregiver_id, form.inbound)
        case _Answer():
            return Answer(form.caregiver, form.intent, form.channel, form.inbound, form.withheld)


def encode_result(message: Message, result: object) -> str:
    """The answer `result` (what the actor set on `message.reply`) as JSON."""
    ok = _RESULTS[type(message)].dump_python(result, mode="json")
    return _OUTCOMES.dump_json(_Outcome(ok=ok)).decode()


def encode_unavailable(reason: str) -> str:
    """An answer saying the owner could not handle the request, and why."""
    return _OUTCOMES.dump_json(_Outcome(unavailable=reason)).decode()


def settle(message: Message, answer: str) -> None:
    """Set `message.reply` from the JSON `answer`: the result, or ActorUnavailable with the
    owner's reason (also when the answer cannot be read)."""
    try:
        outcome = _OUTCOMES.validate_json(answer)
        if outcome.unavailable is not None:
            message.reply.fail(ActorUnavailable(outcome.unavailable))
            return
        result = _RESULTS[type(message)].validate_python(outcome.ok)
    except ValidationError as exc:
        message.reply.fail(ActorUnavailable(f"cannot read the owner's answer: {exc}"))
        return
    message.reply.set(result)
