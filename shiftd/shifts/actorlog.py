"""How an actor records a step: whether it writes anything, an answer's log entry, log events."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..models import Outcome, ReleaseStatus
from ..store.base import InboundLog, InboundRecord
from .machine import AnswerResult, ReleaseResult, State, Transition
from .mailbox import Answer


def has_writes(state: State, transition: Transition, inbound: InboundLog | None) -> bool:
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


def unlogged(answer: Answer, shift_id: str) -> InboundLog | None:
    """The answer's text, to log with what it does (its outcome is known once decided)."""
    if answer.inbound is None:
        return None
    record = InboundRecord("", shift_id, answer.caregiver_id, None)
    return replace(answer.inbound, result=record)


def with_outcome(inbound: InboundLog | None, transition: Transition) -> InboundLog | None:
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


def without_reply(result: Any) -> Any:
    if isinstance(result, AnswerResult):
        return AnswerResult(result.outcome, None)
    return result


LOG_EVENTS = {
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
UNPUBLISHED = frozenset({"claim_not_eligible", "claim_too_late"})
ANSWERED = frozenset({"declined", "claim_not_eligible", "claim_too_late"})
