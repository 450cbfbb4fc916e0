"""From an inbound text to an actor: who wrote, which offer they mean, what they said.

`(from_phone, body, channel[, provider message id])` → normalised phone → caregiver (index
lookup) → which offer (the only open one, or the code in the reply; asked back when
ambiguous) → intent → the shift's actor → an outcome and a reply to the caregiver. Every input
ends in an `Outcome`; none raises. A provider message id seen before returns the first
outcome without doing anything again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import trio

from .actor import Answer
from .clock import Clock
from .events import EventBus
from .intent import Classifier, Intent
from .logs import get_logger, mask_phone
from .messages import Messages
from .models import Channel, Outcome, Purpose, normalize_phone
from .store.base import CaregiverRow, InboundRecord, NewMessage, OfferRow, Store
from .supervisor import Supervisor

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class InboundResult:
    outcome: Outcome
    shift_id: str | None = None
    caregiver_id: str | None = None
    reply: str | None = None
    replayed: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "outcome": self.outcome.value,
            "shift_id": self.shift_id,
            "caregiver_id": self.caregiver_id,
            "reply": self.reply,
            "replayed": self.replayed,
        }


class InboundRouter:
    """Turns inbound messages into actor messages and replies. Stateless but for the set of
    provider ids being handled right now (so a duplicate that arrives mid-way waits)."""

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
    ) -> None:
        self._store = store
        self._clock = clock
        self._supervisor = supervisor
        self._classifier = classifier
        self._messages = messages
        self._wake_sender = wake_sender
        self._events = events or EventBus()
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
        seen = await self._store.inbound_seen(provider_id)
        if seen is not None:
            log.info("inbound.replayed", provider_id=provider_id, outcome=seen.outcome)
            self._events.publish(
                "reply",
                shift_id=seen.shift_id,
                caregiver_id=seen.caregiver_id,
                channel=str(channel),
                outcome=seen.outcome,
                replayed=True,
            )
            return InboundResult(
                Outcome(seen.outcome), seen.shift_id, seen.caregiver_id, seen.reply, replayed=True
            )
        self._in_flight[provider_id] = done = trio.Event()
        try:
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
        caregiver = await self._store.caregiver_by_phone(phone)
        if caregiver is None:
            result = InboundResult(Outcome.UNKNOWN_SENDER)
            reply = None  # never text a number that is not on the roster
        else:
            result, reply = await self._for_caregiver(caregiver, body, channel, shift_id)
        await self._store.record_inbound(
            at=self._clock.now(),
            provider_id=provider_id,
            from_phone=phone,
            channel=channel,
            body=body,
            result=InboundRecord(
                result.outcome, result.shift_id, result.caregiver_id, result.reply
            ),
            reply=reply,
        )
        if reply is not None:
            self._wake_sender()
        log.info(
            "inbound.handled",
            outcome=result.outcome,
            shift_id=result.shift_id,
            caregiver_id=result.caregiver_id,
            channel=channel,
        )
        detail = {} if caregiver is not None else {"from": mask_phone(phone)}
        self._events.publish(
            "reply",
            shift_id=result.shift_id,
            caregiver_id=result.caregiver_id,
            channel=str(channel),
            outcome=result.outcome.value,
            **detail,
        )
        return result

    async def _for_caregiver(
        self, caregiver: CaregiverRow, body: str, channel: Channel, shift_id: str | None
    ) -> tuple[InboundResult, NewMessage | None]:
        """The outcome, and a reply the router itself queues (actors queue their own)."""
        cg = caregiver.id
        classified = self._classifier.classify(body, channel)
        offers = await self._store.offers_for_caregiver(cg)
        open_offers = [o for o in offers if o.shift_state.in_progress]
        target: OfferRow | None
        if shift_id is not None:
            target = next((o for o in offers if o.shift_id == shift_id), None)
        elif classified.code is not None:
            target = next((o for o in open_offers if o.code == classified.code), None) or next(
                (o for o in offers if o.code == classified.code), None
            )
            if target is None and open_offers:
                return await self._ambiguous(cg, open_offers)
        elif len(open_offers) == 1:
            target = open_offers[0]
        elif len(open_offers) > 1:
            if classified.intent is Intent.UNKNOWN:
                return await self._ambiguous(cg, open_offers, Outcome.UNKNOWN_INTENT)
            return await self._ambiguous(cg, open_offers)
        else:
            # A late YES after the shift closed is told so, not ignored.
            late = classified.intent is Intent.ACCEPT and offers
            target = offers[0] if late else None

        if target is None:
            text = self._messages.no_open_offer()
            return InboundResult(Outcome.NO_OPEN_OFFER, None, cg, text), self._reply(
                cg, None, Purpose.HELP, text
            )
        if classified.intent is Intent.UNKNOWN:
            shift = await self._store.shift(target.shift_id)
            assert shift is not None
            text = self._messages.how_to_answer(shift, target.code)
            return InboundResult(Outcome.UNKNOWN_INTENT, target.shift_id, cg, text), self._reply(
                cg, target.shift_id, Purpose.HELP, text
            )
        answer = Answer(cg, classified.intent, channel)
        result = await self._supervisor.ask(target.shift_id, answer, answer.reply)
        return InboundResult(result.outcome, target.shift_id, cg, result.reply), None

    async def _ambiguous(
        self, cg: str, open_offers: list[OfferRow], outcome: Outcome = Outcome.AMBIGUOUS
    ) -> tuple[InboundResult, NewMessage | None]:
        listed = []
        for offer in open_offers:
            shift = await self._store.shift(offer.shift_id)
            assert shift is not None
            listed.append((shift, offer.code))
        text = self._messages.choose(listed)
        return InboundResult(outcome, None, cg, text), self._reply(cg, None, Purpose.CHOOSE, text)

    @staticmethod
    def _reply(cg: str, shift_id: str | None, purpose: Purpose, text: str) -> NewMessage:
        return NewMessage(f"reply:{uuid.uuid4().hex}", cg, Channel.SMS, purpose, text, shift_id)
