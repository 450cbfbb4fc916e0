"""A shift given back: cancelled by a coordinator, or released by its holder."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from ...models import CancelStatus, Channel, EventKind, Purpose, ReleaseStatus, ShiftState
from ...outbox import keys
from ...store.base import NewMessage, ShiftRow
from .facts import Candidates, Offer, Rules, State
from .notices import coordinator_messages
from .transition import News, Record, ReleaseResult, Transition, Withdrawal, chain
from .waves import run_due_waves


def cancel(state: State, now: datetime, rules: Rules, holder_language: str | None) -> Transition:
    """Any state but cancelled or unfilled → cancelled; every pending message withdrawn, the
    holder (if any) told."""
    shift = state.shift
    if shift.state is ShiftState.CANCELLED:
        return Transition(None, CancelStatus.ALREADY_CANCELLED)
    if shift.state is ShiftState.UNFILLED:
        return Transition(None, CancelStatus.UNFILLED)
    holder = shift.claimed_by
    messages: tuple[NewMessage, ...] = ()
    if holder is not None:
        text = rules.org.messages_for(holder_language).shift_cancelled(shift)
        messages = (_holder_message(shift, holder, Purpose.SHIFT_CANCELLED, text),)
    return Transition(
        replace(state, shift=replace(shift, state=ShiftState.CANCELLED)),
        CancelStatus.CANCELLED,
        messages=messages,
        withdraw=(Withdrawal(None, None),),
        records=(
            Record(EventKind.CANCELLED, detail={"holder_told": holder is not None}, withdrawn=True),
        ),
        news=((EventKind.CANCELLED, {"holder": holder}),),
    )


def release(
    state: State,
    now: datetime,
    by_caregiver: str | None,
    rules: Rules,
    holder_language: str | None,
    facts: Candidates,
    jitter: float = 0.0,
) -> Transition:
    """The holder drops out (`by_caregiver`: only the holder may) or a coordinator unassigns
    the shift: it reopens with its plan's first wave (without her: she is never offered it
    again), or closes unfilled if offers have closed. She is told, and so is the
    coordinator (unfilled; or, when she dropped it herself, that she did)."""
    shift, org = state.shift, rules.org
    if shift.state is not ShiftState.FILLED:
        return Transition(None, ReleaseResult(ReleaseStatus.NOT_CLAIMED, None))
    holder = shift.claimed_by
    assert holder is not None
    if by_caregiver is not None and by_caregiver != holder:
        return Transition(None, ReleaseResult(ReleaseStatus.NOT_HOLDER, None))
    by = "caregiver" if by_caregiver is not None else "coordinator"
    messages = org.messages_for(holder_language)
    text = messages.released(shift) if by == "caregiver" else messages.unassigned(shift)
    open_until = shift.expires_at or shift.start_time - org.offer_lead_time
    reopen_at = now + rules.waves(shift)[0].offset if now < open_until else None
    offer = state.offers.get(holder) or Offer(0)
    offers = {**state.offers, holder: replace(offer, released=True)}
    told: tuple[NewMessage, ...] = (_holder_message(shift, holder, Purpose.RELEASED, text),)
    records = [Record(EventKind.RELEASED, holder, {"by": by, "reopened": reopen_at is not None})]
    news: list[News] = [
        (EventKind.RELEASED, {"caregiver_id": holder, "by": by, "reopened": reopen_at is not None})
    ]
    contacted = len(state.offers)
    if reopen_at is None:
        after = replace(shift, state=ShiftState.UNFILLED, claimed_by=None, claimed_at=None)
        unfilled = coordinator_messages(after, contacted, "unfilled", rules)
        told += unfilled
        records.append(
            Record(
                EventKind.UNFILLED,
                detail={"contacted": contacted, "withdrawn": 0, "coordinator_told": len(unfilled)},
            )
        )
        news.append((EventKind.UNFILLED, {}))
        return Transition(
            replace(state, shift=after, offers=offers),
            ReleaseResult(ReleaseStatus.RELEASED_UNFILLED, text),
            messages=told,
            released=holder,
            withdraw=(Withdrawal(holder, None),),
            records=tuple(records),
            news=tuple(news),
        )
    after = replace(
        shift,
        state=ShiftState.OFFERING,
        claimed_by=None,
        claimed_at=None,
        next_step=0,
        generation=shift.generation + 1,
        escalate_at=reopen_at,
    )
    if by == "caregiver":
        dropped = coordinator_messages(shift, contacted, "released", rules)
        if dropped:
            told += dropped
            records.append(Record(EventKind.COORDINATOR_TOLD, detail={"notice": Purpose.RELEASED}))
    reopened = Transition(
        replace(state, shift=after, offers=offers),
        ReleaseResult(ReleaseStatus.RELEASED, text),
        messages=told,
        released=holder,
        withdraw=(Withdrawal(holder, None),),
        records=tuple(records),
        news=tuple(news),
    )
    assert reopened.state is not None
    waves = run_due_waves(reopened.state, now, facts, rules, jitter)
    return chain(reopened, waves)


def _holder_message(shift: ShiftRow, holder: str, purpose: Purpose, text: str) -> NewMessage:
    key = keys.to_holder(purpose, shift.id, holder, shift.generation)
    return NewMessage(key, holder, Channel.SMS, purpose, text, shift.id)
