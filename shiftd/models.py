"""The domain's vocabulary: roster and shift models at the boundaries, enums used throughout.

Ids are opaque strings (the roster we succeed has ids that are not valid UUIDs) and phone
numbers are normalised, never validated against a numbering plan. Every field's limits are
`shiftd.limits`'s.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, StrictBool, model_validator

from . import limits


class ShiftState(StrEnum):
    OPEN = "open"
    OFFERING = "offering"
    ESCALATED = "escalated"
    FILLED = "filled"
    CANCELLED = "cancelled"
    UNFILLED = "unfilled"
    """Offers closed (the shift started, or its lead time passed) with nobody claiming it."""

    @property
    def in_progress(self) -> bool:
        return self in (ShiftState.OFFERING, ShiftState.ESCALATED)

    @property
    def closed(self) -> bool:
        return self in (ShiftState.FILLED, ShiftState.CANCELLED, ShiftState.UNFILLED)


class Channel(StrEnum):
    SMS = "sms"
    VOICE = "voice"
    WEBHOOK = "webhook"
    """A JSON POST to a coordinator's URL (never to a caregiver)."""
    EMAIL = "email"
    """A mail to a coordinator over SMTP (never to a caregiver)."""


CaregiverChannel = Literal["sms", "voice"]
"""The channels that reach a caregiver (the values of Channel.SMS and Channel.VOICE), as
configuration and commands accept them."""


class Purpose(StrEnum):
    OFFER = "offer"
    CONFIRM = "confirm"
    FILLED = "filled"
    ALREADY_FILLED = "already_filled"
    DECLINED = "declined"
    HELP = "help"
    CHOOSE = "choose"
    CANCELLED = "cancelled"
    """A late reply is told the shift is no longer available."""
    SHIFT_CANCELLED = "shift_cancelled"
    """The caregiver who held a shift is told the coordinator cancelled it."""
    RELEASED = "released"
    """The caregiver who held a shift is told it is released (by them or a coordinator)."""
    NOT_ELIGIBLE = "not_eligible"
    UNFILLED = "unfilled"
    """The coordinator is told a shift ended unfilled."""
    NO_ACCEPT = "no_accept"
    """The coordinator is told nobody has accepted a shift yet (`no_accept_after`)."""
    CLOSING = "closing"
    """The coordinator is told offers for a shift still open close soon (`warn_before_close`)."""
    HOLDER_DROPPED = "holder_dropped"
    """The coordinator is told the caregiver holding a shift dropped it."""
    NOTICE_LOST = "notice_lost"
    """The coordinator is told a holder's notice (confirm, released…) could not be sent."""
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"


class Outcome(StrEnum):
    """What became of an inbound message; every input maps to one, none raises."""

    CLAIMED = "claimed"
    ALREADY_FILLED = "already_filled"
    DECLINED = "declined"
    UNKNOWN_INTENT = "unknown_intent"
    AMBIGUOUS = "ambiguous"
    UNKNOWN_SENDER = "unknown_sender"
    NO_OPEN_OFFER = "no_open_offer"
    NOT_ELIGIBLE = "not_eligible"
    """An accept from someone who may not take the shift (overlap, role, released it)."""
    UNKNOWN_CODE = "unknown_code"
    """A reply quoting a code that is none of the caregiver's open offers."""
    NOT_OFFERED = "not_offered"
    """An answer naming a shift (by id) the caregiver was never offered."""
    LISTED = "listed"
    """LIST: the caregiver was sent (a page of) her open offers."""
    RELEASED = "released"
    OPTED_OUT = "opted_out"
    OPTED_IN = "opted_in"
    HELP = "help"


class FanoutStatus(StrEnum):
    STARTED = "started"
    ALREADY_RUNNING = "already_running"
    ALREADY_FILLED = "already_filled"
    CANCELLED = "cancelled"
    NO_CANDIDATES = "no_candidates"
    TOO_LATE = "too_late"
    """Offers for the shift have closed (it starts within the lead time, or has started)."""
    UNFILLED = "unfilled"


class CancelStatus(StrEnum):
    CANCELLED = "cancelled"
    ALREADY_CANCELLED = "already_cancelled"
    UNFILLED = "unfilled"
    """Offers for it have closed unfilled: nothing is left to cancel."""


class ReleaseStatus(StrEnum):
    """What became of a release (the holder drops out, or a coordinator unassigns)."""

    RELEASED = "released"
    """The shift reopened; the fanout resumes from the policy without the releaser."""
    RELEASED_UNFILLED = "released_unfilled"
    """Released too late to offer again: the shift is unfilled, the coordinator is told."""
    NOT_CLAIMED = "not_claimed"
    NOT_HOLDER = "not_holder"


class SendResult(StrEnum):
    """What became of one attempt to hand a message to the provider."""

    SENT = "sent"
    RETRY = "retry"
    """Known not sent: pending again, tried later."""
    FAILED = "failed"
    """Never tried again (refused, given up, or it may have been sent)."""
    SUPPRESSED = "suppressed"
    """A text to a phone that opted out: never handed over."""


class OutboxState(StrEnum):
    """Where a queued message (an outbox row) is on its way to the provider; the provider's
    own delivery report is apart (`provider_status`)."""

    PENDING = "pending"
    """Queued: waiting for its turn or its next attempt."""
    SENDING = "sending"
    """Taken by the sender; the provider's answer is not recorded yet."""
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"
    """Withdrawn before it was sent (its shift closed, its caregiver dropped out)."""
    SUPPRESSED = "suppressed"
    """A text to a phone that opted out: never handed over."""


class ProviderStatusUpdate(StrEnum):
    """What a provider's delivery report did to its message's row."""

    UPDATED = "updated"
    STALE = "stale"
    """Not further along than what is stored: an out-of-order or repeated callback."""
    UNKNOWN_STATUS = "unknown_status"
    NOT_FOUND = "not_found"
    """No row carries that provider id."""


class EventKind(StrEnum):
    """What an event on the bus (`shiftd.events`, `shiftctl watch`) says happened. A shift's
    transitions carry the kinds of its timeline (`shift show`)."""

    FANOUT_STARTED = "fanout_started"
    WAVE = "wave"
    """A later policy wave ran: `step`, `round`, `channel`, `audience`, `tags`, `contacted`."""
    WAVE_HELD = "wave_held"
    """Quiet hours postponed a wave: `step`, `until`."""
    ESCALATED = "escalated"
    """A call wave: `calls`."""
    CLAIMED = "claimed"
    DECLINED = "declined"
    RELEASED = "released"
    """A filled shift taken off its holder: `by` "caregiver" or "coordinator", `reopened`."""
    UNFILLED = "unfilled"
    """Offers closed with nobody holding the shift."""
    CANCELLED = "cancelled"
    REPLY = "reply"
    """An inbound message and its outcome."""
    SENT = "sent"
    SEND_RETRY = "send_retry"
    SEND_FAILED = "send_failed"
    SEND_SUPPRESSED = "send_suppressed"
    """A text to an opted-out phone, never handed over."""
    DELIVERY = "delivery"
    """The provider reported a message's or call's status: `status`."""
    COORDINATOR_TOLD = "coordinator_told"
    """A coordinator notice about the shift was queued: `notice` (no_accept, closing, released)."""
    NOTICE_LOST = "notice_lost"
    """A holder's notice ended failed; it was followed up (`outbox.lostnotices`)."""
    CREATED = "created"
    """A shift added one by one (`shift.add`, `POST /shifts`, the board)."""
    ROSTER_IMPORTED = "roster_imported"
    """Shifts created or updated in bulk: `created`, `updated`."""
    COORDINATOR_CHANGED = "coordinator_changed"
    """An account's password changed or it was removed: `name`, `change`."""
    ACTOR_RESTARTED = "actor_restarted"
    ACTOR_GAVE_UP = "actor_gave_up"
    OVERFLOW = "overflow"
    """Only ever seen by a subscriber: `dropped` events it missed."""


# The boundary rules live in one place (`shiftd.limits`); these names are the models' own.
Id = limits.Id
Role = limits.Role
Phone = limits.Phone
UtcDatetime = limits.Instant
normalize_phone = limits.normalize_phone


class Caregiver(BaseModel):
    """A person on the roster. `role` is normalised on import (see `roles.Roles`).

    Fields the model does not know are kept in `model_extra` so an import can name them
    (a warning) rather than drop them silently.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    id: Id
    name: limits.Name
    role: Role
    phone: Phone
    tags: limits.Tags = ()
    active: StrictBool | None = None
    """False: never offered a shift (their history stays); None: as stored (new: active).
    Strictly a boolean, as the schema says (a CSV's yes/no is read before)."""
    language: limits.LanguageTag | None = None
    """The language she reads (BCP 47, e.g. ``es`` or ``es-MX``); None: the organization's."""


class Shift(BaseModel):
    """A shift to fill. `organization_id` is the agency's own grouping (office, branch)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: Id
    organization_id: Id = "default"
    role_required: Role
    start_time: UtcDatetime
    end_time: UtcDatetime
    location: limits.Location | None = None
    """City or facility name shown to caregivers; never a client's name or address."""

    @model_validator(mode="after")
    def _ends_after_start(self) -> Shift:
        limits.check_shift_times(self.start_time, self.end_time)
        return self


class Roster(BaseModel):
    """The import file: the shape of the reference `sample_data.json`."""

    model_config = ConfigDict(extra="forbid")

    caregivers: list[Caregiver] = []
    shifts: list[Shift] = []
