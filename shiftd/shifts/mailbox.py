"""What a shift's actor is sent: its messages, and the reply a caller waits on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

import trio

from ..inbound.intent import Intent
from ..models import CancelStatus, Channel
from ..store.base import CaregiverRow, InboundLog
from .machine import AnswerResult, FanoutResult, ReleaseResult

T = TypeVar("T")


class ActorUnavailable(Exception):
    """The shift's actor failed while handling the request, or gave up after restarts."""


class Reply(Generic[T]):
    """A one-shot answer from an actor to whoever sent it a message."""

    __slots__ = ("_error", "_event", "_value")

    def __init__(self) -> None:
        self._event = trio.Event()
        self._value: tuple[T] | None = None  # boxed: a T may itself be None
        self._error: BaseException | None = None

    def set(self, value: T) -> None:
        if not self._event.is_set():
            self._value = (value,)
            self._event.set()

    def fail(self, error: BaseException) -> None:
        if not self._event.is_set():
            self._error = error
            self._event.set()

    async def wait(self) -> T:
        """The answer; raises what the actor failed with."""
        await self._event.wait()
        if self._error is not None:
            raise self._error
        assert self._value is not None, "the event is set only with a value or an error"
        return self._value[0]


@dataclass(slots=True)
class StartFanout:
    reply: Reply[FanoutResult] = field(default_factory=Reply)


@dataclass(slots=True)
class Answer:
    """A caregiver's ACCEPT or DECLINE for this shift, already attributed to them. With
    `inbound` (the text as received; its outcome is filled in), the actor logs it in the
    same transaction as what it causes. `withheld`: her phone opted out, so the answer to
    it is not sent (a confirmation is still written, and suppressed)."""

    caregiver: CaregiverRow
    intent: Intent
    channel: Channel
    inbound: InboundLog | None = None
    withheld: bool = False
    reply: Reply[AnswerResult] = field(default_factory=Reply)

    @property
    def caregiver_id(self) -> str:
        return self.caregiver.id


@dataclass(slots=True)
class Cancel:
    reply: Reply[CancelStatus] = field(default_factory=Reply)


@dataclass(slots=True)
class Release:
    """The holder of a filled shift drops out (`caregiver_id` set: only the holder may), or
    a coordinator unassigns it (`caregiver_id` None). `inbound`: the text that asked for
    it, logged with the release."""

    caregiver_id: str | None
    inbound: InboundLog | None = None
    reply: Reply[ReleaseResult] = field(default_factory=Reply)


Message = StartFanout | Answer | Cancel | Release
