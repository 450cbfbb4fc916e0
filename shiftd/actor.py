"""One actor per shift in progress: the only code that changes a shift.

The actor owns its shift's state and handles one message at a time, which is what makes
"the first ACCEPT wins" hold without locks. It sleeps until its next deadline (the policy's
next wave, or the moment offers close; both stored as UTC timestamps, so a restart does not
postpone them) with only the `receive()` inside the timeout; a message in hand is always
handled to the end. Each transition is committed to the store, together with the messages
it causes, before the actor acts on it.

Life of a shift: open → offering (waves of offers, see `shiftd.policy`) → escalated (once a
wave has called) → filled by the first eligible accept, or unfilled when offers close, or
cancelled by a coordinator. A filled shift reopens when its holder releases it (or a
coordinator unassigns it): the plan starts again from its first wave, without the releaser.
"""

from __future__ import annotations

import functools
import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import trio

from .clock import Clock, iso, local_iso
from .events import EventBus
from .intent import Intent
from .logs import get_logger
from .messages import Messages
from .models import (
    CancelStatus,
    Channel,
    FanoutStatus,
    Outcome,
    Purpose,
    ReleaseStatus,
    ShiftState,
)
from .organizations import Organization, Organizations
from .policy import Wave, load_plan
from .replyguard import ReplyGuard
from .store.base import NewMessage, ShiftRow, Store, WaveRun

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
    """`message`, if set, is an answer that changes nothing (e.g. "already filled"): the
    caller queues it with its record of the inbound text, in the same commit."""

    outcome: Outcome
    reply: str | None
    message: NewMessage | None = None


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


@dataclass(frozen=True, slots=True)
class ReleaseResult:
    status: ReleaseStatus
    reply: str | None


@dataclass(slots=True)
class Release:
    """The holder of a filled shift drops out (`caregiver_id` set: only the holder may), or
    a coordinator unassigns it (`caregiver_id` None)."""

    caregiver_id: str | None
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
    wake_sender: Callable[[], None]
    escalation_jitter: timedelta = timedelta(0)
    call_gap: timedelta = timedelta(0)
    """No phone is called twice within this gap (see `WaveRun.call_gap`)."""
    reply_guard: ReplyGuard = field(default_factory=ReplyGuard)
    events: EventBus = field(default_factory=EventBus)
    public_url: str | None = None
    """Base of the links to a shift's page in coordinators' notices (`http.public_url`)."""


class ShiftActor:
    """Serves one shift until it is closed (filled, unfilled or cancelled).

    `run()` returns when the shift is closed and its inbox drained, or when the inbox is
    closed. A message that reopens a closed shift (a release) keeps it running. It raises
    whatever a transition raised (the supervisor restarts it from the store). On
    cancellation it stops between messages.
    """

    # A hundred thousand of these may sleep at once: slots, and nothing made before it is
    # needed (offers, the bound logger).
    __slots__ = (
        "_ctx",
        "_inbox",
        "_offered",
        "_org",
        "_released",
        "_retire",
        "_shift",
        "_told",
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
        self._shift: ShiftRow | None = loaded
        self._org: Organization | None = None
        # Who was offered the shift, and who gave it back: read when first needed (most
        # actors sleep until their next wave and never need them).
        self._offered: set[str] | None = None
        self._released: frozenset[str] | set[str] = _NOBODY
        # The coordinator notices sent (or found sent) this run, as (notice, generation): a
        # restart tries them again, and the outbox key keeps that from sending twice.
        self._told: frozenset[tuple[str, int]] | set[tuple[str, int]] = frozenset()

    @property
    def _log(self) -> Any:
        return log.bind(shift_id=self.shift_id)

    async def run(self) -> None:
        await self._load()
        async with trio.open_nursery():
            while True:
                while not self._closed:
                    message = None
                    with trio.move_on_at(self._deadline()):
                        try:
                            message = await self._inbox.receive()
                        except trio.EndOfChannel:
                            return
                    with trio.CancelScope(shield=True):
                        if message is None:
                            await self._on_deadline()
                        else:
                            await self._handle(message)
                if await self._wind_down():
                    return

    @property
    def _closed(self) -> bool:
        return self._shift is None or self._shift.state.closed

    async def _load(self) -> None:
        shift = self._shift
        if shift is None:
            self._shift = shift = await self._ctx.store.shift(self.shift_id)
        if shift is not None:
            self._org = self._ctx.organizations.get(shift.organization_id)

    async def _offers(self) -> set[str]:
        """The caregivers offered this shift (read once, then kept up to date)."""
        if self._offered is None:
            offers = await self._ctx.store.offers_for_shift(self.shift_id)
            self._offered = {o.caregiver_id for o in offers}
            self._released = {o.caregiver_id for o in offers if o.released_at is not None}
        return self._offered

    async def _reload(self) -> ShiftRow:
        self._shift = await self._ctx.store.shift(self.shift_id)
        assert self._shift is not None, "shifts are never deleted"
        return self._shift

    @property
    def _waves(self) -> tuple[Wave, ...]:
        shift, org = self._shift, self._org
        assert shift is not None and org is not None
        # A fanout follows the plan it started with, whatever the configuration says now.
        return load_plan(shift.plan) if shift.plan else org.waves

    def _deadline(self) -> float:
        shift = self._shift
        if shift is None or not shift.state.in_progress:
            return math.inf
        due = [shift.expires_at] if shift.expires_at is not None else []
        if shift.escalate_at is not None and shift.next_step < len(self._waves):
            due.append(shift.escalate_at)
        due += [at for _, at in self._notices_pending(shift)]
        return self._ctx.clock.deadline(min(due)) if due else math.inf

    async def _on_deadline(self) -> None:
        shift = self._shift
        assert shift is not None
        now = self._ctx.clock.now()
        if shift.expires_at is not None and now >= shift.expires_at:
            await self._expire()
            return
        for notice, at in self._notices_pending(shift):
            if at <= now:
                await self._notice(shift, notice)
        await self._run_due_waves()

    def _notices_pending(self, shift: ShiftRow) -> list[tuple[str, datetime]]:
        """The coordinator's timed notices not yet sent, with when each is due: nobody has
        accepted `no_accept_after` into the first fanout; offers close in `warn_before_close`."""
        org = self._org
        coordinator = org.coordinator if org is not None else None
        if coordinator is None:
            return []
        due = []
        started = shift.fanout_started_at
        if coordinator.no_accept_after is not None and started is not None and not shift.generation:
            due.append(("no_accept", started + coordinator.no_accept_after))
        if coordinator.warn_before_close is not None and shift.expires_at is not None:
            due.append(("closing", shift.expires_at - coordinator.warn_before_close))
        return [(n, at) for n, at in due if (n, shift.generation) not in self._told]

    async def _notice(self, shift: ShiftRow, notice: str) -> None:
        ctx = self._ctx
        told = await ctx.store.tell_coordinator(
            self.shift_id,
            at=ctx.clock.now(),
            notice=notice,
            notify=lambda n: self._tell_coordinator(shift, n, notice),
        )
        self._told = {*self._told, (notice, shift.generation)}
        if told:
            ctx.wake_sender()
            self._log.info("coordinator.told", notice=notice)
            ctx.events.publish("coordinator_told", shift_id=self.shift_id, notice=notice)

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
            with trio.CancelScope(shield=True):
                await self._handle(message)
            if not self._closed:
                return False
        # Retiring and closing with no checkpoint since the last empty receive: nothing can
        # slip in between, and a sender blocked on this inbox now gets BrokenResourceError
        # and is routed to a fresh actor.
        self._retire()
        self._inbox.close()
        return True

    # ---- transitions -------------------------------------------------------------------

    async def _fanout(self) -> FanoutResult:
        if self._shift is None:
            raise LookupError(f"no shift {self.shift_id!r}")
        # A shift still open may have been edited since it was loaded (a roster import
        # changes open shifts): offer what is stored now, not the cached copy.
        shift = await self._reload()
        org = self._org = self._ctx.organizations.get(shift.organization_id)
        if shift.state is not ShiftState.OPEN:
            return FanoutResult(
                _FANOUT_STATUS[shift.state], len(await self._offers()), iso(shift.escalate_at)
            )
        ctx = self._ctx
        now = ctx.clock.now()
        expires_at = shift.start_time - org.offer_lead_time
        if now >= expires_at:
            return FanoutResult(FanoutStatus.TOO_LATE, 0, None)
        candidates = await ctx.store.start_fanout(
            self.shift_id,
            at=now,
            plan=org.plan,
            first_at=now + org.waves[0].offset,
            expires_at=expires_at,
            travel_buffer=org.travel_buffer,
        )
        if not candidates:
            return FanoutResult(FanoutStatus.NO_CANDIDATES, 0, None)
        await self._reload()
        await self._run_due_waves()
        shift = self._shift
        assert shift is not None
        offered = len(await self._offers())
        self._log.info("fanout.started", offered=offered, next_wave_at=iso(shift.escalate_at))
        ctx.events.publish(
            "fanout_started",
            shift_id=self.shift_id,
            offered=offered,
            escalate_at=iso(shift.escalate_at),
        )
        return FanoutResult(FanoutStatus.STARTED, offered, iso(shift.escalate_at))

    async def _run_due_waves(self) -> None:
        """Run every wave that is due (in order), unless quiet hours hold the next one back."""
        ctx, org = self._ctx, self._org
        assert org is not None
        waves = self._waves
        while True:
            shift = self._shift
            assert shift is not None
            now = ctx.clock.now()
            step = shift.next_step
            due = shift.escalate_at
            if not shift.state.in_progress or step >= len(waves) or due is None or due > now:
                return
            wave = waves[step]
            if org.quiet_hours is not None:
                until = org.quiet_hours.hold_until(wave.channel, now, shift.start_time)
                if until is not None:
                    await ctx.store.hold_wave(self.shift_id, step, until=until, at=now)
                    await self._reload()
                    self._log.info("wave.held", step=step, until=iso(until))
                    ctx.events.publish(
                        "wave_held", shift_id=self.shift_id, step=step, until=iso(until)
                    )
                    return
            result = await ctx.store.run_wave(
                self.shift_id,
                WaveRun(
                    step=step,
                    channel=wave.channel,
                    audience=wave.audience,
                    tags=wave.tags,
                    key_suffix=wave.key_suffix,
                    voice_body=org.messages.offer_voice(shift),
                    next_at=self._next_due(waves, step, due),
                    travel_buffer=org.travel_buffer,
                    voice_after_opt_out=org.voice_after_opt_out,
                    detail=wave.describe(),
                    call_gap=ctx.call_gap,
                ),
                at=now,
                render_offer=functools.partial(_offer_sms, org, shift),
                render_voice=functools.partial(_offer_voice, org, shift),
            )
            await self._reload()
            if result is None:
                return
            if self._offered is not None:
                self._offered.update(result.offered)
            ctx.wake_sender()
            self._log.info("wave.ran", step=step, channel=wave.channel, contacted=result.contacted)
            if wave.channel is Channel.VOICE and result.contacted:
                ctx.events.publish("escalated", shift_id=self.shift_id, calls=result.contacted)
            elif step > 0:
                ctx.events.publish(
                    "wave", shift_id=self.shift_id, **wave.describe(), contacted=result.contacted
                )

    def _next_due(self, waves: tuple[Wave, ...], step: int, due: datetime) -> datetime | None:
        """When the wave after `step` is due: as far after this one's due time as the plan
        spaces them (a held wave delays those after it). The first timed wave after an
        immediate one gets the jitter, so shifts started together do not all fire at once."""
        if step + 1 >= len(waves):
            return None
        gap = waves[step + 1].offset - waves[step].offset
        if waves[step].offset == timedelta(0) and gap > timedelta(0):
            jitter = self._ctx.escalation_jitter.total_seconds()
            gap += timedelta(seconds=random.uniform(0, jitter))
        return due + gap

    async def _expire(self) -> None:
        """Offers close unfilled: pending offers withdrawn, the coordinator told."""
        shift, org, ctx = self._shift, self._org, self._ctx
        assert shift is not None and org is not None
        await ctx.store.expire(
            self.shift_id, at=ctx.clock.now(), notify=lambda n: self._tell_coordinator(shift, n)
        )
        await self._reload()
        ctx.wake_sender()
        self._log.warning("fanout.unfilled")
        ctx.events.publish("unfilled", shift_id=self.shift_id)

    def _tell_coordinator(
        self, shift: ShiftRow, contacted: int, notice: str = "unfilled"
    ) -> list[NewMessage]:
        """The coordinator's messages about `shift` (`notice`: unfilled, no_accept, closing,
        released): a text and/or a webhook, each with the shift's id, role, local start and
        a link to its page when `public_url` is set."""
        org = self._org
        assert org is not None
        coordinator = org.coordinator
        if coordinator is None:
            return []
        to = f"coordinator:{org.id}"
        key = f"{notice}:{self.shift_id}:g{shift.generation}"
        purpose = _NOTICE_PURPOSES[notice]
        base = self._ctx.public_url
        link = f"{base.rstrip('/')}/board/shifts/{quote(shift.id, safe='')}" if base else None
        told = []
        text = org.messages.coordinator(notice, shift, contacted, link)
        if coordinator.phone is not None:
            told.append(
                NewMessage(
                    f"{key}:sms", to, Channel.SMS, purpose, text, shift.id, coordinator.phone
                )
            )
        if coordinator.email is not None:
            told.append(
                NewMessage(
                    f"{key}:email", to, Channel.EMAIL, purpose, text, shift.id, coordinator.email
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
                    f"{key}:webhook",
                    to,
                    Channel.WEBHOOK,
                    purpose,
                    json.dumps(payload),
                    shift.id,
                    coordinator.webhook,
                )
            )
        return told

    async def _answer(self, answer: Answer) -> AnswerResult:
        shift = self._shift
        if shift is None:
            raise LookupError(f"no shift {self.shift_id!r}")
        cg = answer.caregiver_id
        messages = await self._messages_of(cg)
        bound = self._log.bind(caregiver_id=cg)
        if shift.state.in_progress:
            if answer.intent is Intent.ACCEPT:
                reason = await self._ineligible(shift, cg)
                if reason is None:
                    return await self._claim(shift, cg, bound, answer.channel)
                bound.info("claim.not_eligible", reason=reason)
                text = messages.not_eligible(shift, reason)
                return self._reply(Outcome.NOT_ELIGIBLE, cg, Purpose.NOT_ELIGIBLE, text, reason)
            if cg in await self._offers():
                return await self._decline(shift, cg, bound)
            return AnswerResult(Outcome.NO_OPEN_OFFER, None)
        if shift.state is ShiftState.FILLED:
            if shift.claimed_by == cg:  # confirmed once already: nothing more is sent
                return AnswerResult(Outcome.CLAIMED, None)
            if answer.intent is Intent.DECLINE:
                return AnswerResult(Outcome.ALREADY_FILLED, None)
            bound.info("claim.too_late")
            text = messages.already_filled(shift)
            if await self._told_filled_lately(cg):
                return AnswerResult(Outcome.ALREADY_FILLED, None)
            return self._reply(Outcome.ALREADY_FILLED, cg, Purpose.ALREADY_FILLED, text)
        closed = shift.state in (ShiftState.CANCELLED, ShiftState.UNFILLED)
        if closed and cg in await self._offers():
            text = messages.no_longer_available(shift)
            return self._reply(Outcome.NO_OPEN_OFFER, cg, Purpose.CANCELLED, text)
        return AnswerResult(Outcome.NO_OPEN_OFFER, None)

    async def _ineligible(self, shift: ShiftRow, cg: str) -> str | None:
        """Why `cg` may not take the shift (not offered it, no longer has the role, holds an
        overlapping shift, travel buffer included; deactivated), or None if they may."""
        if cg not in await self._offers() or cg in self._released:
            return "not_offered"
        store, org = self._ctx.store, self._org
        assert org is not None
        caregiver = await store.caregiver(cg)
        if caregiver is None or caregiver.role != shift.role_required:
            return "role"
        if not caregiver.active:  # deactivated since the offer: it lapsed with her
            return "not_offered"
        buffer = org.travel_buffer
        start, end = shift.start_time - buffer, shift.end_time + buffer
        if await store.overlapping_shift(cg, start, end, exclude=self.shift_id) is not None:
            return "overlap"
        return None

    async def _claim(
        self, shift: ShiftRow, cg: str, bound: Any, channel: Channel = Channel.SMS
    ) -> AnswerResult:
        ctx = self._ctx
        org = self._org
        assert org is not None
        confirm = (await self._messages_of(cg)).confirm(shift)
        won = await ctx.store.claim(
            self.shift_id,
            cg,
            at=ctx.clock.now(),
            confirm=confirm,
            filled=lambda language: org.messages_for(language).filled(shift),
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
        text = (await self._messages_of(cg)).declined(shift)
        reply = NewMessage(
            f"declined:{self.shift_id}:{cg}", cg, Channel.SMS, Purpose.DECLINED, text, self.shift_id
        )
        if not await ctx.store.decline(self.shift_id, cg, at=ctx.clock.now(), reply=reply):
            return AnswerResult(Outcome.DECLINED, None)  # thanked already
        ctx.wake_sender()
        bound.info("offer.declined")
        ctx.events.publish("declined", shift_id=self.shift_id, caregiver_id=cg)
        return AnswerResult(Outcome.DECLINED, text)

    async def _cancel(self) -> CancelStatus:
        shift = self._shift
        if shift is None:
            raise LookupError(f"no shift {self.shift_id!r}")
        if shift.state is ShiftState.CANCELLED:
            return CancelStatus.ALREADY_CANCELLED
        if shift.state is ShiftState.UNFILLED:
            return CancelStatus.UNFILLED
        holder_of = shift.claimed_by
        messages = await self._messages_of(holder_of) if holder_of else self._messages
        text = messages.shift_cancelled(shift)
        await self._ctx.store.cancel_shift(
            self.shift_id,
            at=self._ctx.clock.now(),
            holder_reply=lambda holder: self._holder_message(holder, Purpose.SHIFT_CANCELLED, text),
        )
        await self._reload()
        self._ctx.wake_sender()
        self._log.info("fanout.cancelled", holder=shift.claimed_by)
        self._ctx.events.publish("cancelled", shift_id=self.shift_id)
        return CancelStatus.CANCELLED

    async def _release(self, release: Release) -> ReleaseResult:
        shift, ctx = self._shift, self._ctx
        if shift is None:
            raise LookupError(f"no shift {self.shift_id!r}")
        if shift.state is not ShiftState.FILLED:
            return ReleaseResult(ReleaseStatus.NOT_CLAIMED, None)
        if release.caregiver_id is not None and release.caregiver_id != shift.claimed_by:
            return ReleaseResult(ReleaseStatus.NOT_HOLDER, None)
        org = self._org
        assert org is not None
        by = "caregiver" if release.caregiver_id is not None else "coordinator"
        holder_of = shift.claimed_by
        messages = await self._messages_of(holder_of) if holder_of else self._messages
        text = messages.released(shift) if by == "caregiver" else messages.unassigned(shift)
        now = ctx.clock.now()
        open_until = shift.expires_at or shift.start_time - org.offer_lead_time
        reopen_at = now + self._waves[0].offset if now < open_until else None
        holder = await ctx.store.release(
            self.shift_id,
            at=now,
            by=by,
            reopen_at=reopen_at,
            holder_reply=lambda h: self._holder_message(h, Purpose.RELEASED, text),
            notify=lambda n: self._tell_coordinator(shift, n),
            notify_dropped=(
                (lambda n: self._tell_coordinator(shift, n, "released"))
                if by == "caregiver"
                else None
            ),
        )
        assert holder is not None, "the actor is the only writer of its shift's state"
        await self._offers()
        self._released = {*self._released, holder}
        await self._reload()
        ctx.wake_sender()
        self._log.info("shift.released", caregiver_id=holder, by=by, reopened=bool(reopen_at))
        ctx.events.publish(
            "released",
            shift_id=self.shift_id,
            caregiver_id=holder,
            by=by,
            reopened=reopen_at is not None,
        )
        if reopen_at is None:
            ctx.events.publish("unfilled", shift_id=self.shift_id)
            return ReleaseResult(ReleaseStatus.RELEASED_UNFILLED, text)
        await self._run_due_waves()
        return ReleaseResult(ReleaseStatus.RELEASED, text)

    def _holder_message(self, holder: str, purpose: Purpose, text: str) -> NewMessage:
        generation = self._shift.generation if self._shift is not None else 0
        key = f"{purpose.value}:{self.shift_id}:{holder}:g{generation}"
        return NewMessage(key, holder, Channel.SMS, purpose, text, self.shift_id)

    @property
    def _messages(self) -> Messages:
        """The organization's texts in its own language (for its coordinator)."""
        assert self._org is not None
        return self._org.messages

    async def _messages_of(self, cg: str) -> Messages:
        """The organization's texts in the language caregiver `cg` reads."""
        assert self._org is not None
        caregiver = await self._ctx.store.caregiver(cg)
        return self._org.messages_for(caregiver.language if caregiver is not None else None)

    async def _told_filled_lately(self, cg: str) -> bool:
        """Whether a "filled" notice went to `cg` moments ago: someone who accepted in the same
        instant as the winner already has one, and a second text saying so is noise."""
        told = await self._ctx.store.queued_at(self.shift_id, cg, Purpose.FILLED)
        return told is not None and self._ctx.clock.now() - told < _RETELL_AFTER

    def _reply(
        self, outcome: Outcome, cg: str, purpose: Purpose, text: str, per: str = ""
    ) -> AnswerResult:
        """An answer that changes nothing, unless the reply-loop guard says no (then the
        result has no reply). Keyed per shift and caregiver: however often they write, one
        such answer goes out. The caller queues it (see `AnswerResult`)."""
        ctx = self._ctx
        if not ctx.reply_guard.allow(cg, ctx.clock.now(), reason=purpose.value):
            return AnswerResult(outcome, None)
        generation = self._shift.generation if self._shift is not None else 0
        key = f"{purpose.value}:{self.shift_id}:{cg}" + (f":g{generation}" if generation else "")
        key += f":{per}" if per else ""
        message = NewMessage(key, cg, Channel.SMS, purpose, text, self.shift_id)
        return AnswerResult(outcome, text, message)


def _offer_sms(
    org: Organization, shift: ShiftRow, code: int, language: str | None, first: bool
) -> str:
    return org.messages_for(language).offer_sms(shift, code, first=first)


def _offer_voice(org: Organization, shift: ShiftRow, language: str | None) -> str:
    return org.messages_for(language).offer_voice(shift)


_RETELL_AFTER = timedelta(minutes=10)
_NOBODY: frozenset[str] = frozenset()
_NOTICE_PURPOSES = {
    "unfilled": Purpose.UNFILLED,
    "no_accept": Purpose.NO_ACCEPT,
    "closing": Purpose.CLOSING,
    "released": Purpose.HOLDER_DROPPED,
}  # shared: an empty frozenset is 216 bytes each

_FANOUT_STATUS = {
    ShiftState.OFFERING: FanoutStatus.ALREADY_RUNNING,
    ShiftState.ESCALATED: FanoutStatus.ALREADY_RUNNING,
    ShiftState.FILLED: FanoutStatus.ALREADY_FILLED,
    ShiftState.CANCELLED: FanoutStatus.CANCELLED,
    ShiftState.UNFILLED: FanoutStatus.UNFILLED,
}
