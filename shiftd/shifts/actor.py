"""One actor per shift in progress: the only code that changes a shift.

The actor keeps its shift's state in memory and handles one message at a time, which is
what makes "the first ACCEPT wins" hold without locks. For each message or deadline it
reads the facts the rules need, asks the machine (`shiftd.shifts.machine`) for the
transition, and has the store write it in one transaction guarded by the shift's version
(with the inbound text that caused it, if any) before acting on it; it never reads its
shift back. It sleeps until its next deadline (the policy's next wave, the moment offers
close, a coordinator notice; all stored as UTC instants, so a restart does not postpone
them) with only the `receive()` inside the timeout; a message in hand is always handled
to the end.
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

import trio

from ..clock import Clock
from ..events import EventBus
from ..inbound.intent import Intent
from ..inbound.replyguard import ReplyGuard
from ..logs import get_logger
from ..models import CancelStatus, Channel, Outcome, Purpose, ReleaseStatus, ShiftState
from ..shutdown import Shutdown
from ..store.base import (
    CaregiverRow,
    InboundLog,
    InboundRecord,
    OutboxRow,
    ShiftRow,
    StaleState,
    Store,
    StoreError,
)
from . import machine
from .machine import AnswerResult, FanoutResult, ReleaseResult, State, Transition
from .organizations import Organizations

log = get_logger(__name__)
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


@dataclass(frozen=True, slots=True)
class ActorContext:
    """What every actor shares: the store, the clock, each organization's policy and words,
    the reply-loop guard, the sender, and the event bus each transition is published on
    (after it is committed)."""

    store: Store
    clock: Clock
    organizations: Organizations
    send_now: Callable[[Sequence[OutboxRow]], Awaitable[None]]
    """Delivers rows a transition queued, in the calling task (`Sender.send_now`)."""
    wake_sender: Callable[[], None]
    """Has the central sender look for due rows (a call held back to space calls)."""
    escalation_jitter: timedelta = timedelta(0)
    call_gap: timedelta = timedelta(0)
    """No phone is called twice within this gap (see `WaveRun.call_gap`)."""
    reply_guard: ReplyGuard = field(default_factory=ReplyGuard)
    events: EventBus = field(default_factory=EventBus)
    public_url: str | None = None
    """Base of the links to a shift's page in coordinators' notices (`http.public_url`)."""
    shutdown: Shutdown = field(default_factory=Shutdown)
    """The stop's deadline: a message in hand is finished, but not beyond it."""
    _rules: dict[str, machine.Rules] = field(default_factory=dict)

    def rules(self, organization_id: str) -> machine.Rules:
        """The rules a shift of the organization follows (made once per organization)."""
        rules = self._rules.get(organization_id)
        if rules is None:
            org = self.organizations.get(organization_id)
            rules = self._rules[organization_id] = machine.Rules(
                org, self.call_gap, self.public_url
            )
        return rules


class ShiftActor:
    """Serves one shift until it is closed (filled, unfilled or cancelled).

    `run()` returns when the shift is closed and its inbox drained, or when the inbox is
    closed. A message that reopens a closed shift (a release) keeps it running. It raises
    whatever a transition raised (the supervisor restarts it from the store). On
    cancellation it stops between messages.
    """

    # A hundred thousand of these may sleep at once: slots, and nothing made before it is
    # needed (the offers are read at the first event, not at recovery).
    __slots__ = (
        "_ctx",
        "_inbox",
        "_nursery",
        "_offer_sends",
        "_retire",
        "_row",
        "_state",
        "current",
        "shift_id",
    )

    def __init__(
        self,
        shift_id: str,
        ctx: ActorContext,
        inbox: trio.MemoryReceiveChannel[Message],
        retire: Callable[[], None],
        loaded: ShiftRow | None = None,
    ) -> None:
        """`loaded` is the shift as just read from the store (recovery reads them all at
        once); without it the actor reads its shift when it starts."""
        self.shift_id = shift_id
        self.current: Message | None = None
        self._ctx = ctx
        self._inbox = inbox
        self._retire = retire
        self._row: ShiftRow | None = loaded
        self._state: State | None = None
        self._nursery: trio.Nursery | None = None
        # The scopes of offer deliveries in progress: a transition that withdraws every
        # pending offer (a claim, a cancel, offers closing) cancels them all at once.
        self._offer_sends: list[trio.CancelScope] | None = None

    async def run(self) -> None:
        if self._row is None:
            self._row = await self._ctx.store.shift(self.shift_id)
        # The nursery holds the shift's deliveries: a closed shift's actor returns once its
        # last messages (the confirmation, "filled") are handed over.
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            while True:
                while not self._closed:
                    message = None
                    with trio.move_on_at(self._deadline()):
                        try:
                            message = await self._inbox.receive()
                        except trio.EndOfChannel:
                            # Stopping: deliveries still waiting for their turn stop too
                            # (their rows stay pending for the next start); sends under
                            # way finish.
                            nursery.cancel_scope.cancel()
                            return
                    with self._ctx.shutdown.bounded(trio.CancelScope(shield=True)):
                        if message is None:
                            await self._on_deadline()
                        else:
                            await self._handle_waiting(message)
                if await self._wind_down():
                    return

    @property
    def _shift(self) -> ShiftRow | None:
        return self._state.shift if self._state is not None else self._row

    @property
    def _closed(self) -> bool:
        shift = self._shift
        return shift is None or shift.state.closed

    def _rules(self, shift: ShiftRow) -> machine.Rules:
        return self._ctx.rules(shift.organization_id)

    async def _loaded(self) -> State:
        """The state, with the offers read once (most actors sleep and never need them)."""
        if self._state is None:
            row = self._row
            if row is None:
                raise LookupError(f"no shift {self.shift_id!r}")
            offers = await self._ctx.store.offers_state(self.shift_id)
            self._state = State(row, offers, row.version)
            self._row = None
        return self._state

    def _deadline(self) -> float:
        shift = self._shift
        if shift is None or not shift.state.in_progress:
            return math.inf
        told = self._state.told if self._state is not None else frozenset()
        due = machine.next_deadline(shift, self._rules(shift), told)
        return self._ctx.clock.deadline(due) if due is not None else math.inf

    async def _candidates(self, shift: ShiftRow, rules: machine.Rules) -> machine.Candidates:
        return await self._ctx.store.candidates(
            shift.role_required, rules.window(shift), exclude=shift.id
        )

    def _jitter(self) -> float:
        return random.uniform(0, self._ctx.escalation_jitter.total_seconds())

    async def _on_deadline(self) -> None:
        async def step(state: State, rules: machine.Rules, now: datetime) -> Transition:
            facts = await self._candidates(state.shift, rules)
            return machine.deadline_passed(state, now, facts, rules, self._jitter())

        await self._apply(step)

    async def _handle_waiting(self, first: Message) -> None:
        """Handle `first`; if it is an answer, with the answers waiting behind it in the
        inbox (up to `_BURST`), written together (`_answers`). Every message taken is
        answered: if handling fails, those not handled yet get ActorUnavailable."""
        taken = [first]
        while isinstance(taken[-1], Answer) and len(taken) < _BURST:
            try:
                taken.append(self._inbox.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        try:
            burst = [m for m in taken if isinstance(m, Answer)]
            await self._answer_burst(burst)
            if not isinstance(taken[-1], Answer):  # what ended the burst comes after it
                await self._handle(taken[-1])
        except BaseException:
            for message in taken:
                if message is not self.current:
                    message.reply.fail(ActorUnavailable(f"shift {self.shift_id}: internal error"))
            raise

    async def _answer_burst(self, burst: list[Answer]) -> None:
        if len(burst) == 1:
            await self._handle(burst[0])
        elif burst:
            await self._answers(burst)

    async def _handle(self, message: Message) -> None:
        """Handle one message to the end (the caller shields it from cancellation)."""
        self.current = message
        match message:
            case StartFanout():
                message.reply.set(await self._fanout())
            case Answer():
                message.reply.set(await self._answer(message))
            case Cancel():
                message.reply.set(await self._cancel())
            case Release():
                message.reply.set(await self._release(message))
        self.current = None

    async def _wind_down(self) -> bool:
        """The shift is closed: answer the messages already queued, then stop taking new
        ones. Returns False if one of them reopened the shift (it goes on)."""
        while True:
            try:
                message = self._inbox.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
            with self._ctx.shutdown.bounded(trio.CancelScope(shield=True)):
                await self._handle_waiting(message)
            if not self._closed:
                return False
        # Retiring and closing with no checkpoint since the last empty receive: nothing can
        # slip in between, and a sender blocked on this inbox now gets BrokenResourceError
        # and is routed to a fresh actor.
        self._retire()
        self._inbox.close()
        return True

    # ---- transitions -------------------------------------------------------------------

    async def _apply(
        self,
        decide: Callable[[State, machine.Rules, datetime], Any],
        inbound: InboundLog | None = None,
        finish: Callable[[Transition], Transition] | None = None,
        *,
        only: str | None = None,
    ) -> Transition:
        """Decide a transition from the state and fresh facts, write it in one transaction
        and only then take it as the new state, hand its messages to the sender and announce
        it. A write refused as stale (the shift, or a fact it relied on, changed in the same
        instant) is decided again from the store, once. `only`: the caregiver an answer
        comes from; a closed shift not yet loaded then reads her offer alone (nothing an
        answer does to a closed shift changes it)."""
        store = self._ctx.store
        for attempt in (1, 2):
            row = self._row
            if only is not None and self._state is None and row is not None and row.state.closed:
                state = State(row, await store.offers_state(self.shift_id, only), row.version)
            else:
                state = await self._loaded()
            rules = self._rules(state.shift)
            # One instant per step: what the rules decide from is what the store records.
            now = self._ctx.clock.now()
            transition: Transition = await decide(state, rules, now)
            if finish is not None:
                transition = finish(transition)
            if not _writes(state, transition, inbound):
                if transition.state is not None:
                    self._state = transition.state
                return transition
            logged = _logged(inbound, transition)
            try:
                persisted = await store.persist(
                    self.shift_id,
                    state.version,
                    transition,
                    at=now,
                    call_gap=self._ctx.call_gap,
                    inbound=logged,
                )
            except StaleState:
                if attempt == 2:
                    raise
                log.info("shift.stale", shift_id=self.shift_id)
                await self._reload()
                continue
            new = transition.state
            if new is not None:
                offers = new.offers
                if persisted.codes:  # new offers: the codes the store gave them
                    offers = dict(offers)
                    for cg, code in persisted.codes.items():
                        offers[cg] = replace(offers[cg], code=code)
                self._state = replace(new, offers=offers, version=state.version + 1)
            self._send(persisted.rows, transition)
            if persisted.held:
                self._ctx.wake_sender()
            self._announce(transition)
            if logged is not None and logged.reply is not None and not persisted.replied:
                # The same answer went out before (its key was queued already).
                transition = replace(transition, answer=_without_reply(transition.answer))
            return transition
        raise AssertionError("unreachable")

    async def _reload(self) -> None:
        """Forget the state: the next step reads the shift from the store."""
        found = await self._ctx.store.shift(self.shift_id)
        assert found is not None, "shifts are never deleted"
        self._row, self._state = found, None

    def _send(self, rows: tuple[OutboxRow, ...], transition: Transition) -> None:
        """Deliver what a transition queued, in this actor's nursery; first stop the offer
        deliveries it makes pointless (it withdrew every pending offer)."""
        if self._offer_sends and any(w.caregiver_id is None for w in transition.withdraw):
            for scope in self._offer_sends:
                scope.cancel()
            self._offer_sends = None
        if not rows:
            return
        assert self._nursery is not None
        offers = tuple(r for r in rows if r.purpose is Purpose.OFFER)
        others = tuple(r for r in rows if r.purpose is not Purpose.OFFER)
        if offers:
            self._nursery.start_soon(self._send_offers, offers)
        if others:
            self._nursery.start_soon(self._ctx.send_now, others)

    async def _send_offers(self, rows: tuple[OutboxRow, ...]) -> None:
        with trio.CancelScope() as scope:
            if self._offer_sends is None:
                self._offer_sends = []
            self._offer_sends.append(scope)
            try:
                await self._ctx.send_now(rows)
            finally:
                if self._offer_sends is not None and scope in self._offer_sends:
                    self._offer_sends.remove(scope)

    def _announce(self, transition: Transition) -> None:
        events = self._ctx.events
        for kind, fields in transition.news:
            # What an answer did is in the router's `inbound.handled` line already.
            emit = log.debug if kind in _ANSWERED else log.info
            emit(_LOG_EVENTS.get(kind, kind), shift_id=self.shift_id, **fields)
            if kind in _UNPUBLISHED:
                continue
            events.publish(kind, shift_id=self.shift_id, **fields)

    async def _fanout(self) -> FanoutResult:
        async def decide(state: State, rules: machine.Rules, now: datetime) -> Transition:
            facts = await self._candidates(state.shift, rules)
            return machine.start_fanout(state, now, facts, rules, self._jitter())

        if self._shift is None:
            raise LookupError(f"no shift {self.shift_id!r}")
        if self._shift.state is ShiftState.OPEN:
            # An open shift may have been edited since it was loaded (a roster import
            # changes open shifts): offer what is stored now.
            found = await self._ctx.store.shift(self.shift_id)
            assert found is not None
            self._row, self._state = found, None
        result: FanoutResult = (await self._apply(decide)).answer
        return result

    async def _answer(self, answer: Answer) -> AnswerResult:
        transition = await self._apply(
            lambda state, rules, now: self._decide_answer(answer, state, rules, now),
            _unlogged(answer, self.shift_id),
            lambda t: self._guarded(answer, t),
            only=answer.caregiver_id,
        )
        result = transition.answer
        assert isinstance(result, AnswerResult)
        return result

    async def _decide_answer(
        self, answer: Answer, state: State, rules: machine.Rules, now: datetime
    ) -> Transition:
        """The transition an answer makes, from fresh facts about who sent it."""
        store, shift, cg = self._ctx.store, state.shift, answer.caregiver_id
        reached: tuple[machine.Reached, ...] = ()
        if answer.intent is Intent.ACCEPT:
            facts = await store.claimant(shift.id, cg, rules.window(shift))
            if shift.state.in_progress:
                reached = await store.reached(shift.id)
        else:
            # A decline needs no more than her roster row, read as her text came in.
            facts = machine.Claimant(answer.caregiver)
        return machine.answer(state, now, cg, answer.intent, answer.channel, facts, rules, reached)

    def _guarded(self, answer: Answer, transition: Transition) -> Transition:
        """An answer that changes nothing goes out unless the reply-loop guard says no; no
        answer goes to a phone that opted out."""
        ctx, result = self._ctx, transition.answer
        assert isinstance(result, AnswerResult)
        if result.message is not None and not ctx.reply_guard.allow(
            answer.caregiver_id, ctx.clock.now(), reason=result.message.purpose.value
        ):
            result = AnswerResult(result.outcome, None)
        if answer.withheld:
            result = replace(result, reply=None, message=None)
        return replace(transition, answer=result)

    async def _answers(self, burst: list[Answer]) -> None:
        """Answers found waiting together (a storm of accepts): each decided in turn from
        the state the one before leaves, all written in one transaction. If that write
        fails, each is handled again on its own, from the store."""
        state = await self._loaded()
        rules = self._rules(state.shift)
        now = self._ctx.clock.now()
        steps: list[tuple[int, Transition, InboundLog | None]] = []
        for answer in burst:
            self.current = answer
            decided = await self._decide_answer(answer, state, rules, now)
            transition = self._guarded(answer, decided)
            steps.append(
                (state.version, transition, _logged(_unlogged(answer, self.shift_id), transition))
            )
            if transition.state is not None:
                state = replace(transition.state, version=state.version + 1)
        self.current = None
        try:
            persisted = await self._ctx.store.persist_steps(
                self.shift_id, steps, at=now, call_gap=self._ctx.call_gap
            )
        except StoreError:
            log.info("shift.burst_refused", shift_id=self.shift_id, messages=len(burst))
            await self._reload()
            for answer in burst:
                await self._handle(answer)
            return
        self._state = state
        for answer, (_, transition, logged), written in zip(burst, steps, persisted, strict=True):
            self._send(written.rows, transition)
            self._announce(transition)
            result = transition.answer
            if logged is not None and logged.reply is not None and not written.replied:
                result = _without_reply(result)
            answer.reply.set(result)

    async def _holder_language(self, shift: ShiftRow) -> str | None:
        if shift.claimed_by is None:
            return None
        caregiver = await self._ctx.store.caregiver(shift.claimed_by)
        return caregiver.language if caregiver is not None else None

    async def _cancel(self) -> CancelStatus:
        async def decide(state: State, rules: machine.Rules, now: datetime) -> Transition:
            language = await self._holder_language(state.shift)
            return machine.cancel(state, now, rules, language)

        status: CancelStatus = (await self._apply(decide)).answer
        return status

    async def _release(self, release: Release) -> ReleaseResult:
        async def decide(state: State, rules: machine.Rules, now: datetime) -> Transition:
            shift = state.shift
            language = await self._holder_language(shift)
            facts = await self._candidates(shift, rules)
            return machine.release(
                state, now, release.caregiver_id, rules, language, facts, self._jitter()
            )

        inbound = release.inbound
        transition = await self._apply(decide, inbound)
        result: ReleaseResult = transition.answer
        return result


def _writes(state: State, transition: Transition, inbound: InboundLog | None) -> bool:
    """Whether a transition has anything to store."""
    new = transition.state
    changed = new is not None and (new.shift != state.shift or new.offers is not state.offers)
    return bool(
        changed
        or transition.messages
        or transition.contacts
        or transition.records
        or inbound is not None
    )


def _unlogged(answer: Answer, shift_id: str) -> InboundLog | None:
    """The answer's text, to log with what it does (its outcome is known once decided)."""
    if answer.inbound is None:
        return None
    record = InboundRecord("", shift_id, answer.caregiver_id, None)
    return replace(answer.inbound, result=record)


def _logged(inbound: InboundLog | None, transition: Transition) -> InboundLog | None:
    """The inbound text with the outcome the transition gave it, and the answer that
    changes nothing (if any) to queue with it."""
    if inbound is None:
        return None
    result = transition.answer
    if isinstance(result, AnswerResult):
        record = replace(inbound.result, outcome=result.outcome.value, reply=result.reply)
        return replace(inbound, result=record, reply=result.message)
    if isinstance(result, ReleaseResult):
        outcome = (
            Outcome.RELEASED
            if result.status in (ReleaseStatus.RELEASED, ReleaseStatus.RELEASED_UNFILLED)
            else Outcome.NO_OPEN_OFFER
        )
        record = replace(inbound.result, outcome=outcome.value, reply=result.reply)
        return replace(inbound, result=record)
    return inbound


def _without_reply(result: Any) -> Any:
    if isinstance(result, AnswerResult):
        return AnswerResult(result.outcome, None)
    return result


_BURST = 64
"""At most this many waiting messages are taken at once."""
_LOG_EVENTS = {
    "fanout_started": "fanout.started",
    "wave": "wave.ran",
    "escalated": "wave.ran",
    "wave_held": "wave.held",
    "claimed": "claim.won",
    "claim_not_eligible": "claim.not_eligible",
    "claim_too_late": "claim.too_late",
    "declined": "offer.declined",
    "cancelled": "fanout.cancelled",
    "released": "shift.released",
    "unfilled": "fanout.unfilled",
    "coordinator_told": "coordinator.told",
}
_UNPUBLISHED = frozenset({"claim_not_eligible", "claim_too_late"})
_ANSWERED = frozenset({"declined", "claim_not_eligible", "claim_too_late"})
