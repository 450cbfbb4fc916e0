"""How an actor records a step: whether it writes anything, an answer's log entry, log events."""

from __future__ import annotations

from typing import Any

from ..models import EventKind, Outcome, ReleaseStatus
from ..store.base import InboundLog, InboundRecord
from .machine import AnswerResult, ReleaseResult, State, Transition, Unpublished
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
    return answer.inbound.recorded(InboundRecord("", shift_id, answer.caregiver_id, None))


def with_outcome(inbound: InboundLog | None, transition: Transition) -> InboundLog | None:
    """The inbound text with the outcome the transition gave it, and the answer that
    changes nothing (if any) to queue with it."""
    if inbound is None:
        return None
    result, logged = transition.answer, inbound.result
    if isinstance(result, AnswerResult):
        record = InboundRecord(
            result.outcome.value, logged.shift_id, logged.caregiver_id, result.reply
        )
        return inbound.recorded(record, result.message)
    if isinstance(result, ReleaseResult):
        outcome = (
            Outcome.RELEASED
            if result.status in (ReleaseStatus.RELEASED, ReleaseStatus.RELEASED_UNFILLED)
            else Outcome.NO_OPEN_OFFER
        )
        record = InboundRecord(outcome.value, logged.shift_id, logged.caregiver_id, result.reply)
        return inbound.recorded(record, inbound.reply)
    return inbound


def without_reply(result: Any) -> Any:
    if isinstance(result, AnswerResult):
        return AnswerResult(result.outcome, None)
    return result


LOG_EVENTS: dict[EventKind | Unpublished, str] = {
    EventKind.FANOUT_STARTED: "fanout.started",
    EventKind.WAVE: "wave.ran",
    EventKind.ESCALATED: "wave.ran",
    EventKind.WAVE_HELD: "wave.held",
    EventKind.CLAIMED: "claim.won",
    Unpublished.CLAIM_NOT_ELIGIBLE: "claim.not_eligible",
    Unpublished.CLAIM_TOO_LATE: "claim.too_late",
    EventKind.DECLINED: "offer.declined",
    EventKind.CANCELLED: "fanout.cancelled",
    EventKind.RELEASED: "shift.released",
    EventKind.UNFILLED: "fanout.unfilled",
    EventKind.COORDINATOR_TOLD: "coordinator.told",
}
ANSWERED = frozenset({EventKind.DECLINED, *Unpublished})
