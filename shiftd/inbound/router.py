"""From an inbound text to an actor: who wrote, which offer they mean, what they said.

`(from_phone, body, channel[, provider message id])` → normalised phone → caregiver (index
lookup) → compliance keywords → which offer (the only open one, or the code in the reply;
asked back when ambiguous) → intent → the shift's actor → an outcome and a reply to the
caregiver. Every input ends in an `Outcome`; none raises. A provider message id seen before
returns the first outcome without doing anything again.

Compliance keywords
-------------------

Keywords are read on texts only (never on a call's keypad) and only when they are the whole
message: the body is trimmed, case-folded and stripped of surrounding punctuation, so
"stop", "Stop.", "STOP " and "STOP!" are STOP, while "stop calling me please" is no keyword
and goes to the classifier like any other text.

* STOP, STOPALL, UNSUBSCRIBE, END, QUIT opt the phone out of texts: the opt-out is stored
  (by phone), every text still pending for it is withdrawn, and from then on no text reaches
  it but the answers to STOP, START and HELP (the sender checks before every send). The
  first STOP is confirmed once; a repeated STOP changes nothing and gets no text. A STOP (or
  CANCEL, or START) from a number not on the roster is honoured too, without an answer
  (shiftd never texts numbers that are not on the roster).
* CANCEL is a *release* when it comes from a caregiver who holds a filled shift that has not
  started yet: that shift is released (its actor reopens it or closes it unfilled and tells
  the releaser). If they hold several, "CANCEL <code>" picks one and a bare CANCEL is
  answered with the list of codes to choose from. From anyone else, CANCEL opts out like
  STOP.
* RELEASE and DROP (each optionally followed by a code), and "CANCEL <code>", are releases
  only, never opt-outs: from someone who holds no upcoming shift they get the "no open
  shift" answer.
* START and UNSTOP opt the phone back in (confirmed once).
* HELP and INFO are answered with the agency's help text, to anyone on the roster, opted out
  or not.
* LIST (LISTA), optionally with a page number, is answered with the caregiver's open offers,
  as many as one text holds, and which page of how many it is ("LIST 2" for the next).
* YES, an opt-in keyword at carriers, is nothing of the kind here: it is an ACCEPT, and never
  changes the opt-out state. (An opted-out caregiver may still take a shift by text; the
  confirmation is then not sent: the phone opted out.)

Automatic answers that change nothing ("how to answer", "which one?", "no open offer", the
HELP text, a START from someone who had not opted out…) go through the reply-loop guard
(`ReplyGuard`: at most `replies.max_per_hour` per caregiver in any hour); past it the
inbound is still recorded with its outcome, and the answer is dropped (`reply.silenced`).
Answers that accompany a change (the first STOP or START, a release, a claim, a first
decline) always go. An opted-out caregiver gets no such answer at all, but to HELP and
START.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import assert_never

import trio

from ..clock import Clock
from ..events import EventBus
from ..logs import get_logger, mask_phone
from ..messages import Messages
from ..models import Channel, EventKind, Outcome, Purpose, ReleaseStatus, normalize_phone
from ..outbox import keys
from ..shifts.mailbox import Answer, Release
from ..shifts.organizations import DEFAULT as DEFAULT_ORGANIZATION
from ..shifts.supervisor import Supervisor
from ..store.base import (
    Answering,
    CaregiverRow,
    InboundLog,
    InboundRecord,
    NewMessage,
    OfferRow,
    ShiftRow,
    Store,
)
from .intent import Classifier, Intent
from .keywords import Keyword, ParsedKeyword, parse_keyword
from .replyguard import DEFAULT_MAX_PER_HOUR, ReplyGuard

log = get_logger(__name__)


_RELEASED = frozenset({ReleaseStatus.RELEASED, ReleaseStatus.RELEASED_UNFILLED})
_COMPLIANCE = frozenset({Outcome.OPTED_OUT, Outcome.OPTED_IN, Outcome.HELP})


@dataclass(frozen=True, slots=True)
class InboundResult:
    """What became of an inbound message. `reply` is the text queued for the caregiver in
    answer to it, and only that: None when nothing goes out (a repeated answer, a reply the
    guard silenced, an opted-out phone). A replay repeats the first `reply` and sends
    nothing: `sent` says whether this very call queued a text."""

    outcome: Outcome
    shift_id: str | None = None
    caregiver_id: str | None = None
    reply: str | None = None
    replayed: bool = False

    @property
    def sent(self) -> bool:
        return self.reply is not None and not self.replayed

    def as_dict(self) -> dict[str, object]:
        return {
            "outcome": self.outcome.value,
            "shift_id": self.shift_id,
            "caregiver_id": self.caregiver_id,
            "reply": self.reply,
            "sent": self.sent,
            "replayed": self.replayed,
        }


def _request_id(inbound: InboundLog) -> str | None:
    """What names the request an inbound text makes of a shift's actor across retries
    (`Supervisor.ask`): its provider message id, which the provider repeats on a retry."""
    return None if inbound.provider_id is None else f"inbound:{inbound.provider_id}"


_Handled = tuple[InboundResult, NewMessage | None, bool]
"""An outcome, the answer the router itself queues with the inbound record (if any), and
whether the inbound is logged already (an actor logs what it handles with its transition)."""


class InboundRouter:
    """Turns inbound messages into actor messages and replies. Stateless but for the set of
    provider ids being handled right now (so a duplicate that arrives mid-way waits) and the
    reply guard's counts (in memory: a restart resets them)."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        supervisor: Supervisor,
        classifier: Classifier,
        messages: Messages,
        wake_sender: Callable[[], None],
        *,
        events: EventBus | None = None,
        reply_guard: ReplyGuard | None = None,
        messages_for: Callable[[str, str | None], Messages] | None = None,
    ) -> None:
        """`messages` words what concerns no one shift; `messages_for(organization_id,
        language)`, if given, what goes to a caregiver reading `language` (BCP 47, or None)
        about a shift of that organization, or (organization "default") about none."""
        self._store = store
        self._clock = clock
        self._supervisor = supervisor
        self._classifier = classifier
        self._messages = messages
        self._messages_for = messages_for or (lambda _organization, _language: messages)
        self._wake_sender = wake_sender
        self._events = events or EventBus()
        self._guard = reply_guard if reply_guard is not None else ReplyGuard(DEFAULT_MAX_PER_HOUR)
        self._in_flight: dict[str, trio.Event] = {}

    async def handle(
        self,
        from_phone: str,
        body: str,
        channel: Channel,
        *,
        provider_id: str | None = None,
        shift_id: str | None = None,
    ) -> InboundResult:
        """Handle one inbound message and log it. Raises only StoreError / ActorUnavailable."""
        if provider_id is None:
            return await self._handle(from_phone, body, channel, None, shift_id)
        while (pending := self._in_flight.get(provider_id)) is not None:
            await pending.wait()
        # Claimed before the store is asked (a checkpoint): a copy arriving meanwhile waits
        # for this one, then finds it logged.
        self._in_flight[provider_id] = done = trio.Event()
        try:
            seen = await self._store.inbound_seen(provider_id)
            if seen is not None:
                log.info("inbound.replayed", provider_id=provider_id, outcome=seen.outcome)
                self._events.publish(
                    EventKind.REPLY,
                    shift_id=seen.shift_id,
                    caregiver_id=seen.caregiver_id,
                    channel=str(channel),
                    outcome=seen.outcome,
                    replayed=True,
                )
                return InboundResult(
                    Outcome(seen.outcome),
                    seen.shift_id,
                    seen.caregiver_id,
                    seen.reply,
                    replayed=True,
                )
            return await self._handle(from_phone, body, channel, provider_id, shift_id)
        finally:
            del self._in_flight[provider_id]
            done.set()

    async def _handle(
        self,
        raw_phone: str,
        body: str,
        channel: Channel,
        provider_id: str | None,
        shift_id: str | None,
    ) -> InboundResult:
        try:
            phone = normalize_phone(raw_phone)
        except ValueError:
            phone = raw_phone.strip()[:32]
        keyword = parse_keyword(body) if channel is Channel.SMS else None
        answering = None
        if keyword is None:  # an answer: who sent it, with what she may answer
            # An answer that names its shift (a call's keys) reads that offer alone.
            answering = await self._store.answering(phone, shift_id=shift_id)
            caregiver = answering.caregiver if answering is not None else None
        else:
            caregiver = await self._store.caregiver_by_phone(phone)
        log_ = InboundLog(
            self._clock.now(),
            provider_id,
            phone,
            channel,
            body,
            InboundRecord("", None, None, None),
        )
        handled: _Handled
        if caregiver is None:
            result = await self._from_stranger(phone, keyword)
            handled = (result, None, False)  # never text a number not on the roster
        elif keyword is not None:
            handled = await self._keyword(caregiver, keyword, log_)
        else:
            assert answering is not None
            handled = await self._answer(answering, body, channel, shift_id, log_)
        result, reply, logged = handled
        if not logged:
            record = InboundRecord(
                result.outcome, result.shift_id, result.caregiver_id, result.reply
            )
            row = await self._store.log_inbound(log_.recorded(record, reply))
            if reply is not None and row is None:
                result = replace(result, reply=None)  # the same answer went out before
            if result.reply is not None:
                self._wake_sender()  # the reply, queued with the log or the opt-out or opt-in
        log.info(
            "inbound.handled",
            outcome=result.outcome,
            shift_id=result.shift_id,
            caregiver_id=result.caregiver_id,
            channel=channel,
        )
        detail = {} if caregiver is not None else {"from": mask_phone(phone)}
        self._events.publish(
            EventKind.REPLY,
            shift_id=result.shift_id,
            caregiver_id=result.caregiver_id,
            channel=str(channel),
            outcome=result.outcome.value,
            **detail,
        )
        return result

    async def _from_stranger(self, phone: str, keyword: ParsedKeyword | None) -> InboundResult:
        """A number not on the roster: STOP (or CANCEL) and START are honoured, unanswered."""
        now = self._clock.now()
        if keyword is not None and keyword.keyword in (Keyword.OPT_OUT, Keyword.CANCEL):
            if await self._store.set_opted_out(phone, keyword=keyword.word, at=now, reply=None):
                log.info("optout.recorded", caregiver_id=None, phone_tail=mask_phone(phone))
            return InboundResult(Outcome.OPTED_OUT)
        if keyword is not None and keyword.keyword is Keyword.OPT_IN:
            if await self._store.set_opted_in(phone, at=now, reply=None):
                log.info("optin.recorded", caregiver_id=None, phone_tail=mask_phone(phone))
            return InboundResult(Outcome.OPTED_IN)
        return InboundResult(Outcome.UNKNOWN_SENDER)

    async def _answer(
        self,
        answering: Answering,
        body: str,
        channel: Channel,
        shift_id: str | None,
        inbound: InboundLog,
    ) -> _Handled:
        """An answer (no keyword) from a caregiver: the outcome, and a reply the router
        itself queues (actors queue their own)."""
        caregiver = answering.caregiver
        cg = caregiver.id
        classified = self._classifier.classify(body, channel)
        target: OfferRow | None
        if shift_id is not None:
            target = answering.named
            if target is None:
                return await self._not_offered(caregiver, shift_id)
        else:
            open_offers = answering.open_offers
            if classified.code is not None:
                target = next((o for o in open_offers if o.code == classified.code), None)
                if target is None and open_offers:
                    return await self._unknown_code(caregiver, classified.code, open_offers)
                if target is None:  # a late "YES 3": that offer's shift says it has closed
                    recent = await self._store.offers_for_caregiver(cg)
                    target = next((o for o in recent if o.code == classified.code), None)
            elif len(open_offers) == 1:
                target = open_offers[0]
            elif len(open_offers) > 1:
                if classified.intent is Intent.UNKNOWN:
                    return await self._ambiguous(caregiver, open_offers, Outcome.UNKNOWN_INTENT)
                return await self._ambiguous(caregiver, open_offers)
            else:
                # A late YES after the shift closed is told so, not ignored.
                late = classified.intent is Intent.ACCEPT
                target = answering.latest if late else None
        if target is None:
            return await self._no_open_offer(caregiver)
        if classified.intent is Intent.UNKNOWN:
            shift = await self._store.shift(target.shift_id)
            assert shift is not None
            messages = self._messages_for(shift.organization_id, caregiver.language)
            text = messages.how_to_answer(shift, target.code)
            return await self._guarded(
                caregiver,
                InboundResult(Outcome.UNKNOWN_INTENT, target.shift_id, cg, text),
                Purpose.HELP,
            )
        answer = Answer(caregiver, classified.intent, channel, inbound, answering.opted_out)
        result = await self._supervisor.ask(
            target.shift_id, answer, answer.reply, request_id=_request_id(inbound)
        )
        return InboundResult(result.outcome, target.shift_id, cg, result.reply), None, True

    # ---- compliance keywords and releases -------------------------------------------------

    async def _keyword(
        self, caregiver: CaregiverRow, keyword: ParsedKeyword, inbound: InboundLog
    ) -> _Handled:
        """Handle a compliance or release keyword from someone on the roster."""
        cg, messages, now = caregiver.id, self._words(caregiver), self._clock.now()
        match keyword.keyword:
            case Keyword.HELP:
                help_text = (await self._messages_of_latest_offer(caregiver)).help()
                result = InboundResult(Outcome.HELP, None, cg, help_text)
                return await self._guarded(caregiver, result, Purpose.HELP, compliance=True)
            case Keyword.OPT_IN:
                text = messages.opted_in()
                confirm = self._reply(cg, None, Purpose.OPT_IN, text)
                if await self._store.set_opted_in(caregiver.phone, at=now, reply=confirm):
                    log.info("optin.recorded", caregiver_id=cg)
                    return InboundResult(Outcome.OPTED_IN, None, cg, text), None, False
                # Not opted out: nothing changes, and the answer counts against the guard.
                result = InboundResult(Outcome.OPTED_IN, None, cg, text)
                return await self._guarded(caregiver, result, Purpose.OPT_IN, compliance=True)
            case Keyword.CANCEL:
                held = await self._store.held_shifts(cg, now=now)
                if held:
                    return await self._release(caregiver, held, None, inbound)
                return await self._opt_out(caregiver, keyword.word)
            case Keyword.OPT_OUT:
                return await self._opt_out(caregiver, keyword.word)
            case Keyword.RELEASE:
                held = await self._store.held_shifts(cg, now=now)
                if not held:
                    return await self._no_open_offer(caregiver)
                return await self._release(caregiver, held, keyword.code, inbound)
            case Keyword.LIST:
                open_offers = await self._store.open_offers_for_caregiver(cg)
                if not open_offers:
                    return await self._no_open_offer(caregiver)
                listed = await self._listed(open_offers)
                text = messages.offers_page(listed, keyword.code or 1)
                result = InboundResult(Outcome.LISTED, None, cg, text)
                return await self._guarded(caregiver, result, Purpose.CHOOSE)
        assert_never(keyword.keyword)

    async def _messages_of_latest_offer(self, caregiver: CaregiverRow) -> Messages:
        """The words of the organization that last offered `caregiver` a shift (its HELP
        text), else the default organization's, in her language."""
        for offer in await self._store.offers_for_caregiver(caregiver.id, limit=1):
            shift = await self._store.shift(offer.shift_id)
            if shift is not None:
                return self._messages_for(shift.organization_id, caregiver.language)
        return self._words(caregiver)

    def _words(self, caregiver: CaregiverRow) -> Messages:
        """The default organization's texts in the language `caregiver` reads."""
        return self._messages_for(DEFAULT_ORGANIZATION, caregiver.language)

    async def _opt_out(self, caregiver: CaregiverRow, word: str) -> _Handled:
        cg, text = caregiver.id, self._words(caregiver).opted_out()
        confirm = self._reply(cg, None, Purpose.OPT_OUT, text)
        changed = await self._store.set_opted_out(
            caregiver.phone, keyword=word, at=self._clock.now(), reply=confirm
        )
        if changed:
            log.info("optout.recorded", caregiver_id=cg, keyword=word)
            return InboundResult(Outcome.OPTED_OUT, None, cg, text), None, False
        # Already opted out: the one confirmation has gone; nothing more is sent to them.
        log.info("optout.repeated", caregiver_id=cg, keyword=word)
        return InboundResult(Outcome.OPTED_OUT, None, cg, None), None, False

    async def _release(
        self, caregiver: CaregiverRow, held: list[ShiftRow], code: int | None, inbound: InboundLog
    ) -> _Handled:
        """Release the held shift `code` names (or the only one); ask back which otherwise.
        The shift's actor queues the answer to a release itself."""
        cg = caregiver.id
        codes = await self._codes(cg, held)
        if code is not None:
            chosen = [s for s in held if codes.get(s.id) == code]
        else:
            chosen = held if len(held) == 1 else []
        if len(chosen) != 1:
            listed = [(s, codes[s.id]) for s in held if s.id in codes]
            text = self._words(caregiver).which_release(listed)
            result = InboundResult(Outcome.AMBIGUOUS, None, cg, text)
            return await self._guarded(caregiver, result, Purpose.CHOOSE)
        [shift] = chosen
        release = Release(cg, inbound.recorded(InboundRecord("", shift.id, cg, None)))
        released = await self._supervisor.ask(
            shift.id, release, release.reply, request_id=_request_id(inbound)
        )
        if released.status in _RELEASED:
            log.info("release.by_text", caregiver_id=cg, shift_id=shift.id)
            return InboundResult(Outcome.RELEASED, shift.id, cg, released.reply), None, True
        # Not theirs any more (a coordinator unassigned it meanwhile): the actor has answered.
        return InboundResult(Outcome.NO_OPEN_OFFER, shift.id, cg, released.reply), None, True

    async def _codes(self, cg: str, shifts: list[ShiftRow]) -> dict[str, int]:
        """The reply code `cg` was offered each of `shifts` with."""
        found = {}
        for shift in shifts:
            offer = await self._store.offer(shift.id, cg)
            if offer is not None:
                found[shift.id] = offer.code
        return found

    # ---- answers that change nothing ----------------------------------------------------

    async def _no_open_offer(self, caregiver: CaregiverRow) -> _Handled:
        text = self._words(caregiver).no_open_offer()
        result = InboundResult(Outcome.NO_OPEN_OFFER, None, caregiver.id, text)
        return await self._guarded(caregiver, result, Purpose.HELP)

    async def _not_offered(self, caregiver: CaregiverRow, shift_id: str) -> _Handled:
        """An answer naming a shift (by id) `caregiver` was never offered: she is told so,
        with her open offers, if any."""
        shift = await self._store.shift(shift_id)
        if shift is None:
            messages = self._words(caregiver)
        else:
            messages = self._messages_for(shift.organization_id, caregiver.language)
        listed = await self._listed(await self._store.open_offers_for_caregiver(caregiver.id))
        text = messages.not_offered(listed)
        known = shift_id if shift is not None else None
        result = InboundResult(Outcome.NOT_OFFERED, known, caregiver.id, text)
        return await self._guarded(caregiver, result, Purpose.NOT_ELIGIBLE)

    async def _unknown_code(
        self, caregiver: CaregiverRow, code: int, open_offers: list[OfferRow]
    ) -> _Handled:
        text = self._words(caregiver).unknown_code(code, await self._listed(open_offers))
        result = InboundResult(Outcome.UNKNOWN_CODE, None, caregiver.id, text)
        return await self._guarded(caregiver, result, Purpose.CHOOSE)

    async def _listed(self, offers: list[OfferRow]) -> list[tuple[ShiftRow, int]]:
        listed = []
        for offer in offers:
            shift = await self._store.shift(offer.shift_id)
            if shift is not None:
                listed.append((shift, offer.code))
        return listed

    async def _ambiguous(
        self,
        caregiver: CaregiverRow,
        open_offers: list[OfferRow],
        outcome: Outcome = Outcome.AMBIGUOUS,
    ) -> _Handled:
        text = self._words(caregiver).choose(await self._listed(open_offers))
        result = InboundResult(outcome, None, caregiver.id, text)
        return await self._guarded(caregiver, result, Purpose.CHOOSE)

    async def _guarded(
        self,
        caregiver: CaregiverRow,
        result: InboundResult,
        purpose: Purpose,
        *,
        compliance: bool = False,
    ) -> _Handled:
        """`result` with its answer (which changes nothing) queued — unless the caregiver
        opted out and this is not a `compliance` answer (to HELP or START), or the reply
        guard says they have had enough automatic answers this hour: then it is dropped."""
        assert result.reply is not None
        cg = caregiver.id
        if not compliance and await self._store.is_opted_out(caregiver.phone):
            log.info("reply.opted_out", caregiver_id=cg, outcome=result.outcome)
            return replace(result, reply=None), None, False
        if not self._guard.allow(
            cg, self._clock.now(), phone=caregiver.phone, reason=purpose.value
        ):
            return replace(result, reply=None), None, False
        return result, self._reply(cg, result.shift_id, purpose, result.reply), False

    @staticmethod
    def _reply(cg: str, shift_id: str | None, purpose: Purpose, text: str) -> NewMessage:
        return NewMessage(keys.reply(), cg, Channel.SMS, purpose, text, shift_id)
