"""What a transition decides: the new state, the messages, the events, what is withdrawn."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from ...models import Channel, EventKind, FanoutStatus, Outcome, Purpose, ReleaseStatus
from ...store.base import NewMessage
from .facts import State


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


class Unpublished(StrEnum):
    """News only logged, never on the event bus: what the answer tells the caregiver."""

    CLAIM_NOT_ELIGIBLE = "claim_not_eligible"
    CLAIM_TOO_LATE = "claim_too_late"


News = tuple[EventKind | Unpublished, Mapping[str, Any]]
"""An announcement: its kind and its fields."""


@dataclass(frozen=True, slots=True)
class Record:
    """A timeline event. `if_queued`: recorded only if the transition queued a message (a
    coordinator notice repeated after a restart is neither sent nor recorded twice).
    `withdrawn`: its detail gets how many pending messages the transition withdrew."""

    kind: EventKind
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
    news: tuple[News, ...] = ()
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


def chain(first: Transition, then: Transition) -> Transition:
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
