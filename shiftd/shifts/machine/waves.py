"""Waves: a fanout's start, the waves due, who each reaches, the deadlines, offers closing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from ...clock import iso
from ...models import Channel, EventKind, FanoutStatus, ShiftState
from ...outbox import keys
from ...store.base import ShiftRow
from ..policy import Wave
from .answers import overlapping
from .facts import Candidates, Offer, Rules, State, count_free, tagged
from .notices import coordinator_messages, notices_pending, notify
from .transition import Contact, FanoutResult, News, Record, Transition, Withdrawal, chain

_FANOUT_STATUS = {
    ShiftState.OFFERING: FanoutStatus.ALREADY_RUNNING,
    ShiftState.ESCALATED: FanoutStatus.ALREADY_RUNNING,
    ShiftState.FILLED: FanoutStatus.ALREADY_FILLED,
    ShiftState.CANCELLED: FanoutStatus.CANCELLED,
    ShiftState.UNFILLED: FanoutStatus.UNFILLED,
}
"""Someone who accepts within this long of being told "filled" is not told again."""


def start_fanout(
    state: State, now: datetime, facts: Candidates, rules: Rules, jitter: float = 0.0
) -> Transition:
    """open → offering with the organization's plan, and the waves due now run with it."""
    shift, org = state.shift, rules.org
    if shift.state is not ShiftState.OPEN:
        answer = FanoutResult(
            _FANOUT_STATUS[shift.state], len(state.offers), iso(shift.escalate_at)
        )
        return Transition(None, answer)
    expires_at = shift.start_time - org.offer_lead_time
    if now >= expires_at:
        return Transition(None, FanoutResult(FanoutStatus.TOO_LATE, 0, None))
    busy = overlapping(facts.holdings, shift, rules)
    candidates = count_free(facts.caregivers, busy)
    if not candidates:
        return Transition(None, FanoutResult(FanoutStatus.NO_CANDIDATES, 0, None))
    started = replace(
        shift,
        state=ShiftState.OFFERING,
        fanout_started_at=now,
        escalate_at=now + org.waves[0].offset,
        expires_at=expires_at,
        plan=org.plan,
        next_step=0,
    )
    opening = Transition(
        replace(state, shift=started),
        records=(
            Record(
                EventKind.FANOUT_STARTED,
                detail={"candidates": candidates, "expires_at": iso(expires_at)},
            ),
        ),
    )
    assert opening.state is not None
    done = chain(opening, run_due_waves(opening.state, now, facts, rules, jitter))
    assert done.state is not None
    shift = done.state.shift
    offered = len(done.state.offers)
    news = (
        (EventKind.FANOUT_STARTED, {"offered": offered, "escalate_at": iso(shift.escalate_at)}),
    )
    result = FanoutResult(FanoutStatus.STARTED, offered, iso(shift.escalate_at))
    return replace(done, answer=result, news=done.news + news)


def next_deadline(
    shift: ShiftRow, rules: Rules, told: frozenset[tuple[str, int]] = frozenset()
) -> datetime | None:
    """When the shift next needs its actor without a message: offers close, the next wave,
    a coordinator notice not yet `told`. None when nothing is due (closed, or nothing
    left). Asked after every step of 100,000 sleeping actors: it allocates nothing."""
    if not shift.state.in_progress:
        return None
    due = shift.expires_at
    if shift.escalate_at is not None and shift.next_step < len(rules.waves(shift)):
        due = shift.escalate_at if due is None else min(due, shift.escalate_at)
    if rules.org.coordinator is not None:
        for _, at in notices_pending(shift, told, rules):
            due = at if due is None else min(due, at)
    return due


def deadline_passed(
    state: State, now: datetime, facts: Candidates, rules: Rules, jitter: float = 0.0
) -> Transition:
    """Whatever fell due by `now`: offers close (unfilled), or the notices and waves due run."""
    shift = state.shift
    if not shift.state.in_progress:
        return Transition(None)
    if shift.expires_at is not None and now >= shift.expires_at:
        return expire(state, now, rules)
    step = Transition(state)
    for notice, at in notices_pending(state.shift, state.told, rules):
        if at <= now:
            assert step.state is not None
            step = chain(step, notify(step.state, now, notice, rules))
    assert step.state is not None
    return chain(step, run_due_waves(step.state, now, facts, rules, jitter))


def run_due_waves(
    state: State, now: datetime, facts: Candidates, rules: Rules, jitter: float = 0.0
) -> Transition:
    """Run every wave that is due (in order), unless quiet hours hold the next one back."""
    step = Transition(state)
    while True:
        current = step.state
        assert current is not None
        shift = current.shift
        waves = rules.waves(shift)
        index, due = shift.next_step, shift.escalate_at
        if not shift.state.in_progress or index >= len(waves) or due is None or due > now:
            return step
        wave = waves[index]
        quiet = rules.org.quiet_hours
        until = quiet.hold_until(wave.channel, now, shift.start_time) if quiet else None
        if until is not None:
            held = replace(current, shift=replace(shift, escalate_at=until))
            return chain(
                step,
                Transition(
                    held,
                    records=(
                        Record(EventKind.WAVE_HELD, detail={"step": index, "until": iso(until)}),
                    ),
                    news=((EventKind.WAVE_HELD, {"step": index, "until": iso(until)}),),
                ),
            )
        step = chain(step, _run_wave(current, now, wave, facts, rules, jitter))


def _run_wave(
    state: State, now: datetime, wave: Wave, facts: Candidates, rules: Rules, jitter: float
) -> Transition:
    """One wave: a message on its channel to each caregiver in its audience (an offer with
    a fresh code for anyone who has none yet); the next wave scheduled; the first call
    moves the shift to `escalated`."""
    shift, org = state.shift, rules.org
    busy = overlapping(facts.holdings, shift, rules)
    reachable = wave.channel is Channel.SMS or not org.voice_after_opt_out
    tail = keys.offer_tail(wave.channel, shift.generation, wave.key_suffix)
    reached = frozenset({tail})  # every new offer's
    offers = dict(state.offers)
    contacts = []
    newly = 0
    # One renderer per language and first-text flag: most caregivers share a reply code,
    # and each distinct text is rendered (and fitted to one segment) once.
    renderers: dict[tuple[str | None, bool], Callable[[int], str]] = {}
    for c in tagged(facts.caregivers, wave.tags):
        offer = offers.get(c.id)
        if offer is not None and (offer.declined or offer.released):
            continue
        if c.id in busy or (reachable and c.phone in facts.opted_out):
            continue
        if wave.audience == "offered" and offer is None:
            continue
        if offer is not None and tail in offer.reached:
            continue  # a first round never reaches her twice on a channel
        first = wave.channel is Channel.SMS and c.phone not in facts.texted
        render = renderers.get((c.language, first))
        if render is None:
            messages = org.messages_for(c.language)
            if wave.channel is Channel.SMS:
                render = _OfferText(messages.offer_sms, shift, first, {})
            else:
                render = _VoiceText(messages.offer_voice(shift))
            renderers[(c.language, first)] = render
        key = keys.offer_with_tail(shift.id, c.id, tail)
        code = offer.code if offer is not None else None
        contacts.append(
            Contact(
                c.id,
                c.phone,
                wave.channel,
                key,
                code,
                render,
                first,
                reachable,
            )
        )
        if offer is None:
            newly += 1
            offers[c.id] = Offer(0, reached=reached)
        else:
            offers[c.id] = replace(offer, reached=offer.reached | {tail})
    contacted = len(contacts)
    escalating = wave.channel is Channel.VOICE and contacted > 0
    waves = rules.waves(shift)
    due = shift.escalate_at
    assert due is not None
    next_at = _next_due(waves, shift.next_step, due, jitter)
    after = replace(
        shift,
        next_step=shift.next_step + 1,
        escalate_at=next_at if next_at is not None else shift.escalate_at,
        state=ShiftState.ESCALATED if escalating else shift.state,
    )
    detail = {**wave.describe(), "contacted": contacted, "newly_offered": newly}
    if wave.channel is Channel.VOICE and contacted:
        news: tuple[News, ...] = ((EventKind.ESCALATED, {"calls": contacted}),)
    elif shift.next_step > 0:
        news = ((EventKind.WAVE, {**wave.describe(), "contacted": contacted}),)
    else:
        news = ()
    return Transition(
        replace(state, shift=after, offers=offers),
        contacts=tuple(contacts),
        records=(Record(EventKind.ESCALATED if escalating else EventKind.WAVE, detail=detail),),
        news=news,
    )


@dataclass(frozen=True, slots=True)
class _OfferText:
    """Renders an offer text once its code is known (each code once)."""

    render: Callable[..., str]
    shift: ShiftRow
    first: bool
    done: dict[int, str]

    def __call__(self, code: int) -> str:
        text = self.done.get(code)
        if text is None:
            text = self.done[code] = self.render(self.shift, code, first=self.first)
        return text


@dataclass(frozen=True, slots=True)
class _VoiceText:
    text: str

    def __call__(self, code: int) -> str:
        return self.text


def _next_due(waves: tuple[Wave, ...], step: int, due: datetime, jitter: float) -> datetime | None:
    """When the wave after `step` is due: as far after this one's due time as the plan
    spaces them (a held wave delays those after it). The first timed wave after an
    immediate one gets `jitter` seconds more, so shifts started together do not all fire
    at once."""
    if step + 1 >= len(waves):
        return None
    gap = waves[step + 1].offset - waves[step].offset
    if waves[step].offset == timedelta(0) and gap > timedelta(0):
        gap += timedelta(seconds=jitter)
    return due + gap


def expire(state: State, now: datetime, rules: Rules) -> Transition:
    """Offers close unfilled: pending offers withdrawn, the coordinator told."""
    shift = state.shift
    if not shift.state.in_progress:
        return Transition(None)
    contacted = len(state.offers)
    told = coordinator_messages(shift, contacted, "unfilled", rules)
    return Transition(
        replace(state, shift=replace(shift, state=ShiftState.UNFILLED)),
        messages=told,
        withdraw=(Withdrawal(),),
        records=(
            Record(
                EventKind.UNFILLED,
                detail={"contacted": contacted, "coordinator_told": len(told)},
                withdrawn=True,
            ),
        ),
        news=((EventKind.UNFILLED, {}),),
    )
