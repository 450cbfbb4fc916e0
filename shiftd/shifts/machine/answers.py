"""A caregiver's answer: who may take the shift, the claim, the reply."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from ...inbound.intent import Intent
from ...models import Channel, EventKind, Outcome, Purpose, ShiftState
from ...outbox import keys
from ...store.base import NewMessage, ShiftRow
from .facts import Claimant, Holding, Reached, Rules, State
from .notices import RETELL_AFTER
from .transition import AnswerResult, News, Record, Transition, Unpublished, Withdrawal


def overlapping(holdings: tuple[Holding, ...], shift: ShiftRow, rules: Rules) -> set[str]:
    """Who holds another filled shift within the travel buffer of `shift`."""
    start, end = rules.window(shift)
    return {
        h.caregiver_id
        for h in holdings
        if h.shift_id != shift.id and h.start < end and h.end > start
    }


def answer(
    state: State,
    now: datetime,
    caregiver_id: str,
    intent: Intent,
    channel: Channel,
    facts: Claimant,
    rules: Rules,
    reached: tuple[Reached, ...] = (),
) -> Transition:
    """A caregiver's ACCEPT or DECLINE. An eligible accept while offers are open fills the
    shift: pending offers withdrawn, a confirmation to her and "filled" to everyone else an
    offer reached (`reached`) who has not declined or given it back."""
    shift, cg, who = state.shift, caregiver_id, facts.caregiver
    messages = rules.org.messages_for(who.language if who is not None else None)
    to = who.phone if who is not None else None
    offer = state.offers.get(cg)
    if shift.state.in_progress:
        if intent is Intent.ACCEPT:
            reason = ineligible(state, cg, facts, rules)
            if reason is None:
                return _claim(state, now, cg, channel, facts, rules, reached)
            text = messages.not_eligible(shift, reason)
            return _reply(
                state,
                Outcome.NOT_ELIGIBLE,
                cg,
                to,
                Purpose.NOT_ELIGIBLE,
                text,
                reason,
                news=((Unpublished.CLAIM_NOT_ELIGIBLE, {"caregiver_id": cg, "reason": reason}),),
            )
        if offer is None:
            return Transition(None, AnswerResult(Outcome.NO_OPEN_OFFER, None))
        if offer.declined:
            return Transition(None, AnswerResult(Outcome.DECLINED, None))  # thanked already
        text = messages.declined(shift)
        thanks = NewMessage(
            keys.about_shift(Purpose.DECLINED, shift.id, cg, 0),
            cg,
            Channel.SMS,
            Purpose.DECLINED,
            text,
            shift.id,
            to,
        )
        return Transition(
            state.with_offer(cg, offer.as_declined()),
            AnswerResult(Outcome.DECLINED, text),
            messages=(thanks,),
            declined=cg,
            withdraw=(Withdrawal(cg),),
            records=(Record(EventKind.DECLINED, cg),),
            news=((EventKind.DECLINED, {"caregiver_id": cg}),),
        )
    if shift.state is ShiftState.FILLED:
        if shift.claimed_by == cg:  # confirmed once already: nothing more is sent
            return Transition(None, AnswerResult(Outcome.CLAIMED, None))
        if intent is Intent.DECLINE:
            return Transition(None, AnswerResult(Outcome.ALREADY_FILLED, None))
        told = facts.told_filled_at
        if cg in state.told_filled and shift.claimed_at is not None:
            told = max(told or shift.claimed_at, shift.claimed_at)
        if told is not None and now - told < RETELL_AFTER:
            return Transition(None, AnswerResult(Outcome.ALREADY_FILLED, None))
        text = messages.already_filled(shift)
        return _reply(
            state,
            Outcome.ALREADY_FILLED,
            cg,
            to,
            Purpose.ALREADY_FILLED,
            text,
            news=((Unpublished.CLAIM_TOO_LATE, {"caregiver_id": cg}),),
        )
    closed = shift.state in (ShiftState.CANCELLED, ShiftState.UNFILLED)
    if closed and offer is not None:
        text = messages.no_longer_available(shift)
        return _reply(state, Outcome.NO_OPEN_OFFER, cg, to, Purpose.CANCELLED, text)
    return Transition(None, AnswerResult(Outcome.NO_OPEN_OFFER, None))


def needs_claimant(state: State, cg: str, intent: Intent, now: datetime) -> bool:
    """Whether `answer` needs the `Claimant` facts read afresh for `cg`'s answer; if not, her
    roster row as her text came in is all it reads. A decline, or an answer to a shift
    that is no longer offered, needs only her words' language; an accept to the shift she
    holds, or to a shift this run's claim told her is filled, too little while ago to be
    told again, is answered without a reply."""
    shift = state.shift
    if intent is not Intent.ACCEPT:
        return False
    if shift.state.in_progress:
        return True
    if shift.state is not ShiftState.FILLED:
        return False
    if shift.claimed_by == cg:
        return False
    claimed_at = shift.claimed_at
    told_lately = (
        cg in state.told_filled and claimed_at is not None and now - claimed_at < RETELL_AFTER
    )
    return not told_lately


def ineligible(state: State, cg: str, facts: Claimant, rules: Rules) -> str | None:
    """Why `cg` may not take the shift (not offered it or gave it back, no longer has the
    role, holds an overlapping shift, travel buffer included; deactivated), or None."""
    offer = state.offers.get(cg)
    if offer is None or offer.released:
        return "not_offered"
    caregiver = facts.caregiver
    if caregiver is None or caregiver.role != state.shift.role_required:
        return "role"
    if not caregiver.active:  # deactivated since the offer: it lapsed with her
        return "not_offered"
    if cg in overlapping(facts.holdings, state.shift, rules):
        return "overlap"
    return None


def _claim(
    state: State,
    now: datetime,
    cg: str,
    channel: Channel,
    facts: Claimant,
    rules: Rules,
    reached: tuple[Reached, ...],
) -> Transition:
    shift, org = state.shift, rules.org
    assert facts.caregiver is not None
    confirm = org.messages_for(facts.caregiver.language).confirm(shift)
    filled = replace(shift, state=ShiftState.FILLED, claimed_by=cg, claimed_at=now)
    told = [
        r
        for r in reached
        if r.caregiver_id != cg
        and (o := state.offers.get(r.caregiver_id)) is not None
        and not o.declined
        and not o.released
    ]
    filled_in: dict[str | None, str] = {}  # one rendering per language
    for r in told:
        if r.language not in filled_in:
            filled_in[r.language] = org.messages_for(r.language).filled(shift)
    messages = [
        NewMessage(
            keys.about_shift(Purpose.CONFIRM, shift.id, cg, shift.generation),
            cg,
            Channel.SMS,
            Purpose.CONFIRM,
            confirm,
            shift.id,
            facts.caregiver.phone,
        )
    ] + [
        NewMessage(
            keys.about_shift(Purpose.FILLED, shift.id, r.caregiver_id, shift.generation),
            r.caregiver_id,
            Channel.SMS,
            Purpose.FILLED,
            filled_in[r.language],
            shift.id,
            r.phone,
        )
        for r in told
    ]
    started = shift.fanout_started_at
    told_filled = frozenset(r.caregiver_id for r in told)
    return Transition(
        replace(state, shift=filled, told_filled=told_filled),
        AnswerResult(Outcome.CLAIMED, confirm),
        messages=tuple(messages),
        withdraw=(Withdrawal(),),
        records=(Record(EventKind.CLAIMED, cg, {"told_filled": len(told)}, withdrawn=True),),
        news=(
            (
                EventKind.CLAIMED,
                {
                    "caregiver_id": cg,
                    "channel": str(channel),
                    "time_to_fill_s": (
                        round((now - started).total_seconds(), 6) if started else None
                    ),
                },
            ),
        ),
        free_of_overlap=(cg, *rules.window(shift)),
    )


def _reply(
    state: State,
    outcome: Outcome,
    cg: str,
    to: str | None,
    purpose: Purpose,
    text: str,
    per: str = "",
    news: tuple[News, ...] = (),
) -> Transition:
    """An answer that changes nothing. Keyed per shift and caregiver: however often they
    write, one such answer goes out."""
    generation = state.shift.generation
    key = keys.answer(purpose, state.shift.id, cg, generation, per)
    message = NewMessage(key, cg, Channel.SMS, purpose, text, state.shift.id, to)
    return Transition(None, AnswerResult(outcome, text, message), news=news)
