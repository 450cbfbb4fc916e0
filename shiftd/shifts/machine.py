"""A shift's rules as pure transitions: `(state, event, now, facts) → Transition`.

No Trio, no SQL, no clock of its own. The shift's actor keeps a `State` in memory, reads the
facts an event needs from the store (one named query each: `Candidates` for a wave,
`Claimant` for an accept, `reached` for who hears "filled"), asks a function here, and
persists the `Transition` it gets back in one transaction. Every rule about a shift is
decided here: who a wave reaches, who may take the shift (role, overlap with the travel
buffer, released, deactivated), who is told it is filled, what is withdrawn, when the next
wave is due, what the coordinator hears and when.

Life of a shift: open → offering (waves of offers, see `shiftd.shifts.policy`) → escalated (once a
wave has called) → filled by the first eligible accept, or unfilled when offers close, or
cancelled by a coordinator. A filled shift reopens when its holder releases it (or a
coordinator unassigns it): the plan starts again from its first wave, without the releaser.
A transition from a closed state changes nothing but may answer (a late accept is told the
shift is filled).

Reply codes are the one thing a transition does not choose: like row ids, the store
allocates them when it writes an offer, so an offer text is rendered from its code then
(`Contact.render`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from ..clock import iso, local_iso
from ..inbound.intent import Intent
from ..models import (
    CancelStatus,
    Channel,
    FanoutStatus,
    Outcome,
    Purpose,
    ReleaseStatus,
    ShiftState,
)
from ..outbox import keys
from ..store.base import CaregiverRow, NewMessage, ShiftRow
from .organizations import Organization
from .policy import Wave, load_plan

# ---- state and facts -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Offer:
    """One caregiver's offer of the shift, as far as the rules care."""

    code: int
    declined: bool = False
    released: bool = False
    """She gave the shift back: never offered it again."""
    reached: frozenset[str] = frozenset()
    """Tails of the offer messages queued to her (`sms`, `voice:g1`, `voice:s1r1`…): a
    first round never reaches her twice on a channel."""


@dataclass(frozen=True, slots=True)
class State:
    """What an actor knows of its shift. `version` guards every write: the store refuses a
    transition made from a state that is no longer the stored one."""

    shift: ShiftRow
    offers: Mapping[str, Offer]
    version: int
    told: frozenset[tuple[str, int]] = frozenset()
    """Coordinator notices sent (or found sent) this run, as (notice, generation)."""
    told_filled: frozenset[str] = frozenset()
    """Who the claim (this run) told the shift is filled: a late accept from one of them
    soon after is not answered again (`Claimant.told_filled_at` says it after a restart)."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """One caregiver with the shift's role, as a wave sees her."""

    id: str
    phone: str
    tags: tuple[str, ...]
    language: str | None


@dataclass(frozen=True, slots=True)
class Holding:
    """A filled shift someone holds: what the overlap rule is decided from."""

    shift_id: str
    caregiver_id: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Candidates:
    """The facts a wave (or a fanout's start) needs: the active caregivers with the role,
    and the filled shifts overlapping the shift's window (`Rules.window`)."""

    caregivers: tuple[Candidate, ...]
    holdings: tuple[Holding, ...] = ()
    opted_out: Container[str] = frozenset()
    """The phones that opted out of texts (STOP)."""
    texted: Container[str] = frozenset()
    """The phones an offer was texted to before (the first one says how to opt out)."""


@dataclass(frozen=True, slots=True)
class Claimant:
    """The facts an answer needs about the caregiver who sent it: her roster row (None if
    she is gone), the filled shifts of hers overlapping the window, and when she was last
    told this shift is filled (None: never)."""

    caregiver: CaregiverRow | None
    holdings: tuple[Holding, ...] = ()
    told_filled_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Reached:
    """A caregiver an offer of this generation reached (handed to the provider)."""

    caregiver_id: str
    language: str | None


@dataclass(frozen=True, slots=True)
class Rules:
    """What the rules depend on besides the state: the shift's organization and the
    engine-wide settings."""

    org: Organization
    call_gap: timedelta = timedelta(0)
    public_url: str | None = None

    def waves(self, shift: ShiftRow) -> tuple[Wave, ...]:
        # A fanout follows the plan it started with, whatever the configuration says now.
        return load_plan(shift.plan) if shift.plan else self.org.waves

    def window(self, shift: ShiftRow) -> tuple[datetime, datetime]:
        """The span another shift of the same caregiver may not overlap (travel included)."""
        buffer = self.org.travel_buffer
        return shift.start_time - buffer, shift.end_time + buffer


def overlapping(holdings: tuple[Holding, ...], shift: ShiftRow, rules: Rules) -> set[str]:
    """Who holds another filled shift within the travel buffer of `shift`."""
    start, end = rules.window(shift)
    return {
        h.caregiver_id
        for h in holdings
        if h.shift_id != shift.id and h.start < end and h.end > start
    }


# ---- what a transition produces --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Contact:
    """A wave's message to one caregiver. A new offer (`code` None) gets its reply code from
    the store, which then renders the text with it (`render(code)`)."""

    caregiver_id: str
    phone: str
    channel: Channel
    key: str
    code: int | None
    render: Callable[[int], str]
    first_text: bool = False
    opted_in: bool = True
    """Decided on the phone not having opted out (a text; a call unless the policy calls
    opted-out phones): the store refuses the write if it has by then."""


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """Pending messages of the shift to withdraw: to `caregiver_id` (None: anyone), of
    `purpose` (None: any)."""

    caregiver_id: str | None = None
    purpose: Purpose | None = Purpose.OFFER


@dataclass(frozen=True, slots=True)
class Record:
    """A timeline event. `if_queued`: recorded only if the transition queued a message (a
    coordinator notice repeated after a restart is neither sent nor recorded twice).
    `withdrawn`: its detail gets how many pending messages the transition withdrew."""

    kind: str
    caregiver_id: str | None = None
    detail: Mapping[str, Any] | None = None
    if_queued: bool = False
    withdrawn: bool = False


@dataclass(frozen=True, slots=True)
class Transition:
    """What one event does: the new state, what to write, what to answer, what to announce.

    `state` is None when the event changes nothing stored (an answer that changes nothing
    may still queue its `messages`)."""

    state: State | None
    answer: Any = None
    messages: tuple[NewMessage, ...] = ()
    contacts: tuple[Contact, ...] = ()
    declined: str | None = None
    released: str | None = None
    withdraw: tuple[Withdrawal, ...] = ()
    records: tuple[Record, ...] = ()
    news: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    """Announcements for the event bus (and the log), made once the transition is stored."""
    free_of_overlap: tuple[str, datetime, datetime] | None = None
    """(caregiver, start, end): the store refuses the write if she holds a filled shift
    overlapping it by then (two claims for overlapping shifts in the same instant)."""

    @property
    def changes(self) -> bool:
        return self.state is not None


@dataclass(frozen=True, slots=True)
class FanoutResult:
    status: FanoutStatus
    offered: int
    escalate_at: str | None


@dataclass(frozen=True, slots=True)
class AnswerResult:
    """`message`, if set, is an answer that changes nothing (e.g. "already filled"): the
    actor queues it unless the reply-loop guard says no."""

    outcome: Outcome
    reply: str | None
    message: NewMessage | None = None


@dataclass(frozen=True, slots=True)
class ReleaseResult:
    status: ReleaseStatus
    reply: str | None


# ---- transitions -----------------------------------------------------------------------

_FANOUT_STATUS = {
    ShiftState.OFFERING: FanoutStatus.ALREADY_RUNNING,
    ShiftState.ESCALATED: FanoutStatus.ALREADY_RUNNING,
    ShiftState.FILLED: FanoutStatus.ALREADY_FILLED,
    ShiftState.CANCELLED: FanoutStatus.CANCELLED,
    ShiftState.UNFILLED: FanoutStatus.UNFILLED,
}
_NOTICE_PURPOSES = {
    "unfilled": Purpose.UNFILLED,
    "no_accept": Purpose.NO_ACCEPT,
    "closing": Purpose.CLOSING,
    "released": Purpose.HOLDER_DROPPED,
}
RETELL_AFTER = timedelta(minutes=10)
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
    candidates = sum(1 for c in facts.caregivers if c.id not in busy)
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
                "fanout_started", detail={"candidates": candidates, "expires_at": iso(expires_at)}
            ),
        ),
    )
    assert opening.state is not None
    done = _chain(opening, run_due_waves(opening.state, now, facts, rules, jitter))
    assert done.state is not None
    shift = done.state.shift
    offered = len(done.state.offers)
    news = (("fanout_started", {"offered": offered, "escalate_at": iso(shift.escalate_at)}),)
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


def notices_pending(
    shift: ShiftRow, told: frozenset[tuple[str, int]], rules: Rules
) -> list[tuple[str, datetime]]:
    """The coordinator's timed notices not yet `told`, with when each is due: nobody has
    accepted `no_accept_after` into the first fanout; offers close in `warn_before_close`."""
    coordinator = rules.org.coordinator
    if coordinator is None:
        return []
    due = []
    started = shift.fanout_started_at
    if coordinator.no_accept_after is not None and started is not None and not shift.generation:
        due.append(("no_accept", started + coordinator.no_accept_after))
    if coordinator.warn_before_close is not None and shift.expires_at is not None:
        due.append(("closing", shift.expires_at - coordinator.warn_before_close))
    return [(n, at) for n, at in due if (n, shift.generation) not in told]


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
            step = _chain(step, notify(step.state, now, notice, rules))
    assert step.state is not None
    return _chain(step, run_due_waves(step.state, now, facts, rules, jitter))


def notify(state: State, now: datetime, notice: str, rules: Rules) -> Transition:
    """A timed coordinator notice (no_accept, closing)."""
    shift = state.shift
    told = replace(state, told=state.told | {(notice, shift.generation)})
    messages = coordinator_messages(shift, len(state.offers), notice, rules)
    if not messages:
        return Transition(told)
    return Transition(
        told,
        messages=messages,
        records=(Record("coordinator_told", detail={"notice": notice}, if_queued=True),),
        news=(("coordinator_told", {"notice": notice}),),
    )


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
            return _chain(
                step,
                Transition(
                    held,
                    records=(Record("wave_held", detail={"step": index, "until": iso(until)}),),
                    news=(("wave_held", {"step": index, "until": iso(until)}),),
                ),
            )
        step = _chain(step, _run_wave(current, now, wave, facts, rules, jitter))


def _run_wave(
    state: State, now: datetime, wave: Wave, facts: Candidates, rules: Rules, jitter: float
) -> Transition:
    """One wave: a message on its channel to each caregiver in its audience (an offer with
    a fresh code for anyone who has none yet); the next wave scheduled; the first call
    moves the shift to `escalated`."""
    shift, org = state.shift, rules.org
    busy = overlapping(facts.holdings, shift, rules)
    wanted = set(wave.tags)
    reachable = wave.channel is Channel.SMS or not org.voice_after_opt_out
    tail = keys.offer_tail(wave.channel, shift.generation, wave.key_suffix)
    offers = dict(state.offers)
    contacts = []
    newly = 0
    # One renderer per language and first-text flag: most caregivers share a reply code,
    # and each distinct text is rendered (and fitted to one segment) once.
    renderers: dict[tuple[str | None, bool], Callable[[int], str]] = {}
    for c in facts.caregivers:
        offer = offers.get(c.id)
        if offer is not None and (offer.declined or offer.released):
            continue
        if c.id in busy or (reachable and c.phone in facts.opted_out):
            continue
        if wave.audience == "offered" and offer is None:
            continue
        if wanted and wanted.isdisjoint(c.tags):
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
        key = keys.offer(shift.id, c.id, wave.channel, shift.generation, wave.key_suffix)
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
            offers[c.id] = Offer(0, reached=frozenset({tail}))
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
        news: tuple[tuple[str, Mapping[str, Any]], ...] = (("escalated", {"calls": contacted}),)
    elif shift.next_step > 0:
        news = (("wave", {**wave.describe(), "contacted": contacted}),)
    else:
        news = ()
    return Transition(
        replace(state, shift=after, offers=offers),
        contacts=tuple(contacts),
        records=(Record("escalated" if escalating else "wave", detail=detail),),
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
                "unfilled",
                detail={"contacted": contacted, "coordinator_told": len(told)},
                withdrawn=True,
            ),
        ),
        news=(("unfilled", {}),),
    )


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
    shift, cg = state.shift, caregiver_id
    messages = rules.org.messages_for(facts.caregiver.language if facts.caregiver else None)
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
                Purpose.NOT_ELIGIBLE,
                text,
                reason,
                news=(("claim_not_eligible", {"caregiver_id": cg, "reason": reason}),),
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
        )
        offers = {**state.offers, cg: replace(offer, declined=True)}
        return Transition(
            replace(state, offers=offers),
            AnswerResult(Outcome.DECLINED, text),
            messages=(thanks,),
            declined=cg,
            withdraw=(Withdrawal(cg),),
            records=(Record("declined", cg),),
            news=(("declined", {"caregiver_id": cg}),),
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
            Purpose.ALREADY_FILLED,
            text,
            news=(("claim_too_late", {"caregiver_id": cg}),),
        )
    closed = shift.state in (ShiftState.CANCELLED, ShiftState.UNFILLED)
    if closed and offer is not None:
        text = messages.no_longer_available(shift)
        return _reply(state, Outcome.NO_OPEN_OFFER, cg, Purpose.CANCELLED, text)
    return Transition(None, AnswerResult(Outcome.NO_OPEN_OFFER, None))


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
        )
    ] + [
        NewMessage(
            keys.about_shift(Purpose.FILLED, shift.id, r.caregiver_id, shift.generation),
            r.caregiver_id,
            Channel.SMS,
            Purpose.FILLED,
            filled_in[r.language],
            shift.id,
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
        records=(Record("claimed", cg, {"told_filled": len(told)}, withdrawn=True),),
        news=(
            (
                "claimed",
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
    purpose: Purpose,
    text: str,
    per: str = "",
    news: tuple[tuple[str, Mapping[str, Any]], ...] = (),
) -> Transition:
    """An answer that changes nothing. Keyed per shift and caregiver: however often they
    write, one such answer goes out."""
    generation = state.shift.generation
    key = keys.answer(purpose, state.shift.id, cg, generation, per)
    message = NewMessage(key, cg, Channel.SMS, purpose, text, state.shift.id)
    return Transition(None, AnswerResult(outcome, text, message), news=news)


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
        records=(Record("cancelled", detail={"holder_told": holder is not None}, withdrawn=True),),
        news=(("cancelled", {"holder": holder}),),
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
    records = [Record("released", holder, {"by": by, "reopened": reopen_at is not None})]
    news: list[tuple[str, Mapping[str, Any]]] = [
        ("released", {"caregiver_id": holder, "by": by, "reopened": reopen_at is not None})
    ]
    contacted = len(state.offers)
    if reopen_at is None:
        after = replace(shift, state=ShiftState.UNFILLED, claimed_by=None, claimed_at=None)
        unfilled = coordinator_messages(after, contacted, "unfilled", rules)
        told += unfilled
        records.append(
            Record(
                "unfilled",
                detail={"contacted": contacted, "withdrawn": 0, "coordinator_told": len(unfilled)},
            )
        )
        news.append(("unfilled", {}))
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
            records.append(Record("coordinator_told", detail={"notice": "released"}))
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
    return _chain(reopened, waves)


def _holder_message(shift: ShiftRow, holder: str, purpose: Purpose, text: str) -> NewMessage:
    key = keys.to_holder(purpose, shift.id, holder, shift.generation)
    return NewMessage(key, holder, Channel.SMS, purpose, text, shift.id)


def coordinator_messages(
    shift: ShiftRow, contacted: int, notice: str, rules: Rules
) -> tuple[NewMessage, ...]:
    """The coordinator's messages about `shift` (`notice`: unfilled, no_accept, closing,
    released): a text, a mail and/or a webhook, each with the shift's id, role, local
    start and a link to its page when `public_url` is set."""
    org = rules.org
    coordinator = org.coordinator
    if coordinator is None:
        return ()
    to = f"coordinator:{org.id}"
    key = functools.partial(keys.to_coordinator, notice, shift.id, shift.generation)
    purpose = _NOTICE_PURPOSES[notice]
    base = rules.public_url
    link = shift_link(base, shift.id) if base else None
    text = org.messages.coordinator(notice, shift, contacted, link)
    told = []
    if coordinator.phone is not None:
        told.append(
            NewMessage(
                key(Channel.SMS), to, Channel.SMS, purpose, text, shift.id, coordinator.phone
            )
        )
    if coordinator.email is not None:
        told.append(
            NewMessage(
                key(Channel.EMAIL), to, Channel.EMAIL, purpose, text, shift.id, coordinator.email
            )
        )
    if coordinator.webhook is not None:
        payload = {
            "event": f"shift.{notice}",
            "shift_id": shift.id,
            "organization_id": shift.organization_id,
            "role": shift.role_required,
            "start_time": iso(shift.start_time),
            "end_time": iso(shift.end_time),
            "start_local": local_iso(shift.start_time, org.tz),
            "location": shift.location,
            "contacted": contacted,
            "link": link,
        }
        told.append(
            NewMessage(
                key(Channel.WEBHOOK),
                to,
                Channel.WEBHOOK,
                purpose,
                json.dumps(payload),
                shift.id,
                coordinator.webhook,
            )
        )
    return tuple(told)


def shift_link(base: str, shift_id: str) -> str:
    """The address of a shift's page on the coordinator's board under `base`."""
    return f"{base.rstrip('/')}/board/shifts/{quote(shift_id, safe='')}"


def _chain(first: Transition, then: Transition) -> Transition:
    """`first`, then `then` (made from `first`'s state), as one transition."""
    return Transition(
        then.state if then.state is not None else first.state,
        then.answer if then.answer is not None else first.answer,
        messages=first.messages + then.messages,
        contacts=first.contacts + then.contacts,
        declined=then.declined or first.declined,
        released=then.released or first.released,
        withdraw=first.withdraw + then.withdraw,
        records=first.records + then.records,
        news=first.news + then.news,
        free_of_overlap=then.free_of_overlap or first.free_of_overlap,
    )
