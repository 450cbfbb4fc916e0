"""One actor per shift in progress: the only code that changes a shift.

The actor owns its shift's state and handles one message at a time, which is what makes
"the first ACCEPT wins" hold without locks. It sleeps until the escalation deadline (stored
as a UTC timestamp, so a restart does not postpone it) with only the `receive()` inside the
timeout; a message in hand is always handled to the end. Each transition is committed to
the store, together with the messages it causes, before the actor acts on it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, TypeVar

import trio

from .clock import Clock, iso
from .events import EventBus
from .intent import Intent
from .logs import get_logger
from .messages import Messages
from .models import CancelStatus, Channel, FanoutStatus, Outcome, Purpose, ShiftState
from .store.base import NewMessage, ShiftRow, Store

log = get_logger(__name__)
T = TypeVar("T")


class ActorUnavailable(Exception):
    """The shift's actor failed while handling the request, or gave up after restarts."""


class Reply(Generic[T]):
    """A one-shot answer from an actor to whoever sent it a message."""

    __slots__ = ("_error", "_event", "_value")

    def __init__(self) -> None:
        self._event = trio.Event()
        self._value: T | None = None
        self._error: BaseException | None = None

    def set(self, value: T) -> None:
        if not self._event.is_set():
            self._value = value
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
        return self._value  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class FanoutResult:
    status: FanoutStatus
    offered: int
    escalate_at: str | None


@dataclass(frozen=True, slots=True)
class AnswerResult:
    outcome: Outcome
    reply: str | None


@dataclass(slots=True)
class StartFanout:
    reply: Reply[FanoutResult] = field(default_factory=Reply)


@dataclass(slots=True)
class Answer:
    """A caregiver's ACCEPT or DECLINE for this shift, already attributed to them."""

    caregiver_id: str
    intent: Intent
    channel: Channel
    reply: Reply[AnswerResult] = field(default_factory=Reply)


@dataclass(slots=True)
class Cancel:
    reply: Reply[CancelStatus] = field(default_factory=Reply)


Message = StartFanout | Answer | Cancel


@dataclass(frozen=True, slots=True)
class ActorContext:
    """What every actor shares: the store, the clock, the words, the policy, the sender,
    and the event bus each transition is published on (after it is committed)."""

    store: Store
    clock: Clock
    messages: Messages
    escalation_delay: timedelta
    escalation_jitter: timedelta
    wake_sender: Callable[[], None]
    events: EventBus = field(default_factory=EventBus)


class ShiftActor:
    """Serves one shift until it is filled or cancelled.

    `run()` returns when the shift is closed and its inbox drained, or when the inbox is
    closed. It raises whatever a transition raised (the supervisor restarts it from the
    store). On cancellation it stops between messages.
    """

    def __init__(
        self,
        shift_id: str,
        ctx: ActorContext,
        inbox: trio.MemoryReceiveChannel[Message],
        retire: Callable[[], None],
    ) -> None:
        self.shift_id = shift_id
        self.current: Message | None = None
        self._ctx = ctx
        self._inbox = inbox
        self._retire = retire
        self._shift: ShiftRow | None = None
        self._offered: set[str] = set()
        self._declined: set[str] = set()
        self._log = log.bind(shift_id=shift_id)

    async def run(self) -> None:
        await self._load()
        async with trio.open_nursery():
            while not self._closed:
                message = None
                with trio.move_on_at(self._deadline()):
                    try:
                        message = await self._inbox.receive()
                    except trio.EndOfChannel:
                        return
                if message is None:
                    await self._escalate()
                else:
                    await self._handle(message)
            await self._wind_down()

    @property
    def _closed(self) -> bool:
        return self._shift is None or self._shift.state.closed

    async def _load(self) -> None:
        store = self._ctx.store
        self._shift = await store.shift(self.shift_id)
        offers = await store.offers_for_shift(self.shift_id)
        self._offered = {o.caregiver_id for o in offers}
        self._declined = {o.caregiver_id for o in offers if o.declined_at is not None}
        if self._shift is not None and self._shift.state.in_progress:
            self._log.info("actor.loaded", state=self._shift.state, offered=len(self._offered))

    def _deadline(self) -> float:
        shift = self._shift
        if shift is None or shift.state is not ShiftState.OFFERING or shift.escalate_at is None:
            return math.inf
        return self._ctx.clock.deadline(shift.escalate_at)

    async def _handle(self, message: Message) -> None:
        """Handle one message to the end, even if cancelled meanwhile (shutdown waits)."""
        self.current = message
        with trio.CancelScope(shield=True):
            match message:
                case StartFanout():
                    message.reply.set(await self._fanout())
                case Answer():
                    message.reply.set(await self._answer(message))
                case Cancel():
                    message.reply.set(await self._cancel())
        self.current = None

    async def _wind_down(self) -> None:
        """The shift is closed: stop taking new messages, answer those already queued."""
        self._retire()
        while True:
            try:
                message = self._inbox.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
            await self._handle(message)
        # Closing with no checkpoint since the last empty receive: a sender blocked on this
        # inbox now gets BrokenResourceError and is routed to a fresh actor.
        self._inbox.close()

    async def _reload(self) -> ShiftRow:
        self._shift = await self._ctx.store.shift(self.shift_id)
        assert self._shift is not None, "shifts are never deleted"
        return self._shift

    # ---- transitions -------------------------------------------------------------------

    async def _fanout(self) -> FanoutResult:
        if self._shift is None:
            raise LookupError(f"no shift {self.shift_id!r}")
        # A shift still open may have been edited since it was loaded (a roster import
        # changes open shifts): offer what is stored now, not the cached copy.
        shift = await self._reload()
        if shift.state is not ShiftState.OPEN:
            return FanoutResult(
                _FANOUT_STATUS[shift.state], len(self._offered), iso(shift.escalate_at)
            )
        ctx = self._ctx
        now = ctx.clock.now()
        jitter = random.uniform(0, ctx.escalation_jitter.total_seconds())
        escalate_at = now + ctx.escalation_delay + timedelta(seconds=jitter)
        offered = await ctx.store.start_fanout(
            self.shift_id,
            at=now,
            escalate_at=escalate_at,
            render_offer=lambda code: ctx.messages.offer_sms(shift, code),
        )
        if not offered:
            return FanoutResult(FanoutStatus.NO_CANDIDATES, 0, None)
        shift = await self._reload()
        self._offered = {o.caregiver_id for o in await ctx.store.offers_for_shift(self.shift_id)}
        ctx.wake_sender()
        self._log.info("fanout.started", offered=offered, escalate_at=iso(escalate_at))
        ctx.events.publish(
            "fanout_started",
            shift_id=self.shift_id,
            offered=offered,
            escalate_at=iso(escalate_at),
        )
        return FanoutResult(FanoutStatus.STARTED, offered, iso(escalate_at))

    async def _escalate(self) -> None:
        shift = self._shift
        assert shift is not None
        ctx = self._ctx
        calls = await ctx.store.escalate(
            self.shift_id, at=ctx.clock.now(), body=ctx.messages.offer_voice(shift)
        )
        await self._reload()
        ctx.wake_sender()
        self._log.info("fanout.escalated", calls=calls)
        if calls is not None:
            ctx.events.publish("escalated", shift_id=self.shift_id, calls=calls)

    async def _answer(self, answer: Answer) -> AnswerResult:
        shift = self._shift
        if shift is None:
            raise LookupError(f"no shift {self.shift_id!r}")
        cg = answer.caregiver_id
        bound = self._log.bind(caregiver_id=cg)
        if shift.state.in_progress and cg in self._offered:
            if answer.intent is Intent.ACCEPT:
                return await self._claim(shift, cg, bound, answer.channel)
            return await self._decline(shift, cg, bound)
        if shift.state is ShiftState.FILLED:
            if shift.claimed_by == cg:
                return AnswerResult(Outcome.CLAIMED, self._ctx.messages.confirm(shift))
            if answer.intent is Intent.DECLINE:
                return AnswerResult(Outcome.ALREADY_FILLED, None)
            text = self._ctx.messages.already_filled(shift)
            if not await self._told_filled_lately(cg):
                await self._reply(cg, Purpose.ALREADY_FILLED, text)
            bound.info("claim.too_late")
            return AnswerResult(Outcome.ALREADY_FILLED, text)
        if shift.state is ShiftState.CANCELLED and cg in self._offered:
            text = self._ctx.messages.no_longer_available(shift)
            await self._reply(cg, Purpose.CANCELLED, text)
            return AnswerResult(Outcome.NO_OPEN_OFFER, text)
        return AnswerResult(Outcome.NO_OPEN_OFFER, None)

    async def _claim(
        self, shift: ShiftRow, cg: str, bound: Any, channel: Channel = Channel.SMS
    ) -> AnswerResult:
        ctx = self._ctx
        confirm = ctx.messages.confirm(shift)
        won = await ctx.store.claim(
            self.shift_id,
            cg,
            at=ctx.clock.now(),
            confirm=confirm,
            filled=ctx.messages.filled(shift),
        )
        assert won, "the actor is the only writer of its shift's state"
        filled = await self._reload()
        ctx.wake_sender()
        bound.info("claim.won")
        started, claimed = filled.fanout_started_at, filled.claimed_at
        ctx.events.publish(
            "claimed",
            shift_id=self.shift_id,
            caregiver_id=cg,
            channel=str(channel),
            time_to_fill_s=(
                round((claimed - started).total_seconds(), 6) if started and claimed else None
            ),
        )
        return AnswerResult(Outcome.CLAIMED, confirm)

    async def _decline(self, shift: ShiftRow, cg: str, bound: Any) -> AnswerResult:
        ctx = self._ctx
        text = ctx.messages.declined(shift)
        reply = NewMessage(
            f"declined:{self.shift_id}:{cg}", cg, Channel.SMS, Purpose.DECLINED, text, self.shift_id
        )
        if await ctx.store.decline(self.shift_id, cg, at=ctx.clock.now(), reply=reply):
            self._declined.add(cg)
            ctx.wake_sender()
            bound.info("offer.declined")
            ctx.events.publish("declined", shift_id=self.shift_id, caregiver_id=cg)
        return AnswerResult(Outcome.DECLINED, text)

    async def _cancel(self) -> CancelStatus:
        shift = self._shift
        if shift is None:
            raise LookupError(f"no shift {self.shift_id!r}")
        if shift.state is ShiftState.FILLED:
            return CancelStatus.ALREADY_FILLED
        if shift.state is ShiftState.CANCELLED:
            return CancelStatus.ALREADY_CANCELLED
        await self._ctx.store.cancel_shift(self.shift_id, at=self._ctx.clock.now())
        await self._reload()
        self._log.info("fanout.cancelled")
        self._ctx.events.publish("cancelled", shift_id=self.shift_id)
        return CancelStatus.CANCELLED

    async def _told_filled_lately(self, cg: str) -> bool:
        """Whether a "filled" notice went to `cg` moments ago: someone who accepted in the same
        instant as the winner already has one, and a second text saying so is noise."""
        told = await self._ctx.store.queued_at(self.shift_id, cg, Purpose.FILLED)
        return told is not None and self._ctx.clock.now() - told < _RETELL_AFTER

    async def _reply(self, cg: str, purpose: Purpose, text: str) -> None:
        # Keyed per shift and caregiver: however often they write, one such answer goes out.
        key = f"{purpose.value}:{self.shift_id}:{cg}"
        message = NewMessage(key, cg, Channel.SMS, purpose, text, self.shift_id)
        if await self._ctx.store.queue([message], at=self._ctx.clock.now()):
            self._ctx.wake_sender()


_RETELL_AFTER = timedelta(minutes=10)

_FANOUT_STATUS = {
    ShiftState.OFFERING: FanoutStatus.ALREADY_RUNNING,
    ShiftState.ESCALATED: FanoutStatus.ALREADY_RUNNING,
    ShiftState.FILLED: FanoutStatus.ALREADY_FILLED,
    ShiftState.CANCELLED: FanoutStatus.CANCELLED,
}
