"""The store's shape: rows it returns, the interface every backend implements, its errors.

The store is the source of truth; actors are a cache of it. Every method that changes state
is one transaction: a shift transition and the messages it causes commit together or not at
all ("persist, then act": the sender only ever sees committed outbox rows).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from ..models import Caregiver, Channel, Purpose, Shift, ShiftState


class StoreError(Exception):
    """The store could not do what was asked (I/O error, corrupt or too-new database)."""


class StoreUnavailable(StoreError):
    """The store cannot write now (disk full, database read-only): the write
    was rolled back, nothing changed. Writes succeed again once the cause is gone."""


class ConflictError(StoreError):
    """The write contradicts what is stored (duplicate id, phone already used)."""


@dataclass(frozen=True, slots=True)
class CaregiverRow:
    id: str
    name: str
    role: str
    phone: str
    tags: tuple[str, ...] = ()
    active: bool = True
    language: str | None = None
    """BCP 47, as in the roster; None: the organization's language."""


@dataclass(frozen=True, slots=True)
class ShiftRow:
    id: str
    organization_id: str
    role_required: str
    start_time: datetime
    end_time: datetime
    state: ShiftState
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    fanout_started_at: datetime | None = None
    escalate_at: datetime | None = None
    """When the policy's next wave is due; once no wave is left, when the last one was."""
    location: str | None = None
    expires_at: datetime | None = None
    """When offers close (the shift's start less the organization's lead time)."""
    next_step: int = 0
    """Index of the next wave in `plan`."""
    generation: int = 0
    """How many times the shift reopened after a release."""
    plan: str | None = field(default=None, repr=False)
    """The fanout's waves (see `shiftd.policy.load_plan`); None before a fanout."""


@dataclass(frozen=True, slots=True)
class OfferRow:
    """A caregiver's offer of a shift: the code they may quote, and whether they declined."""

    shift_id: str
    caregiver_id: str
    code: int
    declined_at: datetime | None
    shift_state: ShiftState
    released_at: datetime | None = None
    """Set when this caregiver gave the shift back: they are never offered it again."""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    shift_id: str | None
    caregiver_id: str
    channel: Channel
    purpose: Purpose
    to_phone: str
    body: str
    state: str
    attempts: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to queue. `key` makes it unique: a second row with the same key is ignored.

    `to` is the address for a recipient who is not on the roster (a coordinator's phone or
    webhook URL); otherwise the caregiver's phone is looked up."""

    key: str
    caregiver_id: str
    channel: Channel
    purpose: Purpose
    body: str
    shift_id: str | None = None
    to: str | None = None


@dataclass(slots=True)
class ImportCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    """Each created, updated or deactivated item: `{"id", "change", "fields"}`."""


@dataclass(frozen=True, slots=True)
class InboundRecord:
    """An inbound message as remembered for replay detection and the timeline."""

    outcome: str
    shift_id: str | None
    caregiver_id: str | None
    reply: str | None


RenderOffer = Callable[[int, str | None, bool], str]
"""Renders a caregiver's offer text for (her reply code, her roster language, whether it is
the first offer texted to her phone)."""
RenderVoice = Callable[[str | None], str]
"""Renders a text for a caregiver's roster language (the offer read on a call, "filled")."""


@dataclass(frozen=True, slots=True)
class WaveRun:
    """One wave to run now: whom (audience, tags) over which channel, and what comes next.

    Runs only if the shift is in progress with `step` as its next wave; afterwards the next
    wave is `step + 1`, due at `next_at` (None: no wave left)."""

    step: int
    channel: Channel
    audience: str
    tags: tuple[str, ...]
    key_suffix: str
    voice_body: str
    next_at: datetime | None
    travel_buffer: timedelta
    voice_after_opt_out: bool
    detail: dict[str, Any] = field(default_factory=dict)
    """Recorded in the timeline with the wave."""
    call_gap: timedelta = timedelta(0)
    """A call to a phone that has one scheduled less than this long before goes out this
    long after it: one call at a time per person."""


@dataclass(frozen=True, slots=True)
class WaveResult:
    contacted: int
    offered: tuple[str, ...]
    """Caregivers offered the shift by this wave for the first time."""


class Store(Protocol):
    """What the engine needs from a backend. Writes are serialised; reads see committed data.

    Unless noted, a method raises StoreError on I/O failure and, if cancelled after the
    write was queued, the write still commits (the caller just does not learn the result).
    """

    # roster
    async def import_roster(
        self,
        caregivers: Sequence[Caregiver],
        shifts: Sequence[Shift],
        at: datetime,
        *,
        dry_run: bool = False,
    ) -> tuple[ImportCounts, ImportCounts]: ...
    async def add_shift(self, shift: Shift, at: datetime) -> ShiftRow: ...
    async def caregiver(self, caregiver_id: str) -> CaregiverRow | None: ...
    async def caregiver_by_phone(self, phone: str) -> CaregiverRow | None: ...
    async def list_caregivers(self, role: str | None = None) -> list[CaregiverRow]: ...

    async def export(
        self,
        kind: str,
        since: datetime,
        until: datetime | None,
        after: tuple[str, str, int] | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]: ...
    async def blank_reply_texts(self, before: datetime) -> int: ...

    async def set_caregiver_active(self, caregiver_id: str, active: bool, at: datetime) -> bool: ...

    # shifts
    async def shift(self, shift_id: str) -> ShiftRow | None: ...
    async def list_shifts(self, state: ShiftState | None = None) -> list[ShiftRow]: ...
    async def shifts_in_progress(self) -> list[ShiftRow]: ...
    async def offers_for_shift(self, shift_id: str) -> list[OfferRow]: ...
    async def offers_for_caregiver(self, caregiver_id: str, limit: int = 20) -> list[OfferRow]: ...
    async def open_offers_for_caregiver(self, caregiver_id: str) -> list[OfferRow]:
        """Every offer whose shift is in progress, however many, oldest first."""
        ...

    async def offer(self, shift_id: str, caregiver_id: str) -> OfferRow | None: ...
    async def shift_detail(self, shift_id: str) -> dict[str, Any] | None: ...
    async def counts(self) -> dict[str, dict[str, int]]: ...

    # transitions (each one transaction, with the messages it causes)
    async def start_fanout(
        self,
        shift_id: str,
        *,
        at: datetime,
        plan: str,
        first_at: datetime,
        expires_at: datetime | None,
        travel_buffer: timedelta,
    ) -> int | None: ...
    async def run_wave(
        self,
        shift_id: str,
        wave: WaveRun,
        *,
        at: datetime,
        render_offer: RenderOffer,
        render_voice: RenderVoice | None = None,
    ) -> WaveResult | None: ...
    async def hold_wave(
        self, shift_id: str, step: int, *, until: datetime, at: datetime
    ) -> bool: ...
    async def expire(
        self, shift_id: str, *, at: datetime, notify: Callable[[int], Sequence[NewMessage]]
    ) -> bool: ...
    async def claim(
        self,
        shift_id: str,
        caregiver_id: str,
        *,
        at: datetime,
        confirm: str,
        filled: str | RenderVoice,
    ) -> bool: ...
    async def decline(
        self, shift_id: str, caregiver_id: str, *, at: datetime, reply: NewMessage | None
    ) -> bool: ...
    async def release(
        self,
        shift_id: str,
        *,
        at: datetime,
        by: str,
        reopen_at: datetime | None,
        holder_reply: Callable[[str], NewMessage] | None,
        notify: Callable[[int], Sequence[NewMessage]] | None = None,
        notify_dropped: Callable[[int], Sequence[NewMessage]] | None = None,
    ) -> str | None: ...
    async def tell_coordinator(
        self,
        shift_id: str,
        *,
        at: datetime,
        notice: str,
        notify: Callable[[int], Sequence[NewMessage]],
    ) -> int: ...
    async def cancel_shift(
        self,
        shift_id: str,
        *,
        at: datetime,
        holder_reply: Callable[[str], NewMessage] | None = None,
    ) -> bool: ...
    async def overlapping_shift(
        self, caregiver_id: str, start: datetime, end: datetime, *, exclude: str
    ) -> str | None:
        """A shift other than `exclude` that the caregiver holds and that overlaps
        [start, end), or None."""
        ...

    async def queue(self, messages: Sequence[NewMessage], *, at: datetime) -> int: ...
    async def queued_at(
        self, shift_id: str, caregiver_id: str, purpose: Purpose
    ) -> datetime | None:
        """When a message of `purpose` was queued for this caregiver and shift (not withdrawn)."""
        ...

    # inbound log
    async def inbound_seen(self, provider_id: str) -> InboundRecord | None: ...
    async def record_inbound(
        self,
        *,
        at: datetime,
        provider_id: str | None,
        from_phone: str,
        channel: Channel,
        body: str,
        result: InboundRecord,
        reply: NewMessage | None,
    ) -> bool:
        """Log it with `reply` (if any); True if `reply` was queued (its key was new)."""
        ...

    # compliance (opt-outs are kept by phone: carriers require honouring STOP from any number)
    async def set_opted_out(
        self, phone: str, *, keyword: str, at: datetime, reply: NewMessage | None
    ) -> bool:
        """Opt `phone` out of SMS and withdraw its pending texts (but compliance answers), in
        one transaction with `reply`, queued only if the phone was not opted out already.
        Returns True if it was not (the state changed)."""
        ...

    async def set_opted_in(self, phone: str, *, at: datetime, reply: NewMessage | None) -> bool:
        """Forget `phone`'s opt-out, in one transaction with `reply`, queued only if the
        phone was opted out. Returns True if it was (the state changed)."""
        ...

    async def is_opted_out(self, phone: str) -> bool: ...
    async def held_shifts(self, caregiver_id: str, *, now: datetime) -> list[ShiftRow]:
        """The filled shifts `caregiver_id` holds that start after `now`, soonest first."""
        ...

    # outbox (the sender)
    async def due_outbox(self, *, after_id: int, now: datetime, limit: int) -> list[OutboxRow]: ...
    async def next_retry_at(self) -> datetime | None: ...
    async def mark_sending(self, outbox_id: int, *, at: datetime) -> bool: ...
    async def mark_sent(self, outbox_id: int, *, at: datetime, provider_id: str | None) -> None: ...
    async def mark_retry(self, outbox_id: int, *, next_at: datetime, error: str) -> None: ...
    async def mark_failed(self, outbox_id: int, *, at: datetime, error: str) -> None: ...
    async def abandon_sending(self, *, at: datetime) -> int: ...
    async def flag_lost_notices(
        self, *, at: datetime, follow_up: Callable[[OutboxRow, ShiftRow], list[NewMessage]]
    ) -> list[OutboxRow]:
        """Flag holder notices that ended `failed` (once each) and queue `follow_up`'s
        messages with the flag; the rows flagged now."""
        ...

    # provider delivery reports (schema v2)
    async def outbox_by_provider_id(self, provider_id: str) -> ProviderMessageRow | None:
        """The outbox row the provider knows as `provider_id` (a message or call sid)."""
        ...

    async def update_provider_status(
        self, provider_id: str, status: str, *, at: datetime
    ) -> ProviderStatusUpdate:
        """Record the provider's delivery status for a row; never moves it backwards."""
        ...

    # coordinator accounts and the board (schema v4)
    async def put_coordinator(self, name: str, password_hash: str, *, at: datetime) -> bool:
        """Create the account (True) or replace its password hash (False)."""
        ...

    async def remove_coordinator(self, name: str) -> bool: ...
    async def coordinator_hash(self, name: str) -> str | None: ...
    async def list_coordinators(self) -> list[dict[str, str]]: ...
    async def board_shifts(self, ending_after: datetime) -> list[tuple[ShiftRow, str | None]]:
        """Shifts ending after `ending_after` or in progress, with their holder's name."""
        ...

    async def roles(self) -> list[str]:
        """Every role some caregiver has, sorted."""
        ...

    async def fanout_outcomes(self, since: datetime) -> list[tuple[datetime, str, float | None]]:
        """(fanout start, state, seconds to fill or None) for fanouts since `since`."""
        ...

    async def decline_times(self, since: datetime) -> list[datetime]: ...

    # operator's view
    async def fill_stats(self, since: datetime) -> dict[str, Any]:
        """Fills, fill rate, time-to-fill (median, p90) and messages by channel for shifts
        fanned out at or after `since`; read-only. See SqliteStore.fill_stats for the keys."""
        ...


@dataclass(frozen=True, slots=True)
class ProviderMessageRow:
    """An outbox row as found by its provider id (for webhooks: calls, status callbacks)."""

    id: int
    shift_id: str | None
    caregiver_id: str
    channel: Channel
    purpose: Purpose
    to_phone: str
    body: str
    state: str
    provider_id: str
    provider_status: str | None


ProviderStatusUpdate = str
"""What `update_provider_status` did: ``updated``, ``stale`` (not newer than what is stored:
an out-of-order or repeated callback), ``unknown_status`` or ``not_found``."""

# How far along a message or call is, by the provider's status names. A status callback is
# applied only if it ranks higher than the stored one: callbacks arrive out of order, and a
# late "sent" must never overwrite "delivered". Terminal statuses share the top rank, so the
# first one reported stays.
MESSAGE_STATUS_RANK: dict[str, int] = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "canceled": 4,
    "read": 5,  # a delivered message later read (channels that report it)
}
CALL_STATUS_RANK: dict[str, int] = {
    "queued": 1,
    "initiated": 2,
    "ringing": 3,
    "in-progress": 4,
    "completed": 5,
    "busy": 5,
    "no-answer": 5,
    "failed": 5,
    "canceled": 5,
}


def provider_status_rank(channel: Channel | str, status: str) -> int | None:
    """The rank of `status` for a row of `channel`, or None for a status not known."""
    table = CALL_STATUS_RANK if channel == Channel.VOICE else MESSAGE_STATUS_RANK
    return table.get(status)
