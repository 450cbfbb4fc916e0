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
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

import trio

from ..logs import get_logger
from ..models import CancelStatus, Purpose, ShiftState
from ..store.base import InboundLog, OutboxRow, ShiftRow, StaleState, StoreError
from . import machine
from .actorlog import (
    ANSWERED,
    LOG_EVENTS,
    has_writes,
    unlogged,
    with_outcome,
    without_reply,
)
from .context import ActorContext
from .machine import AnswerResult, FanoutResult, ReleaseResult, State, Transition, Unpublished
from .mailbox import ActorUnavailable, Answer, Cancel, Message, Release, StartFanout

log = get_logger(__name__)

__all__ = ["ShiftActor"]


class ShiftActor:
    """Serves one shift until it is closed (filled, unfilled or cancelled).

    `run()` returns when the shift is closed and its inbox drained (an actor that saw a
    shift with offers close first stays `LINGER` seconds for late answers), or when the
    inbox is closed. A message that reopens a closed shift (a release) keeps it running.
    It raises whatever a transition raised (the supervisor restarts it from the store). On
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
            # Most answers to a text sent to everyone come after the shift is filled: the
            # actor that closed it answers them from memory until then, instead of a fresh
            # actor reading the shift and the offer for each.
            linger_until = -math.inf
            while True:
                if not self._closed:
                    deadline = self._deadline()
                elif trio.current_time() < linger_until:
                    deadline = linger_until
                elif await self._wind_down():
                    return
                else:
                    continue  # a message waiting in the inbox reopened it (a release)
                message = None
                # Only the receive is timed, and no frame but this one's while asleep.
                with trio.move_on_at(deadline):
                    try:
                        message = await self._inbox.receive()
                    except trio.EndOfChannel:
                        # Stopping: deliveries still waiting for their turn stop too (their
                        # rows stay pending for the next start); sends under way finish.
                        nursery.cancel_scope.cancel()
                        return
                was_open = not self._closed
                with self._ctx.shutdown.bounded(trio.CancelScope(shield=True)):
                    if message is not None:
                        await self._handle_waiting(message)
                    elif was_open:
                        await self._on_deadline()
                if was_open and self._closed and self._state is not None and self._state.offers:
                    linger_until = trio.current_time() + LINGER

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
            if not has_writes(state, transition, inbound):
                if transition.state is not None:
                    self._state = transition.state
                return transition
            logged = with_outcome(inbound, transition)
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
                if persisted.codes:  # new offers: the codes the store gave them
                    offers = dict(new.offers)
                    for cg, code in persisted.codes.items():
                        offers[cg] = offers[cg].with_code(code)
                    new = replace(new, offers=offers)
                self._state = new.at_version(state.version + 1)
            self._send(persisted.rows, transition)
            if persisted.held:
                self._ctx.wake_sender()
            self._announce(transition)
            if logged is not None and logged.reply is not None and not persisted.replied:
                # The same answer went out before (its key was queued already).
                transition = replace(transition, answer=without_reply(transition.answer))
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
        self._deliver(self._send_offers_of(rows, transition))

    def _send_offers_of(
        self, rows: tuple[OutboxRow, ...], transition: Transition
    ) -> tuple[OutboxRow, ...]:
        """Stop the offer deliveries `transition` makes pointless (it withdrew every pending
        offer), start delivering the offers among `rows`; return the other rows."""
        if self._offer_sends and any(w.caregiver_id is None for w in transition.withdraw):
            for scope in self._offer_sends:
                scope.cancel()
            self._offer_sends = None
        if not rows:
            return ()
        assert self._nursery is not None
        offers = tuple(r for r in rows if r.purpose is Purpose.OFFER)
        if offers:
            self._nursery.start_soon(self._send_offers, offers)
        return tuple(r for r in rows if r.purpose is not Purpose.OFFER)

    def _deliver(self, rows: tuple[OutboxRow, ...]) -> None:
        """Deliver `rows` (no offers) as one batch in this actor's nursery."""
        if rows:
            assert self._nursery is not None
            self._nursery.start_soon(self._ctx.send_now, rows)

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
            emit = log.debug if kind in ANSWERED else log.info
            emit(LOG_EVENTS.get(kind, kind), shift_id=self.shift_id, **fields)
            if isinstance(kind, Unpublished):
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
            unlogged(answer, self.shift_id),
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
        if machine.needs_claimant(state, cg, answer.intent, now):
            facts = await store.claimant(shift.id, cg, rules.window(shift))
            if shift.state.in_progress:
                reached = await store.reached(shift.id)
        else:
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
            result = AnswerResult(result.outcome, None)
        if result is transition.answer:
            return transition
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
                (
                    state.version,
                    transition,
                    with_outcome(unlogged(answer, self.shift_id), transition),
                )
            )
            if transition.state is not None:
                state = transition.state.at_version(state.version + 1)
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
        # The burst's answers (the replies, "already filled") go out as one batch: one
        # commit marks them all `sending`, one records them.
        others: list[OutboxRow] = []
        for answer, (_, transition, logged), written in zip(burst, steps, persisted, strict=True):
            others.extend(self._send_offers_of(written.rows, transition))
            self._announce(transition)
            result = transition.answer
            if logged is not None and logged.reply is not None and not written.replied:
                result = without_reply(result)
            answer.reply.set(result)
        self._deliver(tuple(others))

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


_BURST = 64
"""At most this many waiting messages are taken at once."""
LINGER = 3600.0
"""Seconds a closed shift's actor that made offers stays to answer late replies itself
(with the usual reply delays, nearly all of them come within the hour); then it retires,
and a fresh actor answers from the store."""
