"""The store's shape: rows it returns, the interface every backend implements, its errors.

Once its fanout starts, a shift is written only by its actor: it decides each transition
(`shiftd.shifts.machine`) from its state in memory and facts the store reads for it, and
the store writes the transition in one transaction (`persist`) — the shift row guarded by
its version, its offers, messages, timeline and the inbound text that caused it — or not
at all ("persist, then act": nothing is sent before it is committed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import trio

from ..models import (
    Caregiver,
    Channel,
    OutboxState,
    ProviderStatusUpdate,
    Purpose,
    SendResult,
    Shift,
    ShiftState,
)

if TYPE_CHECKING:
    from ..shifts.machine import Candidates, Claimant, Offer, Reached, Transition


class StoreError(Exception):
    """The store could not do what was asked (I/O error, corrupt or too-new database)."""


class StoreUnavailable(StoreError):
    """The store cannot write now (disk full, database read-only): the write
    was rolled back, nothing changed. Writes succeed again once the cause is gone."""


class StaleState(StoreError):
    """A shift's write was made from a state that is no longer the stored one (its version
    moved, or a fact it relied on changed in the same instant): nothing was written. The
    actor reads its shift again and decides afresh."""


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
    """The fanout's waves (see `shiftd.shifts.policy.load_plan`); None before a fanout."""
    version: int = 0
    """How many times the shift's actor wrote it: a write is refused unless made from the
    version stored (see `StaleState`)."""


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
    state: OutboxState
    attempts: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to queue. `key` makes it unique: a second row with the same key is ignored.

    `to` is the address: a recipient's who is not on the roster (a coordinator's phone or
    webhook URL), or the caregiver's phone as just read with the facts the message was
    decided from; None: the caregiver's phone is looked up as the message is queued."""

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


@dataclass(frozen=True, slots=True)
class InboundLog:
    """An inbound message to log with its outcome, and the answer that changes nothing to
    queue with it (`reply`), if any."""

    at: datetime
    provider_id: str | None
    from_phone: str
    channel: Channel
    body: str
    result: InboundRecord
    reply: NewMessage | None = None

    def recorded(self, result: InboundRecord, reply: NewMessage | None = None) -> InboundLog:
        """This text with `result` (and `reply`) as it is logged."""
        return InboundLog(
            self.at, self.provider_id, self.from_phone, self.channel, self.body, result, reply
        )


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """What became of a row handed to the provider: `sent` (with the provider's id, at
    `at`), `retry` (pending again from `next_at`) or `failed`; `error` says why."""

    outbox_id: int
    state: SendResult
    error: str | None
    provider_id: str | None = None
    at: datetime | None = None
    next_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Answering:
    """What an answer from a phone is decided from: who wrote, her open offers (as
    `Store.open_offers_for_caregiver`), whether her phone opted out and, when she has no
    open offer, her latest offer (a late YES is told its shift has closed)."""

    caregiver: CaregiverRow
    open_offers: list[OfferRow]
    opted_out: bool
    latest: OfferRow | None = None
    named: OfferRow | None = None
    """Her offer of the shift the answer names, open or closed (None: she had none)."""


@dataclass(frozen=True, slots=True)
class Persisted:
    """What a shift's write queued: the new outbox rows (for delivery), the reply code of
    each new offer, and whether the inbound's reply was queued."""

    rows: tuple[OutboxRow, ...]
    """Due now; a call held back to space calls to one phone is left to the central
    sender (`held`)."""
    codes: dict[str, int]
    replied: bool = False
    held: bool = False


class Store(Protocol):
    """What the engine needs from a backend. Writes are serialised; reads see committed data.

    Unless noted, a method raises StoreError on I/O failure and, if cancelled after the
    write was queued, the write still commits (the caller just does not learn the result).
    Every `async` method is a checkpoint (it may switch tasks and raise Cancelled).
    """

    on_commit: Callable[[int, float], None] | None
    """Told each group commit: (batch size, seconds). Set before `run`."""

    # lifecycle
    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        """Open (and migrate) the database, report started, then commit writes until
        cancelled. Raises StoreError if the database cannot be opened or is newer than
        this code. On cancellation it commits every write already queued, then closes."""
        ...

    # roster
    async def import_roster(
        self,
        caregivers: Sequence[Caregiver],
        shifts: Sequence[Shift],
        at: datetime,
        *,
        dry_run: bool = False,
    ) -> tuple[ImportCounts, ImportCounts]:
        """Upsert caregivers and shifts by id in one write (none with `dry_run`); the counts
        (and, with `dry_run`, each change) for caregivers and for shifts. ConflictError when
        a phone is someone else's."""
        ...

    async def add_shift(self, shift: Shift, at: datetime) -> ShiftRow:
        """Create a shift in state `open`; ConflictError if the id exists."""
        ...

    async def caregiver(self, caregiver_id: str) -> CaregiverRow | None:
        """The caregiver by id; None for an unknown one."""
        ...

    async def caregiver_by_phone(self, phone: str) -> CaregiverRow | None:
        """The caregiver with that (normalised) phone; None for nobody."""
        ...

    async def list_caregivers(self, role: str | None = None) -> list[CaregiverRow]:
        """Every caregiver, active or not, of `role` when given, by role and name."""
        ...

    async def export(
        self,
        kind: str,
        since: datetime,
        until: datetime | None,
        after: tuple[str, str, int] | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """Up to `limit` rows of the audit record (`kind` "messages" or "timeline") from
        `since` to `until` (None: no end), oldest first, after the key `after`."""
        ...

    async def blank_reply_texts(self, before: datetime) -> int:
        """Blank the text of replies received before `before`; how many were blanked."""
        ...

    async def set_caregiver_active(self, caregiver_id: str, active: bool, at: datetime) -> bool:
        """Set whether the caregiver may be offered shifts; False for an unknown id."""
        ...

    # shifts
    async def shift(self, shift_id: str) -> ShiftRow | None:
        """The shift by id; None for an unknown one."""
        ...

    async def list_shifts(self, state: ShiftState | None = None) -> list[ShiftRow]:
        """Every shift, or those in `state`."""
        ...

    async def shifts_in_progress(self) -> list[ShiftRow]:
        """The shifts whose fanout runs (offering or escalated): what start-up recovers."""
        ...

    async def offers_for_shift(self, shift_id: str) -> list[OfferRow]: ...
    async def offers_for_caregiver(self, caregiver_id: str, limit: int = 20) -> list[OfferRow]: ...
    async def open_offers_for_caregiver(self, caregiver_id: str) -> list[OfferRow]:
        """Every offer whose shift is in progress, however many, oldest first."""
        ...

    async def offer(self, shift_id: str, caregiver_id: str) -> OfferRow | None: ...
    async def answering(self, phone: str, *, shift_id: str | None = None) -> Answering | None:
        """The caregiver with that (normalised) phone, her open offers, whether the phone
        opted out and, if no offer is open, her latest one, read together (one checkpoint);
        None for nobody. With `shift_id` (an answer that names its shift), her offer of that
        shift is read instead (`named`), and no other: they walk every offer she ever had."""
        ...

    async def shift_detail(self, shift_id: str) -> dict[str, Any] | None:
        """The shift (`shift`) with its `contacts`, `declines`, `lost_notices` and
        `timeline`; None for an unknown id."""
        ...

    async def counts(self) -> dict[str, dict[str, int]]:
        """Shifts by state, outbox rows by state, caregivers (`total`)."""
        ...

    # a shift's facts (one named query each) and its transitions (one transaction each)
    async def shift_state(self, shift_id: str) -> tuple[ShiftRow, dict[str, Offer]] | None: ...
    async def offers_state(
        self, shift_id: str, caregiver_id: str | None = None
    ) -> dict[str, Offer]: ...
    async def candidates(
        self, role: str, window: tuple[datetime, datetime], exclude: str
    ) -> Candidates: ...
    async def claimant(
        self, shift_id: str, caregiver_id: str, window: tuple[datetime, datetime]
    ) -> Claimant: ...
    async def reached(self, shift_id: str) -> tuple[Reached, ...]: ...
    async def contacted(self, shift_id: str) -> int: ...
    async def persist(
        self,
        shift_id: str,
        version: int,
        transition: Transition,
        *,
        at: datetime,
        call_gap: timedelta = timedelta(0),
        inbound: InboundLog | None = None,
    ) -> Persisted:
        """Write a shift's transition in one transaction; StaleState if the shift's stored
        version is not `version` (nothing written)."""
        ...

    async def persist_steps(
        self,
        shift_id: str,
        steps: Sequence[tuple[int, Transition, InboundLog | None]],
        *,
        at: datetime,
        call_gap: timedelta = timedelta(0),
    ) -> list[Persisted]:
        """Several transitions of one shift, each from the version the one before leaves,
        in one transaction: all or none."""
        ...

    async def queue(self, messages: Sequence[NewMessage], *, at: datetime) -> int: ...
    # inbound log
    async def inbound_seen(self, provider_id: str) -> InboundRecord | None: ...
    async def log_inbound(self, inbound: InboundLog) -> OutboxRow | None:
        """Log an inbound that changes no shift, with its reply; the reply's row if queued."""
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
    async def mark_sending_many(
        self, outbox_ids: Sequence[int], *, at: datetime
    ) -> tuple[set[int], set[int]]: ...
    async def finish_sends(self, outcomes: Sequence[SendOutcome]) -> None: ...
    async def mark_sending(self, outbox_id: int, *, at: datetime) -> bool: ...
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

    async def remove_coordinator(self, name: str) -> bool:
        """Remove the account; False for an unknown name."""
        ...

    async def coordinator_hash(self, name: str) -> str | None:
        """The account's password hash; None for an unknown name."""
        ...

    async def list_coordinators(self) -> list[dict[str, str]]:
        """Every account (never its hash), by name."""
        ...

    async def board_shifts(self, ending_after: datetime) -> list[tuple[ShiftRow, str | None]]:
        """Shifts ending after `ending_after` or in progress, with their holder's name."""
        ...

    async def roles(self) -> list[str]:
        """Every role some caregiver has, sorted."""
        ...

    async def fanout_outcomes(self, since: datetime) -> list[tuple[datetime, str, float | None]]:
        """(fanout start, state, seconds to fill or None) for fanouts since `since`."""
        ...

    async def decline_times(self, since: datetime) -> list[datetime]:
        """When each decline since `since` was received."""
        ...

    # operator's view
    async def fill_stats(self, since: datetime) -> dict[str, Any]:
        """Fills, fill rate, time-to-fill (median, p90) and messages by channel for shifts
        fanned out at or after `since`; read-only. The keys are listed at
        `shiftd.store.sql.views.Views.fill_stats`."""
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
    state: OutboxState
    provider_id: str
    provider_status: str | None


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
